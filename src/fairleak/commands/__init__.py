"""CLI subcommands that live in their own modules: each exposes ``register(app)``.

A command function only parses arguments, shows progress and writes files; the work it does is a
Python function in the library. Heavy imports go inside the command function, so that
``fairleak --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def task_progress(console: Any) -> Iterator[Callable[[str, int, int, str], None]]:
    """Rich progress bars, one per named task, as the ``progress(task, done, total, unit)``
    callback ``run_audit`` (and everything built on it) reports to."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), console=console, transient=False,
    ) as bar:  # fmt: skip
        tasks: dict[str, Any] = {}

        def progress(task: str, done: int, total: int, unit: str = "steps") -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total, unit=unit)
            bar.update(tasks[task], completed=done, total=total)

        yield progress
