"""User-facing errors.

Every failure a user can cause is a :class:`LoupeError` whose message says what was wrong,
where (file, line, key, source or column) and what to do.  The CLI prints it without a
traceback and exits non-zero; anything else escaping is a bug in Loupe.
"""

from __future__ import annotations


class LoupeError(Exception):
    """A mistake in the user's input, configuration or request.

    Parameters
    ----------
    what
        What went wrong, in the user's words.
    where
        The file, line, key, source or column concerned.
    fix
        What the user can do about it.
    """

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        parts = [self.what]
        if self.where:
            parts.append(f"  where: {self.where}")
        if self.fix:
            parts.append(f"  what to do: {self.fix}")
        return "\n".join(parts)


class ConfigError(LoupeError):
    """``loupe.toml`` is missing, unreadable or invalid."""


class SourceError(LoupeError):
    """A declared source cannot be read or mapped (missing file, unknown column...)."""


class WarehouseError(LoupeError):
    """The warehouse cannot be opened or a required table is missing."""


class NotFoundError(LoupeError):
    """A customer, table or object the user named does not exist."""

    exit_code = 1
