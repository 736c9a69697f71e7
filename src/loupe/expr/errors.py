"""The error every mistake in an expression raises, drawn with a caret under the mistake."""

from __future__ import annotations

import unicodedata

from loupe.errors import LoupeError


class ExprError(LoupeError):
    """An expression that does not parse, names an unknown field, or mixes types.

    ``str(error)`` shows the line of the expression with carets under the mistake::

        orders_90d >=
                      ^ expected a number, string, date or column after '>='

    Parameters
    ----------
    message
        What is wrong and what was expected.
    text
        The whole expression.
    start, end
        Character offsets of the mistake in ``text`` (``end`` defaults to ``start + 1``).
    fix
        What the user can do about it, when the message does not already say.
    """

    def __init__(
        self,
        message: str,
        text: str = "",
        start: int = 0,
        end: int | None = None,
        *,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.text = text
        self.start = max(0, min(start, len(text)))
        self.end = max(self.start + 1, min(end if end is not None else start + 1, len(text)))
        line_start = text.rfind("\n", 0, self.start) + 1
        self.line = text.count("\n", 0, self.start) + 1
        self.column = self.start - line_start + 1
        where = f"line {self.line}, column {self.column}" if "\n" in text else None
        super().__init__(message, where=where, fix=fix)

    def render(self) -> str:
        text = self.text
        line_start = text.rfind("\n", 0, self.start) + 1
        line_end = text.find("\n", self.start)
        line_end = len(text) if line_end == -1 else line_end
        line = text[line_start:line_end]
        pad = _width(text[line_start : self.start])
        marks = max(1, _width(text[self.start : min(self.end, line_end)]))
        parts = [line, " " * pad + "^" * marks + " " + self.message]
        if self.where:
            parts.append(f"  where: {self.where}")
        if self.fix:
            parts.append(f"  what to do: {self.fix}")
        return "\n".join(parts)


def _width(text: str) -> int:
    """Terminal columns taken by ``text`` (CJK characters take two)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width
