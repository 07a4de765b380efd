"""Writing an audit's outputs: results.json, Parquet tables and the HTML report, atomically."""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

from fairleak.audit.cache import atomic_write_bytes, atomic_write_text
from fairleak.audit.pipeline import AuditResult

__all__ = ["results_schema", "write_outputs"]


def results_schema() -> dict[str, Any]:
    """The JSON Schema results.json follows (documented in docs/CONFIG.md)."""
    return json.loads(resources.files("fairleak.audit").joinpath("results.schema.json").read_text())


def write_outputs(result: AuditResult, out_dir: Path | str) -> dict[str, Path]:
    """Write results.json and the Parquet tables under ``out_dir`` (the report is written by
    :func:`fairleak.report.write_report`, which sits above this layer)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json"}
    atomic_write_text(
        paths["results"], json.dumps(result.results, indent=2, allow_nan=False) + "\n"
    )
    pg = result.per_group
    tables = {
        "per_record": result.per_record,
        "per_group_fairness": pg[pg["table"] == "fairness"].dropna(axis=1, how="all")
        if len(pg)
        else pg,
        "per_group_attacks": pg[pg["table"] == "attack"].dropna(axis=1, how="all")
        if len(pg)
        else pg,
    }
    for name, frame in tables.items():
        buf = io.BytesIO()
        frame.reset_index(drop=True).to_parquet(buf, index=False)
        paths[name] = out / f"{name}.parquet"
        atomic_write_bytes(paths[name], buf.getvalue())
    return paths
