"""Command line: parses arguments, shows progress, writes files. Everything else is in the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fairleak.errors import FairleakError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="fairleak: audit classifiers on sensitive tabular data for fairness and privacy together.",
)
console = Console()
err_console = Console(stderr=True)


def _fail(exc: Exception) -> None:
    err_console.print(
        f"[bold red]error:[/bold red] {exc}", highlight=False, markup=True, soft_wrap=True
    )
    raise typer.Exit(code=2)


def _split_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@app.command()
def datasets(
    name: Annotated[str | None, typer.Argument(help="Show one dataset in detail.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List the bundled datasets: rows, features, label base rate, group sizes."""
    from fairleak.data import dataset_summary, list_datasets, load_dataset

    try:
        infos = list_datasets() if name is None else [None]
        summaries = []
        for info in infos:
            key = name if info is None else info.name
            ds = load_dataset(key)
            if info is None:
                from fairleak.data import DATASETS

                info = DATASETS[ds.name]
            summary = dataset_summary(load_dataset(key, protected=list(info.protected)))
            summary["features"] = int(ds.features.shape[1])  # with the default protected attributes
            summaries.append((info, summary))
    except FairleakError as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps([s for _, s in summaries]))
        return
    overview = Table(title="Bundled datasets")
    for col in ("name", "rows", "features", "label (positive)", "base rate", "protected"):
        overview.add_column(col)
    for info, s in summaries:
        overview.add_row(
            s["name"],
            f"{s['rows']:,}",
            str(s["features"]),
            f"{s['label']} ({s['positive']})",
            f"{s['base_rate']:.3f}",
            ", ".join(info.protected),
        )
    console.print(overview)
    for info, s in summaries:
        t = Table(title=f"{info.name}: {info.title}", show_lines=False)
        t.add_column("attribute / intersection")
        t.add_column("group")
        t.add_column("rows", justify="right")
        for attr, groups in s["group_sizes"].items():
            for g, n in groups.items():
                t.add_row(attr, g, f"{n:,}")
        console.print(t)
        for note in s["notes"]:
            console.print(f"  note: {note}", highlight=False)
        console.print(f"  source: {info.source} ({info.licence})", highlight=False)


@app.command()
def audit(
    data: Annotated[
        str | None,
        typer.Argument(
            help="A bundled dataset name (adult, compas, german) or a CSV/Parquet file."
        ),
    ] = None,
    label: Annotated[str | None, typer.Option(help="Label column (your own file).")] = None,
    positive: Annotated[str | None, typer.Option(help="Label value counted as positive.")] = None,
    protected: Annotated[
        str | None, typer.Option(help="Protected attribute column(s), comma separated.")
    ] = None,
    bins: Annotated[
        list[str] | None,
        typer.Option(help="Bin edges of a numeric protected column: age=25,45,65."),
    ] = None,
    drop: Annotated[str | None, typer.Option(help="Columns not to use as features.")] = None,
    include_protected: Annotated[
        bool, typer.Option(help="Also use protected attributes as features.")
    ] = False,
    min_group_size: Annotated[
        int, typer.Option(help="Refuse protected groups with fewer rows than this.")
    ] = 10,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("fairleak-out"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    fast: Annotated[bool, typer.Option(help="A small, quick audit (for smoke tests).")] = False,
) -> None:
    """Audit a classifier's fairness and privacy on a dataset and write the results."""
    from fairleak.audit.data_source import parse_bins, resolve_dataset
    from fairleak.audit.pipeline import run_baseline_audit

    try:
        ds = resolve_dataset(
            data,
            label=label,
            positive=positive,
            protected=_split_list(protected),
            bins=parse_bins(bins or []),
            drop=_split_list(drop),
            include_protected=include_protected,
            min_group_size=min_group_size,
        )
        for note in ds.notes:
            console.print(f"note: {note}", highlight=False)
        with console.status("training baseline models") as status:
            result = run_baseline_audit(
                ds, seed=seed, fast=fast, progress=lambda msg: status.update(msg)
            )
    except FairleakError as exc:
        _fail(exc)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(result.to_dict(), indent=2))
    t = Table(title=f"Accuracy on non-members ({ds.name}, seed {seed})")
    t.add_column("attribute")
    t.add_column("group")
    t.add_column("n", justify="right")
    for mname in result.models:
        t.add_column(mname, justify="right")
    first = next(iter(result.models.values()))
    t.add_row(
        "all",
        "",
        f"{result.n_nonmembers:,}",
        *[f"{m['test_accuracy']:.3f}" for m in result.models.values()],
    )
    for attr, groups in first["test_accuracy_by_group"].items():
        for g, v in groups.items():
            accs = [
                f"{m['test_accuracy_by_group'][attr][g]['accuracy']:.3f}"
                for m in result.models.values()
            ]
            t.add_row(attr, g, f"{v['n']:,}", *accs)
    console.print(t)
    console.print(f"results written to {path}")


def main() -> None:
    """Entry point of the ``fairleak`` command."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
