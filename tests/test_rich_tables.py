"""Terminal tables keep names and counts whole at 80 columns."""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from loupe.rich_tables import whole_table

HEADERS = ("table", "raw rows", "published", "exact dup.", "superseded", "flagged", "age (d)")
ROWS = [
    ["contacts", "3,456,949", "3,456,949", "0", "12,345", "0", "340.6"],
    ["marketing_spend", "54,536,791", "54,536,791", "1,024", "0", "198", Text("341.6 stale")],
    ["order_items", "25,000,000", "24,990,001", "0", "0", "4,191", "-"],
]


def _render(width: int, **kw) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(whole_table(HEADERS, ROWS, right=range(1, 7), **kw))
    return console.file.getvalue()


def test_names_and_counts_stay_whole_at_80_columns() -> None:
    wide, narrow = _render(200, give_way={6}), _render(80, give_way={6})
    assert "┃" in wide and "┃" not in narrow  # the rules go first
    assert max(len(line) for line in narrow.splitlines()) <= 80
    lines = {line.split()[0]: line.split() for line in narrow.splitlines()}
    for row in ROWS:
        assert lines[row[0]][:6] == row[:6]
    assert "…" not in narrow
    plain = _render(80)  # without a column to give way, Rich shortens what it must
    assert max(len(line) for line in plain.splitlines()) <= 80


def test_cells_are_text_not_markup() -> None:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(whole_table(("sheet",), [["[bold]"], ["[red]x[/]"]]))
    out = console.file.getvalue()
    assert "[bold]" in out and "[red]x[/]" in out


def test_wide_characters_count_twice() -> None:
    """每日明细 takes eight cells: the column is as wide as that, so it is not cut."""
    console = Console(file=io.StringIO(), width=40, color_system=None)
    rows = [["每日明细", "1,234"], ["汇总", "5"]]
    console.print(whole_table(("sheet", "rows"), rows, right={1}))
    out = console.file.getvalue()
    assert "每日明细" in out and "1,234" in out and "…" not in out


def test_plain_cells_in_any_table_keep_brackets() -> None:
    """A funnel step or segment named ``[vip] buyers`` printed as `` buyers``, and a name
    with ``[/]`` stopped the command with a MarkupError."""
    from rich.table import Table

    from loupe.rich_tables import plain

    console = Console(file=io.StringIO(), width=80, color_system=None)
    table = Table("name")
    for name in ("[vip] buyers", "a [/] b", "[bold]x[/bold]"):
        table.add_row(plain(name))
    console.print(table)
    out = console.file.getvalue()
    assert "[vip] buyers" in out and "a [/] b" in out and "[bold]x[/bold]" in out


def test_a_table_too_wide_whole_splits_by_group() -> None:
    """A table that cannot keep every number whole at 80 columns becomes one table per
    group (a forecast's category), the group in the title; a wide terminal keeps one."""
    from loupe.rich_tables import whole_tables_by

    headers = ["category", "metric", "model", "MAE", "RMSE", "sMAPE %", "MASE", "covered"]
    rows = [
        [cat, metric, model, "11,736", "14,357", "26.3", "0.869", "100%"]
        for cat in ("electronics_accessories", "snacks")
        for metric in ("revenue", "units")
        for model in ("AutoARIMA", "SeasonalNaive *")
    ]
    assert len(whole_tables_by(headers, rows, 0, 200, right=range(3, 8), title="Backtest")) == 1
    tables = whole_tables_by(headers, rows, 0, 80, right=range(3, 8), title="Backtest")
    console = Console(file=io.StringIO(), width=80, color_system=None)
    for table in tables:
        console.print(table)
    out = console.file.getvalue()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    assert [t.title for t in tables] == ["Backtest: electronics_accessories", "Backtest: snacks"]
    lines = [line.replace("│", " ").split() for line in out.splitlines()]
    body = [cells for cells in lines if cells[:1] in (["revenue"], ["units"])]
    assert len(body) == 8 and all(r[-5:] == rows[0][3:] for r in body)
    assert [" ".join(r[1:-5]) for r in body[:2]] == ["AutoARIMA", "SeasonalNaive *"]
