"""One call from a table to a synthetic copy and its evaluation (what ``fairleak synth`` runs)."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fairleak.data import DATASETS, bin_numeric, read_table
from fairleak.errors import DataValidationError
from fairleak.synth.evaluate import evaluate_synthetic
from fairleak.synth.flip import FlipLiteSynthesizer, child_seed
from fairleak.synth.schema import TableSchema, bundled_schema

__all__ = ["SynthResult", "load_synth_table", "run_synth", "split_for_evaluation"]

#: A protected attribute with more distinct values than this must be binned first.
MAX_PROTECTED_LEVELS = 20


@dataclass
class SynthTable:
    data: pd.DataFrame
    name: str
    label: str
    positive: str
    protected: list[str]
    schema: TableSchema
    notes: list[str] = field(default_factory=list)


def load_synth_table(
    source: str | Path | pd.DataFrame, *, label: str | None = None, protected: Sequence[str] | None = None,
    positive: str | None = None, schema: str | Path | TableSchema | None = None,
) -> SynthTable:  # fmt: skip
    """A bundled dataset's published table (its codebook as the public schema; rows with a
    missing value dropped and counted, as ``load_dataset`` does) or a user's CSV / Parquet /
    DataFrame (missing values refused; schema from ``schema`` or, not private, the rows)."""
    notes: list[str] = []
    key = str(source).lower().strip() if not isinstance(source, pd.DataFrame) else ""
    if key in DATASETS:
        info = DATASETS[key]
        assert info.loader is not None
        raw, notes = info.loader()
        raw = raw.copy()
        n0 = len(raw)
        raw = raw.dropna().reset_index(drop=True)
        if len(raw) < n0:
            notes = [*notes, f"{n0 - len(raw):,} rows with a missing value were dropped (as load_dataset does)."]
        label = label or info.label
        positive = positive or info.positive
        protected = list(protected) if protected else list(info.default_protected)
        for p in protected:
            if p in info.bins and p in raw.columns:
                raw[p] = bin_numeric(raw[p], info.bins[p])
                notes = [*notes, f"The protected attribute '{p}' is released in the dataset's bins {list(info.bins[p])}."]
        sch = schema if isinstance(schema, TableSchema) else (TableSchema.from_json(schema) if schema else bundled_schema(key))
        name = key
    else:
        raw = source.reset_index(drop=True) if isinstance(source, pd.DataFrame) else read_table(source)
        name = "data" if isinstance(source, pd.DataFrame) else Path(str(source)).name
        if label is None:
            raise DataValidationError("Name the label column with --label (label=...).")
        if not protected:
            raise DataValidationError("Name the protected attribute column(s) with --protected (protected=[...]).")
        protected = list(protected)
        bad = raw.columns[raw.isna().any()].tolist()
        if bad:
            raise DataValidationError(
                f"Column(s) {bad} have missing values ({int(raw[bad].isna().any(axis=1).sum())} rows); "
                "the synthesiser never drops rows silently: remove or impute them first."
            )
        if isinstance(schema, TableSchema):
            sch = schema
        elif schema is not None:
            sch = TableSchema.from_json(schema)
        else:
            sch = TableSchema.infer(raw.drop(columns=[c for c in protected if c in raw.columns]))
    for col, what in [(label, "label"), *[(p, "protected attribute") for p in protected]]:
        if col not in raw.columns:
            raise DataValidationError(f"The {what} column '{col}' is not in the data; columns: {list(raw.columns)[:20]}.")
    if label in protected:
        raise DataValidationError(f"'{label}' is both the label and a protected attribute.")
    labels = raw[label].astype(str)
    if positive is None:
        vals = sorted(labels.unique())
        if len(vals) != 2:
            raise DataValidationError(f"The label '{label}' has {len(vals)} values {vals[:6]}; name the positive one with --positive.")
        positive = vals[-1]
    if str(positive) not in set(labels):
        raise DataValidationError(f"The positive label '{positive}' does not occur in '{label}' (values: {sorted(labels.unique())[:6]}).")
    for p in protected:
        k = raw[p].nunique()
        if k > MAX_PROTECTED_LEVELS:
            raise DataValidationError(
                f"The protected attribute '{p}' has {k} distinct values; bin it into groups first "
                f"(at most {MAX_PROTECTED_LEVELS})."
            )
        raw[p] = raw[p].astype(str)
    return SynthTable(raw, name, label, str(positive), protected, sch, list(notes))


def split_for_evaluation(table: SynthTable, *, seed: int, holdout: float = 0.2, test: float = 0.2):
    """Train (the generator's rows), holdout (never seen: non-members) and test (downstream
    models), stratified by label x first protected attribute."""
    df = table.data
    strata = df[table.label].astype(str) + "|" + df[table.protected[0]].astype(str)
    rest, te = train_test_split(np.arange(len(df)), test_size=test, stratify=strata,
                                random_state=child_seed(seed, "test split") % 2**31)  # fmt: skip
    tr, ho = train_test_split(rest, test_size=holdout / (1 - test), stratify=strata.iloc[rest],
                              random_state=child_seed(seed, "holdout split") % 2**31)  # fmt: skip
    take = lambda idx: df.iloc[np.sort(idx)].reset_index(drop=True)  # noqa: E731
    return take(tr), take(ho), take(te)


@dataclass
class SynthResult:
    table: pd.DataFrame
    results: dict[str, Any]
    synthesizer: FlipLiteSynthesizer


def run_synth(
    source: str | Path | pd.DataFrame, *, protected: Sequence[str] | None = None, label: str | None = None,
    positive: str | None = None, epsilon: float | None = 3.0, rows: int | None = None,
    schema: str | Path | TableSchema | None = None, evaluate: bool = True, seed: int = 0,
    params: dict[str, Any] | None = None, max_eval_rows: int = 3000, n_bootstrap: int = 100,
    progress: Callable[[str, int, int], None] | None = None,
) -> SynthResult:  # fmt: skip
    """Fit FLIP-lite, sample ``rows`` rows (default: as many as it trained on) and, with
    ``evaluate``, measure fidelity, utility, fairness and privacy on held-out real rows (the
    generator then trains on 60% of the rows; without it, on all of them)."""
    table = load_synth_table(source, label=label, protected=protected, positive=positive, schema=schema)
    if evaluate:
        train, holdout, test = split_for_evaluation(table, seed=seed)
    else:
        train, holdout, test = table.data, None, None
    params = dict(params or {})
    eps = None if epsilon is None or math.isinf(epsilon) else float(epsilon)
    t0 = time.perf_counter()
    syn = FlipLiteSynthesizer(epsilon=eps, schema=table.schema, random_state=seed, **params)
    syn.fit(train, protected=table.protected,
            progress=None if progress is None else (lambda i, n: progress("train", i, n)))  # fmt: skip
    t_fit = time.perf_counter() - t0
    n_rows = int(rows) if rows is not None else len(train)
    if n_rows < 1:
        raise DataValidationError(f"--rows must be a positive number; got {rows}.")
    out = syn.sample(n_rows, random_state=child_seed(seed, "release sample"))
    t_sample = time.perf_counter() - t0 - t_fit
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB, whole process
    results: dict[str, Any] = {
        "kind": "fairleak-synth",
        "method": "FLIP-lite (after Hyrup et al., arXiv 2508.21815; abstract only: see docs)",
        "data": {"name": table.name, "rows": len(table.data), "train_rows": len(train),
                 "holdout_rows": None if holdout is None else len(holdout),
                 "test_rows": None if test is None else len(test), "label": table.label,
                 "positive": table.positive, "protected": table.protected, "notes": table.notes},
        "synthetic_rows": n_rows,
        "params": {**{k: v for k, v in syn.get_params().items() if k != "schema"}},
        "privacy": syn.privacy_,
        "epsilon": syn.epsilon_,
        "notes": list(syn.notes_),
        "history": syn.history_,
        "timing": {"fit_seconds": t_fit, "sample_seconds": t_sample, "peak_rss_mib": peak_kib / 1024},
    }
    if evaluate:
        assert holdout is not None and test is not None
        t1 = time.perf_counter()
        if progress is not None:
            progress("evaluate", 0, 1)
        results["evaluation"] = evaluate_synthetic(
            out, train=train, holdout=holdout, test=test, label=table.label, positive=table.positive,
            protected=table.protected, seed=seed, max_rows=max_eval_rows, n_bootstrap=n_bootstrap,
        )  # fmt: skip
        results["timing"]["evaluate_seconds"] = time.perf_counter() - t1
        if progress is not None:
            progress("evaluate", 1, 1)
    return SynthResult(out, _json_safe(results), syn)


def _json_safe(v: Any) -> Any:
    """Plain JSON: numpy scalars to Python, non-finite floats to None (never NaN in files)."""
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
