"""Command line: parses arguments, shows progress, writes files. Everything else is in the library."""

from __future__ import annotations

import json
import os
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


def _version(value: bool) -> None:
    if value:
        from fairleak import __version__

        console.print(f"fairleak {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """fairleak: audit classifiers on sensitive tabular data for fairness and privacy together."""


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
    for col in ("name", "rows", "features", "label (positive)", "base rate",
                "protected (audit default)", "also available"):  # fmt: skip
        overview.add_column(col)
    for info, s in summaries:
        overview.add_row(
            s["name"],
            f"{s['rows']:,}",
            str(s["features"]),
            f"{s['label']} ({s['positive']})",
            f"{s['base_rate']:.3f}",
            ", ".join(info.default_protected),
            ", ".join(a for a in info.protected if a not in info.default_protected) or "–",
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


def _model_name(path: str) -> str:
    stem = Path(path).stem
    name = "".join(c if c.isalnum() or c in "_-." else "_" for c in stem)[:64]
    return name or "model"


@app.command()
def audit(
    data: Annotated[
        str | None,
        typer.Argument(
            help="A bundled dataset (adult, compas, german) or a CSV/Parquet file. Default: adult."
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
        bool, typer.Option("--include-protected", help="Also use protected attributes as features.")
    ] = False,
    impute: Annotated[
        bool,
        typer.Option("--impute", help="Impute missing feature values (median / most frequent, fitted on the population rows) instead of dropping those rows."),
    ] = False,
    keep: Annotated[
        str | None,
        typer.Option(help="Columns never dropped as ID-like or constant (comma separated)."),
    ] = None,
    auto_drop: Annotated[
        bool,
        typer.Option("--auto-drop/--no-auto-drop", help="Drop ID-like (unique per row) and constant feature columns, with a note."),
    ] = True,
    min_group_size: Annotated[
        int | None,
        typer.Option(help="Refuse protected groups with fewer rows than this (default 10)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Audit YOUR fitted model: a scikit-learn model saved with skops (.skops)."),
    ] = None,
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle", help="Allow --model to be a pickle/joblib file (it can run code: only your own files).")
    ] = False,
    trust: Annotated[
        list[str] | None, typer.Option(help="A type name skops may load from --model (repeatable).")
    ] = None,
    predictions: Annotated[
        str | None,
        typer.Option(help="Audit predictions only: a column of DATA, or a file with one probability per row."),
    ] = None,
    member_column: Annotated[
        str | None, typer.Option(help="Column marking the rows --model trained on (1/true/yes/train).")
    ] = None,
    train: Annotated[str | None, typer.Option(help="File of the rows --model trained on.")] = None,
    holdout: Annotated[str | None, typer.Option(help="File of rows --model never saw.")] = None,
    population: Annotated[
        str | None, typer.Option(help="File of further unseen rows (default: half of --holdout).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (see docs/CONFIG.md).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("fairleak-out"),
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the config).")] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="A complete but small audit (under a minute).")
    ] = False,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="--cache (default): reuse model sets finished earlier in OUT/.cache and store new ones. "
            "--no-cache: recompute everything (nothing is read), then store the fresh results in the cache.",
        ),
    ] = True,
    backend: Annotated[
        str | None,
        typer.Option(help="Where model sets train: local (this process) or ray (shards as Ray tasks; same results)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="--backend ray: an existing Ray cluster ('auto', 'ray://head:10001').")
    ] = None,
    figures: Annotated[
        bool,
        typer.Option("--figures/--no-figures", help="Also write every chart as a PNG into OUT/figures (for documents)."),
    ] = True,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="Threads for torch and BLAS (default: the cores this process may use, at most OMP_NUM_THREADS)."),
    ] = None,
) -> None:
    """Audit classifiers for fairness and privacy together; write results.json, Parquet tables
    and report.html to OUT. With no arguments: Adult, protected sex and race, fairleak's six
    reference models. With --model (or --predictions) and the rows it trained on: YOUR model."""
    from fairleak.audit import apply_overrides, default_config, load_config, run_audit
    from fairleak.audit.data_source import parse_bins
    from fairleak.audit.results import write_outputs
    from fairleak.commands import task_progress
    from fairleak.report import write_report
    from fairleak.threads import limit_threads

    try:
        cfg = load_config(config) if config is not None else default_config(fast=fast)
        over: dict = {}
        if config is not None and fast:
            over["split.max_audit"] = default_config(fast=True).split.max_audit
        for key, value in (("data.dataset", data), ("data.label", label), ("data.positive", positive),
                           ("data.min_group_size", min_group_size), ("seed", seed),
                           ("data.member_column", member_column), ("data.train", train),
                           ("data.holdout", holdout), ("data.population", population),
                           ("backend.name", backend), ("backend.address", address)):  # fmt: skip
            if value is not None:
                over[key] = value
        if protected is not None:
            over["data.protected"] = _split_list(protected)
        if bins:
            over["data.bins"] = parse_bins(bins)
        if drop is not None:
            over["data.drop"] = _split_list(drop)
        if include_protected:
            over["data.include_protected"] = True
        if impute:
            over["data.missing"] = "impute"
        if keep is not None:
            over["data.keep"] = _split_list(keep)
        if not auto_drop:
            over["data.auto_drop"] = False
        if model is not None and predictions is not None:
            _fail(ValueError("Give either --model or --predictions, not both."))
        if model is not None:
            over["models"] = [{"name": _model_name(model), "file": model, "trust_pickle": trust_pickle,
                               "trusted_types": list(trust or [])}]  # fmt: skip
        elif predictions is not None:
            over["models"] = [{"name": "predictions", "predictions": predictions}]
        if over:
            cfg = apply_overrides(cfg, over)
        with task_progress(err_console) as progress:
            with limit_threads(threads) as n_threads:
                result = run_audit(cfg, out_dir=out, progress=progress, use_cache=cache,
                                   threads=n_threads)  # fmt: skip
                progress("writing results.json, Parquet tables, report.html, figures", 0, 2, "steps")
                paths = write_outputs(result, out)
                progress("writing results.json, Parquet tables, report.html, figures", 1, 2, "steps")
                paths["report"] = write_report(result.results, out / "report.html", figures=figures)
                if figures:
                    paths["figures"] = out / "figures"
                progress("writing results.json, Parquet tables, report.html, figures", 2, 2, "steps")
    except FairleakError as exc:
        _fail(exc)
    res = result.results
    for note in res["notes"]:
        console.print(f"note: {note}", highlight=False)
    t = Table(title=f"fairleak audit: {res['dataset']['name']} (seed {cfg.seed})")
    cols = res["summary_columns"]
    for c in cols:
        t.add_column(c["label"], justify="left" if c["key"] in ("model", "strongest_attack") else "right",
                     overflow="fold")  # fmt: skip
    for row in res["summary"]:
        vals = []
        for c in cols:
            v = row.get(c["key"])
            vals.append("–" if v is None else (f"{v:.{c['digits']}f}" if isinstance(v, float) else str(v)))
        t.add_row(*vals)
    # In a log or a pipe (not a terminal) Rich would fold the table into 80 columns.
    (console if console.is_terminal else Console(width=160)).print(t)
    attr = res["dataset"]["protected"][0]
    console.print(
        f"gaps and GPRP for protected attribute '{attr}'; all attributes and intersections are in the report."
    )
    reuse = (f"reused {result.cache_hits} from the cache ({out / '.cache'}; --no-cache recomputes them)"
             if cache else "the cache was not read (--no-cache); fresh results were stored in it")  # fmt: skip
    console.print(f"trained {result.trainings} model set(s), {reuse}; {n_threads} thread(s)")
    for k, pth in paths.items():
        console.print(f"{k}: {pth}")


def _register(name: str) -> None:
    """Add the subcommand(s) defined in ``fairleak.commands.<name>`` (see its ``register``)."""
    import importlib

    importlib.import_module(f"fairleak.commands.{name}").register(app)


# Subcommands in their own modules, one line each:
_register("fhe")
_register("multitask")
_register("synth")
_register("sweep")


def _other_busy() -> float:
    """How many other processes are running now: the median over ~50 ms of the kernel's count
    of runnable tasks (Linux ``/proc/loadavg``) minus this one; elsewhere the 1-minute load
    average (which lags: a job that just ended still counts)."""
    import time

    samples = []
    for _ in range(5):
        try:
            with open("/proc/loadavg") as f:
                samples.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            break
        time.sleep(0.01)
    if samples:
        return float(sorted(samples)[len(samples) // 2])
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        return 0.0


def _openmp_wait_policy() -> None:
    """How idle OpenMP threads wait, chosen before torch loads its runtime (GNU libgomp), unless
    the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``.

    Measured on 2 cores, 64 MLPs, 2 threads: on a quiet machine, threads that sleep at once
    (``PASSIVE``) pay a wake-up between every two ops: 2.2x slower than spinning. Beside another
    busy process, spinning threads wait at every barrier for a descheduled peer: libgomp's default
    spin made training 15-30x slower, a short spin (10,000) 2.4x slower than ``PASSIVE``. So:
    a short spin on a quiet machine, ``PASSIVE`` when other work is running (at least one other
    runnable process per two cores this process may use).
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    from fairleak.threads import available_cores

    if _other_busy() >= 0.5 * available_cores():
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        os.environ["GOMP_SPINCOUNT"] = "10000"


def main() -> None:
    """Entry point of the ``fairleak`` command."""
    _openmp_wait_policy()
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
