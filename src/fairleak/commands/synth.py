"""``fairleak synth``: a fair, differentially private synthetic copy of a table (FLIP-lite).

Parses arguments, shows progress and writes the table, ``<out>.json`` and ``<out>.html``; the
work is :func:`fairleak.synth.api.run_synth`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["register"]

console = Console()
err_console = Console(stderr=True)


def _fail(message: object) -> None:
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def register(app: typer.Typer) -> None:
    """Add ``fairleak synth`` to ``app``."""

    @app.command("synth")
    def synth(
        data: Annotated[str, typer.Argument(help="adult, compas, german, or a CSV/Parquet file.")],
        protected: Annotated[str | None, typer.Option(help="Protected attribute column(s), comma separated (bundled: optional).")] = None,
        label: Annotated[str | None, typer.Option(help="Label column (bundled: optional).")] = None,
        positive: Annotated[str | None, typer.Option(help="Positive label value.")] = None,
        epsilon: Annotated[float, typer.Option(help="Target epsilon; 'inf' trains without DP.")] = 3.0,
        delta: Annotated[float, typer.Option(help="Target delta.")] = 1e-5,
        rows: Annotated[int | None, typer.Option(help="Synthetic rows to write (default: as many as trained on).")] = None,
        out: Annotated[Path, typer.Option(help="The synthetic table (.csv or .parquet); the report goes next to it.")] = Path("synth.csv"),
        schema: Annotated[Path | None, typer.Option(help="Public schema JSON (category lists, numeric bounds).")] = None,
        epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
        batch_size: Annotated[int, typer.Option(help="Expected rows per step (all groups).")] = 1024,
        align_weight: Annotated[float, typer.Option(help="Latent alignment weight (0: off).")] = 1.0,
        groups: Annotated[str, typer.Option(help="Sampling groups: first, intersection or a protected column.")] = "first",
        marginal: Annotated[str, typer.Option(help="Protected attributes of generated rows: data or balanced.")] = "data",
        noise: Annotated[str, typer.Option(help="secure (OS entropy) or reproducible (from --seed; not a DP release).")] = "secure",
        evaluate: Annotated[bool, typer.Option(help="Hold out 40% of the rows to measure fidelity, utility, fairness and privacy.")] = True,
        seed: Annotated[int, typer.Option(help="Random seed (splits, initialisation; noise only with --noise reproducible).")] = 0,
    ) -> None:
        """Write a synthetic copy of DATA (FLIP-lite: a VAE trained with group-balanced DP-SGD and
        latent alignment across protected groups) and a report (OUT with .json and .html)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from fairleak.errors import FairleakError
        from fairleak.report.synth import render_synth_report
        from fairleak.synth.api import run_synth

        if noise not in ("secure", "reproducible"):
            _fail(f"--noise must be 'secure' or 'reproducible'; got '{noise}'.")
        if out.suffix.lower() not in (".csv", ".parquet"):
            _fail(f"--out must end in .csv or .parquet; got '{out.name}'.")
        if rows is not None and rows < 1:
            _fail(f"--rows must be a positive number; got {rows}.")
        if not epsilon > 0:
            _fail(f"--epsilon must be positive (or inf); got {epsilon}.")
        params = {"epochs": epochs, "batch_size": batch_size, "align_weight": align_weight,
                  "groups": groups, "marginal": marginal, "noise": noise, "delta": delta}  # fmt: skip
        try:
            with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                          console=err_console) as bar:  # fmt: skip
                bars: dict[str, int] = {}

                def progress(stage: str, done: int, total: int) -> None:
                    if stage not in bars:
                        bars[stage] = bar.add_task(stage, total=total)
                    bar.update(bars[stage], completed=done, total=total)

                res = run_synth(
                    data, protected=_split(protected) or None, label=label, positive=positive,
                    epsilon=epsilon, rows=rows, schema=schema, evaluate=evaluate, seed=seed,
                    params=params, progress=progress,
                )  # fmt: skip
        except FairleakError as exc:
            _fail(exc)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".parquet":
            res.table.to_parquet(out, index=False)
        else:
            res.table.to_csv(out, index=False)
        jpath, hpath = out.with_suffix(".json"), out.with_suffix(".html")
        jpath.write_text(json.dumps(res.results, indent=1, allow_nan=False, default=float))
        hpath.write_text(render_synth_report(res.results))
        r = res.results
        eps = r["epsilon"]
        console.print(f"{len(res.table):,} synthetic rows: {out}", highlight=False)
        console.print(f"epsilon: {'not private' if eps is None else f'{eps:.3f} (delta {delta:g})'}; "
                      f"fit {r['timing']['fit_seconds']:.1f} s, peak memory {r['timing']['peak_rss_mib']:.0f} MiB", highlight=False)  # fmt: skip
        ev = r.get("evaluation")
        if ev:
            u = ev["utility"]["models"]["hist_gradient_boosting"]
            console.print(f"utility AUC: synthetic {u['synthetic'].get('auc') or float('nan'):.3f} vs real "
                          f"{u['real'].get('auc') or float('nan'):.3f}; DCR share {ev['privacy']['dcr_share']:.3f}", highlight=False)  # fmt: skip
        for note in r.get("notes", []):
            console.print(f"note: {note}", highlight=False)
        console.print(f"report: {hpath} and {jpath}", highlight=False)
