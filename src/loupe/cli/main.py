"""The ``loupe`` command: global options, error handling, and the stage sub-commands.

Each stage's verbs live in their own module (``cli/ingest.py``, ``cli/identity.py`` …) and
are registered here.  A :class:`~loupe.errors.LoupeError` is printed without a traceback
and turns into a non-zero exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from loupe import __version__
from loupe.cli import common
from loupe.errors import LoupeError

app = typer.Typer(
    name="loupe",
    help="Loupe: customer data and precision marketing, from raw files to decisions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"loupe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    project: Path = typer.Option(
        Path("."), "--project", "-p", help="Project folder (holds loupe.toml).", show_default=False
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Act on the project in the current folder, or the one named by --project."""
    common.state.project = project.resolve()


_registered: list[bool] = []


def _register() -> None:
    """Add every stage's verbs to the root app (once per process)."""
    if _registered:
        return
    from loupe.cli import (
        analytics,
        clv,
        identity,
        ingest,
        models,
        profile,
        project,
        quality,
        segments,
        synth,
    )

    for module in (
        project,
        synth,
        ingest,
        quality,
        identity,
        profile,
        segments,
        analytics,
        clv,
        models,
    ):
        module.register(app)
    _registered.append(True)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except LoupeError as exc:
        text = exc.render()
        # A multi-line message (an expression with a caret under it) starts on its own line,
        # so the caret stays under the character it points at.
        sep = "\n" if "\n" in text else " "
        common.err.print(f"[bold red]error:[/]{sep}", end="", highlight=False)
        common.err.print(text, markup=False, highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        common.err.print("aborted")
        return 130
    except Exception as exc:
        # A usage error (unknown option, missing argument) is a ClickException: click's own,
        # or the copy recent typer releases vendor (``typer._click``, with no ``click``
        # installed).  Matched by class name so both work; it prints itself and carries its
        # exit code.
        if any(c.__name__ == "ClickException" for c in type(exc).__mro__):
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
