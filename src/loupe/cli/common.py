"""What every CLI module shares: the project option, JSON output, progress bars, errors.

Commands only parse, call a stage function, and print.  ``--json`` prints exactly one JSON
document on stdout and nothing else (progress and messages go to stderr).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from loupe.config import Settings, load_settings
from loupe.errors import LoupeError
from loupe.jsonable import json_ready

if TYPE_CHECKING:  # Ibis and pandas load on first use: `--help` and `--version` do not need them
    from loupe.warehouse import Warehouse

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # never re-wrap caret messages


@dataclass
class State:
    """Global options, set by the root callback."""

    project: Path = field(default_factory=Path.cwd)

    def settings(self) -> Settings:
        return load_settings(self.project)

    def warehouse(self) -> Warehouse:
        from loupe.warehouse import Warehouse

        return Warehouse.open(self.settings())


state = State()


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(doc: Any) -> None:
    """Print one JSON document on stdout (UTF-8, Chinese kept readable)."""
    text = json.dumps(json_ready(json.loads(json.dumps(doc, default=_default))), ensure_ascii=False)
    print(text)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A Rich progress bar on stderr; invisible when ``enabled`` is false (``--json``)."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not enabled,
    )
    with progress:
        yield progress


class StepProgress:
    """Adapter from a stage's ``progress(step, done, total)`` callback to a Rich bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=max(total, 1))
        self.progress.update(self.tasks[step], completed=done, total=max(total, 1))


@overload
def parse_date(value: str, option: str) -> date: ...
@overload
def parse_date(value: None, option: str) -> None: ...
def parse_date(value: str | None, option: str) -> date | None:
    """The ``YYYY-MM-DD`` value of a command-line ``option`` (``None`` when not given)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LoupeError(
            f"{option} must be a date YYYY-MM-DD, not {value!r}", where=option
        ) from None
