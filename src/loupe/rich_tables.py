"""Terminal tables that keep names and numbers whole when the terminal is narrow.

Rich fits a table to the terminal by shortening its widest columns with an ellipsis, so at
80 columns ``eshop_orders`` and ``eshop_order_lines`` both printed as ``eshop_ord…`` and a
count's heading as ``quarant…``.  :func:`whole_table` marks the columns of names and
numbers as not to be wrapped, which Rich shortens only when nothing else is left to
shorten: the columns a command names as secondary give way first.  Before that, a table
that does not fit drops its rules (a cell of width per column; the headings stay bold).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text


class WholeTable(Table):
    """A table that trades its rules for width before Rich shortens a cell."""

    #: The width with every cell whole but those that give way, rules included: a command
    #: may pick another layout when it is more than the terminal's.
    whole_width = 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        narrow = self.whole_width > options.max_width
        self.box = None if narrow else box.HEAVY_HEAD
        self.pad_edge = not narrow
        yield from super().__rich_console__(console, options)


def whole_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    *,
    right: Collection[int] = (),
    give_way: Collection[int] = (),
    title: str | None = None,
) -> WholeTable:
    """A Rich table of ``rows`` under ``headers``.

    A cell is plain text (a user's ``[summary]`` is not read as markup) or a styled
    :class:`~rich.text.Text`; widths are counted in terminal cells (a Chinese character
    takes two).  Columns at the indices in ``right`` are right-aligned (counts).  The
    columns in ``give_way`` wrap or shorten when the terminal is narrow; the others are
    shortened only if the table cannot fit otherwise.
    """
    cells = [[c if isinstance(c, Text) else plain(c) for c in r] for r in rows]
    table = WholeTable(*headers, title=title, title_justify="left")
    widths = []
    for i, column in enumerate(table.columns):
        column.justify = "right" if i in right else "left"
        column.no_wrap = i not in give_way
        if i in give_way:  # it may wrap to its heading's longest word
            widths.append(max((cell_len(word) for word in headers[i].split()), default=1))
        else:
            widths.append(max([cell_len(headers[i]), *(r[i].cell_len for r in cells)]))
    table.whole_width = sum(widths) + 3 * len(widths) + 1
    for r in cells:
        table.add_row(*r)
    return table


def whole_tables_by(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    group: int,
    width: int,
    *,
    right: Collection[int] = (),
    title: str | None = None,
) -> list[WholeTable]:
    """``rows`` as one :func:`whole_table`, or, when that does not fit ``width`` whole, one
    table per value of the column ``group`` (in order of first appearance), that value in
    its title and the column left out: a narrow terminal loses a column, not every cell's
    end."""
    table = whole_table(headers, rows, right=right, title=title)
    if table.whole_width <= width:
        return [table]
    keep = [i for i in range(len(headers)) if i != group]
    values = list(dict.fromkeys(r[group] for r in rows))
    return [
        whole_table(
            [headers[i] for i in keep],
            [[r[i] for i in keep] for r in rows if r[group] == value],
            right=[n for n, i in enumerate(keep) if i in right],
            title=f"{title}: {value}" if title else value,
        )
        for value in values
    ]


def columns_that_fit(
    headers: Sequence[str], rows: Sequence[Sequence[str | Text]], width: int
) -> int:
    """How many leading columns of a :func:`whole_table` fit ``width`` terminal cells whole,
    without rules (a wide grid, such as retention by period, can show only its first
    periods on a narrow terminal rather than cut every number short)."""
    used = -2
    for i, heading in enumerate(headers):
        used += 2 + max([cell_len(heading), *(cell_len(str(r[i])) for r in rows)])
        if used > width:
            return i
    return len(headers)


def plain(value: object) -> Text:
    """``value`` as a table cell of plain text: a user's name such as ``[vip] buyers`` is
    not read as Rich markup (it printed as `` buyers``, and ``a [/] b`` was a traceback)."""
    return Text(str(value))
