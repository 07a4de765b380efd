"""``fairleak fhe-demo``: train, encrypt the test rows, score them encrypted, compare with plaintext."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _parse_ks(value: str | None) -> list[int | None]:
    if not value:
        return [None]
    try:
        ks = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"--reduce takes a number of inputs or a comma-separated list (8,16,32); got {value!r}."
        ) from None
    return ks or [None]


def register(app: typer.Typer) -> None:
    """Add ``fhe-demo`` to the ``fairleak`` command."""

    @app.command("fhe-demo")
    def fhe_demo(
        dataset: Annotated[
            str, typer.Option(help="Bundled dataset: adult, compas, german.")
        ] = "adult",
        model: Annotated[
            str, typer.Option(help="lr (logistic regression) or mlp (one hidden layer, x^2).")
        ] = "lr",
        hidden: Annotated[int, typer.Option(help="Hidden units of the mlp.")] = 16,
        reduce: Annotated[
            str | None,
            typer.Option(
                help="Encrypt K inputs per record instead of all columns (projection fitted on "
                "public rows); a list (8,16,32) compares several K."
            ),
        ] = None,
        method: Annotated[str, typer.Option(help="Reduction: pca or f_classif.")] = "pca",
        epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
        dp_epsilon: Annotated[
            float | None, typer.Option(help="Train with DP-SGD at this epsilon.")
        ] = None,
        max_rows: Annotated[
            int | None, typer.Option(help="Encrypt at most this many test rows.")
        ] = None,
        seed: Annotated[int, typer.Option(help="Random seed (split, training).")] = 0,
        out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    ) -> None:
        """Encrypted inference (CKKS, TenSEAL): score the test rows of a dataset on ciphertexts and
        compare accuracy and latency with plaintext scoring. Needs the optional extra 'fhe' (TenSEAL)."""
        from fairleak.errors import FairleakError

        console, err = Console(), Console(stderr=True)
        try:
            from fairleak.fhe import require_tenseal, run_encrypted_inference

            require_tenseal()
        except ImportError as exc:
            err.print(
                f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, markup=True
            )
            raise typer.Exit(code=2) from None
        results = []
        try:
            for k in _parse_ks(reduce):
                label = "all inputs" if k is None else f"k = {k}"
                with err.status(f"{label}: starting") as status:
                    res = run_encrypted_inference(
                        dataset=dataset, model=model, hidden=hidden, reduce=k, reduce_method=method,
                        epochs=epochs, dp_epsilon=dp_epsilon, max_rows=max_rows, seed=seed,
                        progress=lambda stage, label=label, status=status: status.update(f"{label}: {stage}"),
                    )  # fmt: skip
                results.append(res)
        except FairleakError as exc:
            err.print(
                f"[bold red]error:[/bold red] {escape(str(exc))}",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
            raise typer.Exit(code=2) from None
        first = results[0]
        t = Table(
            title=f"Encrypted inference: {first.dataset}, {model}, {first.n_rows:,} test rows"
        )
        for col in ("inputs", "plain acc", "encrypted acc", "agreement", "max |error|",
                    "encrypt ms/rec", "server ms/rec", "decrypt ms/rec", "plain ms/rec", "slowdown"):  # fmt: skip
            t.add_column(col, justify="right")
        for r in results:
            ms = r.to_dict()["ms_per_record"]
            t.add_row(
                f"{r.n_inputs}" + ("" if r.reduction is None else f" ({r.reduction['method']})"),
                f"{r.plaintext_accuracy:.4f}", f"{r.encrypted_accuracy:.4f}",
                f"{r.decision_agreement:.2%}", f"{r.max_abs_error:.1e}",
                f"{ms['encrypt']:.3f}", f"{ms['server']:.3f}", f"{ms['decrypt']:.4f}",
                f"{ms['plaintext']:.5f}", f"{r.slowdown:,.0f}x",
            )  # fmt: skip
        (console if console.is_terminal else Console(width=160)).print(t)
        console.print(first.parameters["security"], highlight=False)
        if first.epsilon is not None:
            console.print(f"trained with DP-SGD: epsilon = {first.epsilon:.2f}", highlight=False)
        for note in first.notes:
            console.print(f"note: {note}", highlight=False)
        if out is not None:
            payload = [r.to_dict() for r in results]
            out.write_text(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
            console.print(f"results: {out}", highlight=False)
