"""CLI verbs of the profile stage: ``loupe profile``, ``loupe rfm``, ``loupe lifecycle``,
``loupe tags``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from rich.table import Table

from loupe.cli import common
from loupe.rich_tables import plain

tags_app = typer.Typer(help="Declared customer tags and how many customers carry them.")


def profile(
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Features use data before this day (default: day after the last order).",
    ),
    json_: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Build customer features, RFM, lifecycle stages and tags."""
    from loupe.profile import build_profile

    day = common.parse_date(as_of, "--as-of")
    wh = common.state.warehouse()
    try:
        with common.progress_bar(enabled=not json_) as bar:
            report = build_profile(wh, day, progress=common.StepProgress(bar))
    finally:
        wh.close()
    doc = report.to_dict()
    if json_:
        common.print_json(doc)
        return
    f, t = doc["features"], doc["tags"]
    out = common.out
    out.print(
        f"[bold]{f['customers']:,}[/] customers ({f['buyers']:,} buyers) as of {f['as_of']}, "
        f"{len(f['columns'])} columns in {f['seconds']:.1f}s; {f['transitions']:,} lifecycle changes"
    )
    out.print("lifecycle: " + ", ".join(f"{k} {v:,}" for k, v in sorted(f["lifecycle"].items())))
    out.print(f"tags: {t['rows']:,} rows")
    for name, n in t["tags"].items():
        out.print(f"  {name}: {n:,}")
    for name, why in t["skipped"].items():
        out.print(f"  [yellow]skipped[/] {name}: {why}")


def rfm(json_: bool = typer.Option(False, "--json", help="Print the grid as JSON.")) -> None:
    """The RFM grid (R × FM) with customer counts and revenue share, and the named groups."""
    from loupe.profile import rfm as rfm_doc

    wh = common.state.warehouse()
    try:
        doc = rfm_doc(wh)
    finally:
        wh.close()
    if json_:
        common.print_json(doc)
        return
    grid = Table(title=f"RFM as of {doc['as_of']} ({doc['buyers']:,} buyers)")
    grid.add_column("R \\ FM")
    for fm in range(1, 6):
        grid.add_column(str(fm), justify="right")
    for row in doc["grid"]:
        cells = [f"{c['customers']:,}\n{c['revenue_share']:.1%}\n[dim]{c['group']}[/]" for c in row]
        grid.add_row(str(row[0]["r"]), *cells)
    common.out.print(grid)
    groups = Table("group", "customers", "share", "revenue share")
    for g in doc["groups"]:
        groups.add_row(
            g["group"], f"{g['customers']:,}", f"{g['share']:.1%}", f"{g['revenue_share']:.1%}"
        )
    common.out.print(groups)


def lifecycle(
    days: int = typer.Option(7, "--days", min=1, help="List transitions of the last N days."),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Customers per lifecycle stage, and who moved stage in the last N days."""
    import ibis

    wh = common.state.warehouse()
    try:
        f = wh.table("customer_features")
        stages = wh.to_pandas(f.lifecycle_stage.value_counts())
        as_of = wh.scalar(f.as_of.max())
        as_of = as_of.date() if hasattr(as_of, "date") else as_of
        h = wh.table("lifecycle_history")
        start = as_of - dt.timedelta(days=days)
        recent = h.filter(h.since >= ibis.date(start), h.since < ibis.date(as_of))
        moved = wh.to_pandas(recent.group_by("stage").aggregate(n=recent.customer_id.nunique()))
    finally:
        wh.close()
    doc: dict[str, Any] = {
        "as_of": as_of,
        "stages": {
            str(k): int(v) for k, v in zip(stages.iloc[:, 0], stages.iloc[:, 1], strict=True)
        },
        "entered_last_days": days,
        "entered": {str(k): int(v) for k, v in zip(moved["stage"], moved["n"], strict=True)},
    }
    if json_:
        common.print_json(doc)
        return
    table = Table(
        "stage", "customers", f"entered in last {days}d", title=f"Lifecycle as of {as_of}"
    )
    for k, v in sorted(doc["stages"].items(), key=lambda kv: -kv[1]):
        table.add_row(k, f"{v:,}", f"{doc['entered'].get(k, 0):,}")
    common.out.print(table)


@tags_app.command("list")
def tags_list(json_: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Declared tags with their latest number of customers."""
    from loupe.profile import latest_tags, profile_settings

    wh = common.state.warehouse()
    try:
        declared = profile_settings(wh.settings).tags
        counts: dict[str, int] = {}
        if wh.exists("customer_tags"):
            t = latest_tags(wh.table("customer_tags"))
            df = wh.to_pandas(t.group_by("tag").aggregate(n=t.customer_id.nunique()))
            counts = {str(k): int(v) for k, v in zip(df["tag"], df["n"], strict=True)}
    finally:
        wh.close()
    rows: list[dict[str, Any]] = [
        {
            "name": tag.name,
            "label_zh": tag.label_zh or tag.name,
            "label_en": tag.label_en,
            "category": tag.category,
            "kind": tag.kind,
            "definition": tag.expr if tag.kind == "expr" else _describe(tag),
            "description": tag.description,
            "customers": counts.get(tag.name, 0),
        }
        for tag in declared
    ]
    if json_:
        common.print_json({"tags": rows})
        return
    table = Table("tag", "label", "category", "definition", "customers")
    for r in rows:
        table.add_row(
            plain(r["name"]),
            plain(r["label_en"] or ""),
            plain(r["category"]),
            plain(r["definition"] or ""),
            f"{r['customers']:,}",
        )
    common.out.print(table)


def _describe(tag: Any) -> str:
    if tag.kind == "threshold":  # `6.0 <= orders_365d`, not `6.0 <= orders_365d <= `
        low = f"{tag.min} <= " if tag.min is not None else ""
        high = f" <= {tag.max}" if tag.max is not None else ""
        return f"{low}{tag.column}{high}"
    if tag.kind == "quantile":
        return f"{len(tag.labels)} buckets of {tag.column}" + (
            f" where {tag.expr}" if tag.expr else ""
        )
    return f"top {tag.k} {tag.source} (share >= {tag.min_share})"


def register(app: typer.Typer) -> None:
    """Add the profile verbs to the root app (once)."""
    if any(c.name == "profile" for c in app.registered_commands):
        return
    app.command("profile")(profile)
    app.command("rfm")(rfm)
    app.command("lifecycle")(lifecycle)
    app.add_typer(tags_app, name="tags")
