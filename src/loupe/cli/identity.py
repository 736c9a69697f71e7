"""CLI verbs of the identity stage: ``loupe identity`` and ``loupe customers show``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

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


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ", ".join(map(str, v))
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def _print_customer(doc: dict[str, Any]) -> None:
    out = common.out
    golden = Table(title="Customer", show_header=False)
    for k, v in doc["customer"].items():
        golden.add_row(k, _fmt(v))
    out.print(golden)

    recs = Table(title="Source records")
    cols = ["source", "source_key", "name", "email", "phone", "user_id", "city", "location"]
    for c in cols:
        recs.add_column(c)
    for r in doc["records"]:
        recs.add_row(*[_fmt(r.get(c)) for c in cols])
    out.print(recs)

    o = doc["orders"]
    out.print(
        f"[bold]Orders[/]: {o['count']} · revenue {_fmt(o['revenue'])} · "
        f"first {_fmt(o['first_order'])} · last {_fmt(o['last_order'])}"
    )
    for ch, v in o["by_channel"].items():
        out.print(f"  {ch}: {v['count']} orders, {_fmt(v['revenue'])}")

    ev = Table(title="Recent events")
    for c in ("ts", "type", "event", "source", "url", "screen", "product_id"):
        ev.add_column(c)
    for e in doc["recent_events"]:
        ev.add_row(
            *[
                _fmt(e.get(c))
                for c in ("ts", "type", "event", "source", "url", "screen", "product_id")
            ]
        )
    out.print(ev)

    cons = Table(title="Consents (latest per purpose)")
    for c in ("purpose", "granted", "ts", "identifier", "source"):
        cons.add_column(c)
    for k in doc["consents"]:
        cons.add_row(
            *[_fmt(k.get(c)) for c in ("purpose", "granted", "ts", "identifier", "source")]
        )
    out.print(cons)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app (once)."""
    if any(g.name == "customers" for g in app.registered_groups):
        return
    app.command("identity")(identity)
    app.add_typer(customers_app, name="customers")
