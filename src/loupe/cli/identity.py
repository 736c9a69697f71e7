"""CLI verbs of the identity stage: ``loupe identity`` and ``loupe customers show``."""

from __future__ import annotations

import datetime
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from loupe.cli import common
from loupe.rich_tables import whole_table

customers_app = typer.Typer(help="Look up resolved customers (customer 360).", no_args_is_help=True)


def identity(
    json_: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Resolve contacts into customers: identity graph, matching, golden records."""
    from loupe.identity import resolve_identities

    wh = common.state.warehouse()
    try:
        with common.progress_bar(enabled=not json_) as bar:
            report = resolve_identities(wh, progress=common.StepProgress(bar))
    finally:
        wh.close()
    if json_:
        common.print_json(report.to_dict())
        return
    _print_report(report.to_dict())


def _print_report(r: dict[str, Any]) -> None:
    out = common.out
    out.print(
        f"[bold]{r['records']:,}[/] records → [bold]{r['customers']:,}[/] customers "
        f"({r['duplicates_merged']:,} duplicates merged) in {r['seconds'].get('total', 0):.1f}s"
    )
    if not r["records"]:
        out.print(
            "[yellow]no contact records: customers come from contacts sources (a CRM, "
            "accounts, members), or from orders with [identity] customers_from_orders = true[/]"
        )
        return
    links = ", ".join(f"{k} {v:,}" for k, v in r["links_by_type"].items())
    out.print(f"links: {links}")
    out.print(
        f"label propagation: {r['iterations']} iterations"
        + ("" if r["converged"] else " [bold red](did not converge: raise max_iterations)[/]")
    )
    out.print(f"probabilistic links: {r['probabilistic_links']:,}")
    if r["match_weights"]:
        out.print(_weights_table(r))
    if r["shared_identifiers"]:
        out.print(f"shared identifiers (not linking): {r['shared_identifiers']:,}")
        for s in r["shared_top"][:5]:
            out.print(f"  {s['id_type']} {s['id_value']}: {s['records']} records")


def _weights_table(r: dict[str, Any]) -> Table:
    """Splink's match weights per comparison level: m, u and log2(m/u), as Splink's own
    charts show them; the title gives the prior and the threshold a pair must reach."""
    prior = r["prior_match_probability"]
    title = "match weights"
    if prior > 0:
        title += f" (prior: 1 pair in {round(1 / prior):,} matches"
        if r.get("match_threshold") is not None:
            title += f"; a pair links at P ≥ {r['match_threshold']:g}"
        title += ")"
    rows = [
        [w["comparison"], w["level"], f"{w['m']:.4g}", f"{w['u']:.4g}", f"{w['match_weight']:+.2f}"]
        for w in r["match_weights"]
    ]
    headers = ("comparison", "level", "m", "u", "weight")
    return whole_table(headers, rows, right={2, 3, 4}, give_way={1}, title=title)


@customers_app.command("show")
def show(
    key: str = typer.Argument(..., help="Customer id, e-mail, phone or user id."),
    json_: bool = typer.Option(False, "--json", help="Print the customer as JSON."),
) -> None:
    """Show one customer: golden record, source records, orders, events, consents."""
    from loupe.identity import customer_360

    wh = common.state.warehouse()
    try:
        doc = customer_360(wh, key)
    finally:
        wh.close()
    if json_:
        common.print_json(doc)
        return
    _print_customer(doc)


@customers_app.command("find")
def find(
    query: list[str] = typer.Argument(..., help="Part of a name, e-mail, phone, id or city."),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="Customers to list; 0 for all."),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Find customers by part of their name, e-mail, phone, id or city: every word must match."""
    from loupe.identity import find_customers

    wh = common.state.warehouse()
    try:
        doc = find_customers(wh, " ".join(query), limit)
    finally:
        wh.close()
    if json_:
        common.print_json(doc)
        return
    out = common.out
    if not doc["total"]:
        out.print(Text(f"no customer matches {doc['query']!r}"))
        return
    headers = ["customer_id", "name", "email", "phone", "city", "last seen"]
    rows = [
        [*(_fmt(c[k]) for k in headers[:-1]), _fmt(c["last_seen"])[:10]] for c in doc["customers"]
    ]
    table = whole_table(headers, rows)
    if table.whole_width > out.width:  # the city goes first, then e-mails wrap (not cut)
        headers.remove("city")
        rows = [r[:4] + r[5:] for r in rows]
        table = whole_table(headers, rows, give_way={2})
        table.columns[2].overflow = "fold"
    out.print(table)
    hidden = [c["customer_id"] for c in doc["customers"] if "source records" in c["matched"]]
    if hidden:
        out.print(
            Text(
                "found by the key or an identifier of a source record, not by the golden "
                f"record: {', '.join(hidden)}",
                style="dim",
            )
        )
    more = doc["total"] - len(doc["customers"])
    out.print(
        Text(
            f"{len(doc['customers']):,} of {doc['total']:,} "
            + ("customer" if doc["total"] == 1 else "customers")
            + ("; --limit 0 lists all" if more else "")
            + "; `loupe customers show ID` shows one",
            style="dim",
        )
    )


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ", ".join(map(str, v))
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")  # to the second: the rest is noise here
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


#: A source record's fields after its source, key and location, in this order.
_RECORD_FIELDS = ("name", "email", "phone", "user_id", "gender", "birth_date", "city")


def _print_customer(doc: dict[str, Any]) -> None:
    """The customer 360 for a terminal of any width: no cell is cut.  Source records are
    two lines each (8 columns did not fit 80: every e-mail printed as ``zhang.…``)."""
    out = common.out
    golden = Table(title="Customer", title_justify="left", show_header=False)
    for k, v in doc["customer"].items():
        golden.add_row(k, Text(_fmt(v)))  # Text: a value is not read as markup
    out.print(golden)

    out.print(Text(f"Source records ({len(doc['records'])})", style="bold"))
    for r in doc["records"]:
        head = Text("  ")
        head.append(r["source"], style="bold")
        head.append(f" {_fmt(r.get('source_key'))}  ")
        head.append(_fmt(r.get("location")), style="dim")
        out.print(head)
        fields = [_fmt(r.get(c)) for c in _RECORD_FIELDS]
        out.print(Text("    " + " · ".join(f for f in fields if f)))

    o = doc["orders"]
    out.print(
        Text.assemble(
            ("Orders", "bold"),
            f": {o['count']} · revenue {_fmt(o['revenue'])} · "
            f"first {_fmt(o['first_order'])} · last {_fmt(o['last_order'])}",
        )
    )
    for ch, v in o["by_channel"].items():
        out.print(Text(f"  {ch}: {v['count']} orders, {_fmt(v['revenue'])}"))

    events = [
        [_fmt(e.get("ts")), _fmt(e.get("event")), _fmt(e.get("source")),
         _fmt(e.get("product_id") or e.get("order_id") or e.get("screen") or e.get("url"))]
        for e in doc["recent_events"]
    ]  # fmt: skip
    out.print(
        whole_table(
            ("ts", "event", "source", "product, order, screen or page"),
            events,
            give_way={3},
            title="Recent events",
        )
    )

    consent_headers = ("purpose", "granted", "ts", "identifier", "source")
    consents = [[_fmt(k.get(c)) for c in consent_headers] for k in doc["consents"]]
    out.print(whole_table(consent_headers, consents, title="Consents (latest per purpose)"))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app (once)."""
    if any(g.name == "customers" for g in app.registered_groups):
        return
    app.command("identity")(identity)
    app.add_typer(customers_app, name="customers")
