"""What every `cim` command shares: the consoles, progress bars, count summaries and the one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
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


def print_usage_error(exc: typer.TyperException) -> None:
    """One line on stderr for a usage error (click's, inside Typer): the parameter, the problem, the help."""
    param = getattr(exc, "param", None)
    if isinstance(exc, typer.BadParameter) and param is not None and exc.message:
        name = param.opts[0] if param.param_type_name == "option" else param.human_readable_name
        errors = getattr(exc.__cause__, "errors", None)  # Typer's type checks raise from pydantic's errors
        got = f", got {errors()[0]['input']!r}" if errors else ""
        text = f"{name}: {exc.message[:1].lower()}{exc.message[1:].rstrip('.')}{got}"
    else:  # no such option or command, a missing argument, a missing or extra value: click's message names it
        text = exc.format_message().rstrip(".")
        text = text[:1].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    see = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    print(f"error: {' '.join(text.split())}{see}", file=sys.stderr)


def print_interrupted() -> None:
    print("interrupted: nothing of the current import was written", file=sys.stderr)
