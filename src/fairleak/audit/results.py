"""Writing an audit's outputs: results.json and the Parquet tables, atomically; the schema.

results.json's schema is the frame in ``results.schema.json`` plus, for every registered stage,
the schema it declares for its section: one schema, assembled from the stages that write it.
"""

from __future__ import annotations

import copy
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

from fairleak.audit.pipeline import AuditResult
from fairleak.audit.stages import STAGES
from fairleak.files import atomic_write_bytes, atomic_write_text

__all__ = ["results_schema", "write_outputs"]


def results_schema() -> dict[str, Any]:
    """The JSON Schema results.json follows (documented in docs/CONFIG.md)."""
    schema = json.loads(resources.files("fairleak.audit").joinpath("results.schema.json").read_text())
    model = schema["$defs"]["model"].setdefault("properties", {})
    for name, stage in STAGES.items():
        part = stage.json_schema()
        if part is None:
            continue
        if stage.scope == "model":
            model[name] = copy.deepcopy(part)
        else:
            schema["properties"][name] = copy.deepcopy(part)
    return schema


def write_outputs(result: AuditResult, out_dir: Path | str) -> dict[str, Path]:
    """Write results.json and one Parquet file per table under ``out_dir`` (the report is
    written by :func:`fairleak.report.write_report`, which sits above this layer)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json"}
    atomic_write_text(paths["results"], json.dumps(result.results, indent=2, allow_nan=False) + "\n")
    for name, frame in result.tables.items():
        buf = io.BytesIO()
        frame.reset_index(drop=True).to_parquet(buf, index=False)
        paths[name] = out / f"{name}.parquet"
        atomic_write_bytes(paths[name], buf.getvalue())
    return paths
