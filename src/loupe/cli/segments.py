"""CLI verbs of the segments stage: ``loupe segments …`` and ``loupe cluster``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from loupe.cli import common
from loupe.rich_tables import plain, whole_table

segments_app = typer.Typer(help="Saved audiences in the segment language.", no_args_is_help=True)


def _with_wh(fn: Any) -> Any:
    wh = common.state.warehouse()
    try:
        return fn(wh)
    finally:
        wh.close()


@segments_app.command("preview")
def preview(
    expr: str = typer.Argument(
        ..., help="A condition, e.g. 'orders_90d >= 2 and city == \"上海\"'."
    ),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Size of a segment without saving it; a bad expression shows where it is wrong."""
    from loupe.segments import preview as run

    doc = _with_wh(lambda wh: run(wh, expr))
    if json_:
        common.print_json(doc)
        return
    common.out.print(
        f"[bold]{doc['size']:,}[/] of {doc['population']:,} customers ({doc['share']:.1%}), "
        f"{doc['revenue_share']:.1%} of revenue"
    )
    if doc["sample"]:
        common.out.print("e.g. " + ", ".join(doc["sample"][:5]))


@segments_app.command("create")
def create(
    name: str = typer.Argument(..., help="Segment name."),
    expr: str = typer.Argument(..., help="The condition."),
    description: str = typer.Option("", "--description", "-d", help="What the segment is for."),
    replace: bool = typer.Option(False, "--replace", help="Redefine an existing segment."),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Check, save and compute a segment."""
    from loupe.segments import create_segment

    doc = _with_wh(lambda wh: create_segment(wh, name, expr, description, replace_existing=replace))
    if json_:
        common.print_json(doc)
        return
    common.out.print(f"saved [bold]{name}[/]: {doc['size']:,} customers ({doc['share']:.1%})")


@segments_app.command("list")
def list_(json_: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Saved segments with their latest size."""
    from loupe.segments import list_segments

    rows = _with_wh(list_segments)
    if json_:
        common.print_json({"data": rows, "count": len(rows)})
        return
    cells = [
        [
            r["name"],
            f"{r['size']:,}",
            plain(r["expr"]) if r["expr"] else Text("(static)", style="dim"),
            f"{r['computed_at']:%Y-%m-%d %H:%M:%S}" if r["computed_at"] else "",
        ]
        for r in rows
    ]
    table = whole_table(["segment", "size", "expression", "computed at"], cells, right=(1,))
    if table.whole_width <= common.out.width:
        common.out.print(table)
        return
    for name, size, expr, at in cells:  # narrow: a segment per block, its name whole
        head = Text.assemble((name, "bold"), f"  {size} customers", (f"  {at}", "dim"))
        common.out.print(head, soft_wrap=False)
        common.out.print(Padding(expr, (0, 0, 0, 3), expand=False), soft_wrap=False)


@segments_app.command("show")
def show(
    name: str = typer.Argument(..., help="Segment name."),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """A segment's definition, size, and how its members differ from everyone."""
    from loupe.segments import show_segment

    doc = _with_wh(lambda wh: show_segment(wh, name))
    if json_:
        common.print_json(doc)
        return
    out = common.out
    out.print(f"[bold]{doc['name']}[/]: {doc['expr'] or '(static)'}")
    if doc["description"]:
        out.print(doc["description"])
    out.print(f"{doc['size']:,} of {doc['population']:,} customers")
    table = Table("feature", "segment", "everyone", "lift")
    for p in doc["profile"]:
        lift = f"{p['lift']:.2f}" if p["lift"] is not None else ""
        table.add_row(p["feature"], _num(p["segment"]), _num(p["population"]), lift)
    out.print(table)
    out.print("lifecycle: " + ", ".join(f"{k} {v:,}" for k, v in doc["lifecycle"].items()))


def _num(v: Any) -> str:
    try:
        return f"{float(v):,.2f}"
    except (TypeError, ValueError):
        return ""


@segments_app.command("overlap")
def overlap(
    names: list[str] | None = typer.Argument(None, help="Segments (default: all)."),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Customers shared by each pair of segments (and the Jaccard index)."""
    from loupe.segments import overlap as run

    doc = _with_wh(lambda wh: run(wh, names or None))
    if json_:
        common.print_json(doc)
        return
    names = doc["segments"]
    cells = [
        [f"{doc['shared'][i][j]:,} ({doc['jaccard'][i][j]:.2f})" for j in range(len(names))]
        for i in range(len(names))
    ]
    title = "shared customers (Jaccard)"
    rows = [[a, *row] for a, row in zip(names, cells, strict=True)]
    table = whole_table(["", *names], rows, title=title)
    numbered = table.whole_width > common.out.width
    if numbered:  # narrow: segments by number, a cell on two lines, the names listed below
        numbers = [str(i + 1) for i in range(len(names))]
        rows = [
            [n, *(Text(c.replace(" ", "\n")) for c in row)]
            for n, row in zip(numbers, cells, strict=True)
        ]
        table = whole_table(["", *numbers], rows, right=range(1, len(names) + 1), title=title)
    common.out.print(table)
    for number, name in enumerate(names if numbered else [], start=1):
        common.out.print(Text.assemble((f"{number:>3}  ", "bold"), name), soft_wrap=False)


@segments_app.command("export")
def export(
    name: str = typer.Argument(..., help="Segment name."),
    path: Path = typer.Argument(..., help="Output file (.csv, .parquet or .json)."),
    fmt: str | None = typer.Option(
        None, "--format", help="csv, parquet or json (default: from the file name)."
    ),
    consent: str | None = typer.Option(
        None,
        "--consent",
        help="Only customers who consented to this purpose (email, sms, push, ads …).",
    ),
    columns: str = typer.Option(
        "customer_id,email,phone,name", "--columns", help="Columns of customers to write."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a segment's members to a file."""
    from loupe.errors import LoupeError
    from loupe.segments import export_members

    if fmt is not None and fmt not in ("csv", "parquet", "json"):
        raise LoupeError(f"--format must be csv, parquet or json, not {fmt!r}", where="--format")
    cols = tuple(c.strip() for c in columns.split(",") if c.strip())
    doc = _with_wh(
        lambda wh: export_members(wh, name, path, fmt=fmt, consent=consent, columns=cols)  # type: ignore[arg-type]
    )
    if json_:
        common.print_json(doc)
        return
    extra = (
        f" ({doc['excluded_without_consent']:,} without {consent} consent left out)"
        if consent
        else ""
    )
    common.out.print(
        f"wrote {doc['exported']:,} of {doc['members']:,} members to {doc['path']}{extra}"
    )


@segments_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Segment name."),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Remove a saved segment and every snapshot of its members."""
    from loupe.segments import delete_segment

    doc = _with_wh(lambda wh: delete_segment(wh, name))
    if json_:
        common.print_json(doc)
        return
    common.out.print(
        f"deleted [bold]{name}[/] ({doc['member_rows_removed']:,} member rows removed)"
    )


@segments_app.command("refresh")
def refresh(json_: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    r"""Save [\[segments]] from loupe.toml and recompute every segment's members."""
    from loupe.segments import refresh_segments

    report = _with_wh(refresh_segments)
    if json_:
        common.print_json(report.to_dict())
        return
    for k, v in report.sizes.items():
        common.out.print(f"{k}: {v:,}")


def cluster(
    k: int | None = typer.Option(
        None, "--k", help="Number of clusters (default: best silhouette, 2-8)."
    ),
    features: str | None = typer.Option(
        None, "--features", help="Comma-separated feature columns or globs (cat_share_*)."
    ),
    min_orders: int = typer.Option(
        2, "--min-orders", help="Cluster customers with at least this many purchases."
    ),
    save: bool = typer.Option(
        False, "--save-as-segments", help="Save each cluster as a static segment."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of k-means."),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """k-means on standardised customer features, with a profile and a name per cluster."""
    from loupe.segments import ClusterSpec, cluster_customers, save_clusters

    spec = ClusterSpec(k=k, min_orders=min_orders, seed=seed)
    if features:
        spec = ClusterSpec(
            features=tuple(f.strip() for f in features.split(",") if f.strip()),
            k=k,
            min_orders=min_orders,
            seed=seed,
        )

    def run(wh: Any) -> dict[str, Any]:
        result = cluster_customers(wh, spec)
        doc = result.to_dict()
        if save:
            doc["saved_segments"] = save_clusters(wh, result)
        return doc

    doc = _with_wh(run)
    if json_:
        common.print_json(doc)
        return
    out = common.out
    sil = ", ".join(f"k={k_}: {v:.3f}" for k_, v in doc["silhouette"].items())
    out.print(
        f"[bold]{doc['k']}[/] clusters of {doc['customers']:,} customers"
        + (f" (silhouette {sil})" if sil else ""),
        soft_wrap=False,  # wrapped between words, not where the terminal's edge falls
    )
    rows = [
        [
            str(c["cluster"] + 1),
            c["name"],
            f"{c['size']:,} ({c['share']:.0%})",
            f"{c['revenue_share']:.0%}",
            ", ".join(f"{s['feature']} ×{s['lift']:.2f}" for s in c["standout"][:3]),
            ", ".join(f"{t['tag']} {t['share']:.0%}" for t in c["top_tags"][:3]),
        ]
        for c in doc["clusters"]
    ]
    table = whole_table(["#", "name", "size", "revenue", "stands out", "top tags"], rows)
    if table.whole_width <= out.width:
        out.print(table)
    else:  # narrow: a cluster per block, so that no feature or tag name is cut
        for number, name, size, revenue, stand, tags in rows:
            out.print(Text.assemble((f"{number}. ", "bold"), (name, "bold")), soft_wrap=False)
            for line in (f"{size} of customers, {revenue} of revenue", f"stands out: {stand}",
                         f"top tags: {tags}"):  # fmt: skip
                out.print(Padding(plain(line), (0, 0, 0, 3), expand=False), soft_wrap=False)
    for name in doc.get("saved_segments", []):
        out.print(f"saved segment {name}")


def register(app: typer.Typer) -> None:
    """Add the segments verbs to the root app (once)."""
    if any(g.name == "segments" for g in app.registered_groups):
        return
    app.add_typer(segments_app, name="segments")
    app.command("cluster")(cluster)
