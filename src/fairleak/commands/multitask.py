"""``fairleak multitask``: STL / MTL / FairBranch / L2T-FMT on several labels of one table.

Parses arguments, shows progress and writes ``multitask.json``; the work is
:func:`fairleak.multitask.evaluate_multitask`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console()
err_console = Console(stderr=True)


def _fail(message: object) -> None:
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _parse_positive(specs: list[str] | None, labels: list[str]) -> object | dict[str, str] | None:
    """``["yes"]`` (every label) or ``["a=yes", "b=1"]`` (per label)."""
    if not specs:
        return None
    if len(specs) == 1 and "=" not in specs[0]:
        return specs[0]
    out: dict[str, str] = {}
    for spec in specs:
        for part in _split(spec):
            col, sep, val = part.partition("=")
            if not sep or not col.strip() or not val.strip():
                _fail(
                    f"--positive '{part}' is not of the form LABEL=VALUE (or one VALUE for every "
                    f"label), e.g. --positive {labels[0] if labels else 'label'}=yes."
                )
            out[col.strip()] = val.strip()
    return out


def _parse_bins(specs: list[str] | None) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for spec in specs or []:
        col, sep, edges = spec.partition("=")
        if not sep or not col.strip() or not edges.strip():
            _fail(f"--bins '{spec}' is not of the form COLUMN=EDGE[,EDGE...], e.g. age=25,45,65.")
        try:
            out[col.strip()] = [float(e) for e in _split(edges)]
        except ValueError:
            _fail(f"Bin edges for '{col.strip()}' must be numbers; got '{edges}'.")
    return out


def _parse_hidden(value: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(v) for v in _split(value))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        _fail(
            f"--hidden must be positive layer widths separated by commas, e.g. 64,32; got '{value}'."
        )
    return widths


def register(app: typer.Typer) -> None:
    """Add ``fairleak multitask`` to ``app``."""

    @app.command("multitask")
    def multitask(
        data: Annotated[
            str, typer.Argument(help="compas, adult, or a CSV/Parquet file with several labels.")
        ],
        labels: Annotated[
            str | None,
            typer.Option(help="Label columns, one per task, comma separated (bundled: optional)."),
        ] = None,
        protected: Annotated[
            str | None, typer.Option(help="Protected attribute column(s), comma separated.")
        ] = None,
        positive: Annotated[
            list[str] | None,
            typer.Option(help="Positive label value: VALUE for every label, or LABEL=VALUE."),
        ] = None,
        bins: Annotated[
            list[str] | None,
            typer.Option(help="Bin edges of a numeric protected column: age=25,45,65."),
        ] = None,
        drop: Annotated[str | None, typer.Option(help="Columns not to use as features.")] = None,
        method: Annotated[
            str,
            typer.Option(
                help="stl, mtl, fairbranch, l2t (comma separated) or all; STL always runs."
            ),
        ] = "all",
        fairness: Annotated[
            str,
            typer.Option(help="robust_log, demographic_parity, equalized_odds or none."),
        ] = "robust_log",
        fairness_weight: Annotated[float, typer.Option(help="Weight of the fairness loss.")] = 1.0,
        fairness_views: Annotated[
            str, typer.Option(help="attributes, intersection or all.")
        ] = "attributes",
        fairness_on: Annotated[
            str | None,
            typer.Option(help="Protected attributes the fairness loss covers (default: all)."),
        ] = None,
        hidden: Annotated[str, typer.Option(help="Trunk widths, e.g. 64,32,16.")] = "64,32,16",
        epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
        batch_size: Annotated[int, typer.Option(help="Batch size.")] = 256,
        lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 3e-3,
        target_epsilon: Annotated[
            float | None,
            typer.Option(help="Train privately (DP-SGD; stl/mtl with --fairness none only)."),
        ] = None,
        max_rows: Annotated[
            int | None, typer.Option(help="Subsample the table to this many rows first.")
        ] = None,
        bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for intervals.")] = 200,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        out: Annotated[Path, typer.Option(help="Output folder.")] = Path("fairleak-multitask"),
    ) -> None:
        """Fair multi-task learning: train STL, MTL, FairBranch and L2T-FMT on the same rows and
        write accuracy, fairness gaps, transfer (MTL minus STL) and leakage per task head to
        OUT/multitask.json."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from fairleak.data.multitask import load_multitask
        from fairleak.errors import FairleakError
        from fairleak.multitask import METHODS, evaluate_multitask

        label_list = _split(labels)
        methods = list(METHODS) if method.strip().lower() == "all" else _split(method.lower())
        params = {
            "hidden_layer_sizes": _parse_hidden(hidden),
            "fairness": None if fairness.strip().lower() == "none" else fairness.strip(),
            "fairness_weight": fairness_weight,
            "fairness_views": fairness_views,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "target_epsilon": target_epsilon,
        }
        if max_rows is not None and max_rows < 20:
            _fail(f"--max-rows must be at least 20; got {max_rows}.")
        if bootstrap < 0:
            _fail(f"--bootstrap must be 0 or more; got {bootstrap}.")
        try:
            ds = load_multitask(
                data, labels=label_list or None, protected=_split(protected) or None,
                positive=_parse_positive(positive, label_list), bins=_parse_bins(bins) or None,
                drop=_split(drop),
            )  # fmt: skip
            with Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                          console=err_console) as bar:  # fmt: skip
                bars: dict[str, int] = {}

                def progress(stage: str, done: int, total: int) -> None:
                    if stage not in bars:
                        bars[stage] = bar.add_task(stage, total=total)
                    bar.update(bars[stage], completed=done, total=total)

                result = evaluate_multitask(
                    ds, methods=methods, seed=seed, params=params, max_rows=max_rows,
                    n_bootstrap=bootstrap, loss_attributes=_split(fairness_on) or None,
                    progress=progress,
                )  # fmt: skip
        except FairleakError as exc:
            _fail(exc)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "multitask.json"
        path.write_text(json.dumps(result.to_dict(), indent=1, allow_nan=False))
        first = ds.protected[0]
        t = Table(title=f"fairleak multitask: {ds.name} (seed {seed}), gaps for '{first}'")
        for head in ("method", "task", "acc", "EO sum", "DP gap", "MIA AUC", "KG", "DG"):
            t.add_column(head, justify="left" if head in ("method", "task") else "right")
        for row in result.summary_rows():
            vals = [row["accuracy"], row.get(f"eo_sum[{first}]"),
                    row.get(f"demographic_parity_difference[{first}]"), row["leakage_auc"],
                    row.get("knowledge_gain"), row.get(f"discrimination_gain[{first}]")]  # fmt: skip
            t.add_row(row["method"], row["task"],
                      *("–" if v is None else f"{v:+.3f}" if i >= 4 else f"{v:.3f}"
                        for i, v in enumerate(vals)))  # fmt: skip
        wide = console if console.is_terminal else Console(width=140)
        wide.print(t)
        wide.print("KG = accuracy minus STL's (negative transfer < 0); DG = EO sum minus STL's "
                   "(bias transfer > 0).", highlight=False)  # fmt: skip
        wide.print(f"results: {path}", highlight=False)
