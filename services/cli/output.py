"""What every `cim` command shares: the consoles, progress bars, count summaries and the one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cim_core.errors import CimError

console = Console()
err_console = Console(stderr=True)


def _bar() -> Progress:
    """Progress on stderr, shown only on a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    )


@contextmanager
def progress_bar(total: int | None, what: str) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr; yields a function that advances it."""
    with _bar() as p:
        task = p.add_task(what, total=total)
        yield lambda n=1: p.advance(task, n)


@contextmanager
def steps_bar(what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields a function step(done, total) that sets it."""
    with _bar() as p:
        task = p.add_task(what, total=None)
        yield lambda done, total: p.update(task, completed=done, total=total)


def counts_text(counts: dict[str, int]) -> str:
    """'building 12, storey 40': object counts by class, sorted."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def print_error(exc: Exception) -> None:
    """One line on stderr: the message of our own errors, the type and first line of any other."""
    if isinstance(exc, CimError):
        print(f"error: {exc}", file=sys.stderr)
        return
    first = str(exc).strip().splitlines()
    print(
        f"error: {type(exc).__name__}: {first[0] if first else ''} (run with --debug for details)",
        file=sys.stderr,
    )


def print_interrupted() -> None:
    print("interrupted: nothing of the current import was written", file=sys.stderr)
