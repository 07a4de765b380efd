"""``fairleak sweep``: train a grid of candidates in one audit, show the accuracy-fairness-privacy
front, choose a model on it, optionally export it as ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _numbers(option: str, value: str | None, *, none_ok: bool = False) -> list[Any] | None:
    if value is None:
        return None
    out: list[Any] = []
    for part in value.split(","):
        p = part.strip()
        if not p:
            continue
        if none_ok and p.lower() in ("none", "null", "inf"):
            out.append(None)
            continue
        try:
            out.append(float(p))
        except ValueError:
            allowed = "numbers or 'none'" if none_ok else "numbers"
            raise typer.BadParameter(f"{option} takes comma-separated {allowed}; got {p!r} in {value!r}.") from None
    return out


def register(app: typer.Typer) -> None:
    """Add ``sweep`` to the ``fairleak`` command."""

    @app.command("sweep")
    def sweep(
        data: Annotated[
            str | None, typer.Argument(help="A bundled dataset (adult, compas, german) or a CSV/Parquet file. Default: adult.")
        ] = None,
        label: Annotated[str | None, typer.Option(help="Label column (your own file).")] = None,
        positive: Annotated[str | None, typer.Option(help="Label value counted as positive.")] = None,
        protected: Annotated[str | None, typer.Option(help="Protected attribute column(s), comma separated.")] = None,
        weights: Annotated[
            str | None, typer.Option("--weights", help="MLP fairness-penalty weights, e.g. 0,0.5,1,2,5 (0: none).")
        ] = None,
        epsilons: Annotated[
            str | None, typer.Option(help="MLP DP epsilons, e.g. none,1,8 (none: not private).")
        ] = None,
        penalty: Annotated[str | None, typer.Option(help="The MLPs' penalty (demographic_parity, equalized_odds, ...).")] = None,
        fairboost_rounds: Annotated[
            str | None, typer.Option(help="FairBoost candidates: rounds used, e.g. 25,50,100,200 (one fit).")
        ] = None,
        fairboost_constraints: Annotated[
            str | None, typer.Option(help="FairBoost constraints, e.g. equalized_odds,demographic_parity.")
        ] = None,
        constraints: Annotated[
            str | None,
            typer.Option(help="Choose the most accurate model meeting these, e.g. 'dp_gap <= 0.05, epsilon <= 8'."),
        ] = None,
        prefer: Annotated[
            str | None, typer.Option(help="Or choose by weights, one per objective (error, gap, leakage), e.g. 1,2,1.")
        ] = None,
        error: Annotated[str | None, typer.Option(help="First objective: error or balanced_error.")] = None,
        gap: Annotated[str | None, typer.Option(help="Second objective: a fairness gap (worst over attributes and intersections), e.g. dp_gap, eo_gap.")] = None,
        privacy: Annotated[str | None, typer.Option(help="Third objective: auc (strongest attack's AUC - 0.5), tpr_at_1pct_fpr or none.")] = None,
        attacks: Annotated[
            str | None, typer.Option(help="Attacks to run (default: the threshold attacks, which train no model).")
        ] = None,
        bootstrap: Annotated[int | None, typer.Option(help="Resamples for each candidate's P(on the front).")] = None,
        config: Annotated[
            Path | None, typer.Option("--config", "-c", help="YAML: an audit config plus a 'sweep:' section (docs/CONFIG.md).")
        ] = None,
        export: Annotated[
            Path | None, typer.Option(help="Write the chosen model with its preprocessing as ONNX here (extra 'export').")
        ] = None,
        out: Annotated[Path, typer.Option(help="Output folder.")] = Path("fairleak-sweep"),
        seed: Annotated[int | None, typer.Option(help="Random seed (overrides the config).")] = None,
        fast: Annotated[bool, typer.Option(help="A small sweep (fewer rows, epochs and resamples).")] = False,
        cache: Annotated[bool, typer.Option(help="Reuse finished work from OUT/.cache.")] = True,
    ) -> None:
        """Train a grid of candidate models in one run (MLP fairness weights x DP epsilons,
        FairBoost rounds, your own model from --config), measure each on rows it never saw
        (error, every fairness gap, the strongest attack), compute the Pareto front and choose a
        model (constraints, weights, or the knee). Writes results.json (every candidate),
        report.html (the front) and, with --export, the chosen model as ONNX."""
        from fairleak.audit import apply_overrides, default_config, run_audit
        from fairleak.audit.results import write_outputs
        from fairleak.audit.sweep import load_sweep_config, sweep_config, sweep_grid
        from fairleak.commands import task_progress
        from fairleak.errors import FairleakError
        from fairleak.report import write_report

        console, err = Console(), Console(stderr=True)

        def fail(exc: Exception) -> None:
            err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(code=2)

        try:
            if config is not None:
                cfg, grid = load_sweep_config(config)
            else:
                cfg, grid = default_config(fast=fast).model_copy(update={"models": []}), sweep_grid({})
            over: dict[str, Any] = {}
            for key, value in (("data.dataset", data), ("data.label", label),
                               ("data.positive", positive), ("seed", seed)):  # fmt: skip
                if value is not None:
                    over[key] = value
            if protected is not None:
                over["data.protected"] = [p.strip() for p in protected.split(",") if p.strip()]
            if fast:
                over |= {"split.max_audit": 2000, "train.epochs": 20, "fairness.n_bootstrap": 100,
                         "attacks.n_bootstrap": 50}  # fmt: skip
            if over:
                cfg = apply_overrides(cfg, over)
            g = grid.model_dump()
            for key, value in (("fairness_weights", _numbers("--weights", weights)),
                               ("epsilons", _numbers("--epsilons", epsilons, none_ok=True)),
                               ("fairboost_rounds", None if fairboost_rounds is None else
                                [int(r) for r in _numbers("--fairboost-rounds", fairboost_rounds) or []]),
                               ("penalty", penalty),
                               ("fairboost_constraints", None if fairboost_constraints is None else
                                [c.strip() for c in fairboost_constraints.split(",") if c.strip()]),
                               ("attacks", None if attacks is None else
                                [a.strip() for a in attacks.split(",") if a.strip()])):  # fmt: skip
                if value is not None:
                    g[key] = value
            grid = sweep_grid(g, source="(command line)")
            front: dict[str, Any] = {}
            for key, value in (("constraints", constraints), ("error", error), ("gap", gap),
                               ("privacy", privacy), ("n_bootstrap", bootstrap),
                               ("weights", _numbers("--prefer", prefer))):  # fmt: skip
                if value is not None:
                    front[key] = value
            if fast and bootstrap is None:
                front.setdefault("n_bootstrap", 100)
            scfg = sweep_config(cfg, grid, front=front)  # every setting checked before training
            with task_progress(err) as progress:
                result = run_audit(scfg, out_dir=out, progress=progress, use_cache=cache)
            paths = write_outputs(result, out)
            paths["report"] = write_report(result.results, out / "report.html")
            if export is not None:
                from fairleak.audit.sweep import export_selected

                try:
                    paths["onnx"] = export_selected(result, export)
                except ImportError as exc:
                    fail(exc)
        except FairleakError as exc:
            fail(exc)
        f = result.results.get("front", {})
        keys = f.get("objectives", [])
        t = Table(title=f"fairleak sweep: {result.results['dataset']['name']} ({len(f.get('candidates', []))} candidates)")
        for col in ("candidate", "family", "accuracy", f"worst {keys[1] if len(keys) > 1 else 'gap'}",
                    "attack AUC", "epsilon", "rank", "P(front)"):  # fmt: skip
            t.add_column(col, justify="left" if col in ("candidate", "family") else "right")

        def fmt(v: Any, nd: int = 3) -> str:
            return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

        for c in sorted(f.get("candidates", []), key=lambda c: (c["rank"] is None, c["rank"] or 0, c["error"])):
            star = "★ " if c["name"] == f.get("selected") else ""
            t.add_row(
                escape(star + c["name"]), escape(c["family"]), fmt(c["accuracy"]),
                fmt(c["worst_gaps"].get(keys[1]) if len(keys) > 1 else None),
                fmt((c["attack"] or {}).get("auc")), fmt(c["epsilon"], 2), fmt(c["rank"]), fmt(c["p_front"], 2),
            )  # fmt: skip
        (console if console.is_terminal else Console(width=160)).print(t)
        if f.get("selected"):
            console.print(f"chosen: {f['selected']} ({f['selection_rule']}). {f['why']}", highlight=False)
        for note in f.get("notes", []):
            console.print(f"note: {note}", highlight=False)
        console.print(f"trained {result.trainings} model set(s), reused {result.cache_hits} from the cache")
        for k, pth in paths.items():
            console.print(f"{k}: {pth}")
