"""CLI verbs of the identity stage: ``loupe identity`` and ``loupe customers show|find|explain``."""

from __future__ import annotations

import datetime
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from loupe.cli import common
from loupe.rich_tables import whole_table
from loupe.words import counted

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
    sizes = " · ".join(f"{k}: {v:,}" for k, v in r["records_per_customer"].items() if v)
    out.print(f"records per customer: {sizes}")
    if r["largest_customers"] and r["largest_customers"][0]["records"] > 1:
        top = ", ".join(
            " ".join(filter(None, (c["customer_id"], c["name"], f"({c['records']})")))
            for c in r["largest_customers"]
        )
        out.print(Text(f"largest customers (records): {top}"))
        out.print(Text("  how one is linked: `loupe customers explain ID`", style="dim"))
    out.print(f"probabilistic links: {r['probabilistic_links']:,}")
    if r["match_weights"]:
        out.print(_weights_table(r))
    if r["shared_identifiers"]:
        out.print(f"shared identifiers (not linking): {r['shared_identifiers']:,}")
        for s in r["shared_top"][:5]:
            out.print(f"  {s['id_type']} {s['id_value']}: {s['records']} records")
    if r.get("ids_retired"):
        out.print(
            f"customer ids retired: {r['ids_retired']:,} (merged into another customer, or "
            "their records gone); `loupe customers show OLD_ID` follows them"
        )


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
    query: list[str] = typer.Argument(
        ..., help="Part of a name (or its pinyin), e-mail, phone, id or city."
    ),
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
        if doc["near"]:
            out.print(Text("close to it, a typing mistake or two away:", style="yellow"))
            headers = ["customer_id", "name", "email", "phone", "close by"]
            rows = [
                [*(_fmt(c[k]) for k in headers[:-1]),
                 f"{', '.join(c['matched'])} ({counted(c['edits'], 'edit', 'edits')})"]
                for c in doc["near"]
            ]  # fmt: skip
            table = whole_table(headers, rows, give_way={2, 4})
            table.columns[2].overflow = table.columns[4].overflow = "fold"
            out.print(table)
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


@customers_app.command("explain")
def explain_cmd(
    key: str = typer.Argument(..., help="Customer id, e-mail, phone, user id or source:key."),
    other: str | None = typer.Argument(
        None, help="A second key: the chain of links between them, or why they are apart."
    ),
    json_: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Why a customer is one: the identifiers and matches linking its records, and the ones
    it hangs on; with two keys, the links between them or why they are two customers."""
    from loupe.identity import explain

    wh = common.state.warehouse()
    try:
        doc = explain(wh, key, other)
    finally:
        wh.close()
    if json_:
        common.print_json(doc)
        return
    {"customer": _print_links, "apart": _print_apart, "shared": _print_shared}[doc["kind"]](doc)


def _link_head(link: dict[str, Any]) -> Text:
    head = Text("  ")
    if link["by"] == "match":
        head.append("match", style="bold")
        head.append(
            f" probability {link['match_probability']:.4f}, weight {link['match_weight']:.1f}"
        )
    else:
        head.append(link["by"], style="bold")
        head.append(f" {link['value']}")
    if link["needed"]:
        apart = ", ".join(link["apart"])
        more = link["splits_off"] - len(link["apart"])
        head.append(
            f"  needed: without it {apart}"
            + (f" and {more:,} more" if more > 0 else "")
            + " would be apart",
            style="yellow",
        )
    return head


def _print_links(doc: dict[str, Any]) -> None:
    out = common.out
    _print_moved(doc.get("moved"))
    records, links = doc["records"], doc["links"]
    title = Text.assemble(
        (doc["customer_id"], "bold"),
        f" {doc['name'] or ''}: "
        + counted(len(records), "source record", "source records")
        + (
            ", one customer through "
            + counted(len(links), "link", "links")
            + f" ({counted(sum(x['needed'] for x in links), 'needed', 'needed')})"
            if len(records) > 1
            else ": nothing to link"
        ),
    )
    out.print(title)
    if not doc["connected"]:
        out.print(
            Text(
                "these records are no longer linked as `loupe identity` linked them: the data "
                "changed since it ran; run `loupe identity`",
                style="red",
            )
        )
    if "path" in doc:
        if not all(doc["ends"]):
            out.print(
                Text(
                    "a customer id names every record: give an identifier or a record for the chain"
                )
            )
        elif doc["path"] is None:
            out.print(Text("no chain of links joins the two keys' records", style="yellow"))
        elif not doc["path"]:
            out.print(Text("both keys name the same record"))
        else:
            out.print(Text("From one key to the other", style="bold"))
            for hop in doc["path"]:
                by = "match" if hop["by"] == "match" else f"{hop['by']} {hop['value']}"
                out.print(Text(f"  {hop['from']} → {hop['to']}  by {by}"))
    fields = {r["record"]: r for r in records}
    if links:
        out.print(Text("Linked by", style="bold"))
    for link in links:
        out.print(_link_head(link))
        if link["by"] == "match":  # what the model compared, record by record
            for rec in link["records"]:
                values = [_fmt(fields.get(rec, {}).get(c)) for c in ("name", "gender",
                          "birth_date", "city")]  # fmt: skip
                out.print(Text(f"    {rec}  " + " · ".join(v for v in values if v)))
            if link.get("levels"):  # the terms of its weight, as Splink's waterfall
                terms = [f"prior {link['prior_weight']:+.1f}"] + [
                    f"{lv['comparison']} {_short_level(lv['level'])} {lv['weight']:+.1f}"
                    for lv in link["levels"]
                ]
                out.print(Text("    weight: " + " · ".join(terms), style="dim"))
        else:
            out.print(Text("    " + " · ".join(link["records"]), style="dim"))
    if doc["refused"]:
        out.print(Text("Refused by the over-merge guard (they link no one)", style="bold"))
        for r in doc["refused"]:
            out.print(
                Text(
                    f"  {r['id_type']} {r['id_value']}: {r['records']:,} records carry it "
                    f"(limit {r['limit']}); here {', '.join(r['carried_by'])}"
                )
            )
    out.print(Text("Records", style="bold"))
    for r in records:
        line = Text("  ")
        line.append(r["record"])
        line.append(f"  {_fmt(r.get('location'))}", style="dim")
        if r.get("name"):
            line.append(f"  {r['name']}")
        out.print(line)


def _print_shared(doc: dict[str, Any]) -> None:
    out = common.out
    limit = (
        f"seen with more than {counted(doc['limit'], 'user id', 'user ids')}"
        if doc["id_type"] == "anonymous_id"
        else f"carried by more than {counted(doc['limit'], 'record', 'records')}"
    )
    out.print(
        Text.assemble(
            (f"{doc['id_type']} {doc['id_value']}", "bold"),
            f" links no one: {counted(doc['records'], 'record carries', 'records carry')} it, "
            f"and the over-merge guard refuses an identifier {limit} "
            "([identity] max_records_per_identifier).",
        )
    )
    out.print(Text(f"Its records belong to {counted(doc['customers'], 'customer', 'customers')}:"))
    rows = [[r["record"], _fmt(r["customer_id"]), _fmt(r["name"])] for r in doc["carried_by"]]
    out.print(whole_table(("record", "customer_id", "name"), rows))
    if doc["records"] > len(rows):
        out.print(Text(f"the first {len(rows)} of {doc['records']:,} records", style="dim"))


def _short_level(label: str) -> str:
    """A comparison level as a word or two: ``Exact match on name_key`` is ``exact``."""
    text = label.lower()
    if text.startswith("exact match"):
        return "exact"
    if text.startswith("all other"):
        return "differs"
    if text.startswith("null"):
        return "missing"
    return label.replace(" distance of ", " ").replace("Damerau-Levenshtein", "edits")


def _print_apart(doc: dict[str, Any]) -> None:
    out = common.out
    a, b = doc["customer_ids"]
    n_a, n_b = (len(r) for r in doc["records"])
    out.print(
        Text.assemble(
            f"{doc['keys'][0]} and {doc['keys'][1]} are two customers: ",
            (a, "bold"),
            f" ({counted(n_a, 'record', 'records')}) and ",
            (b, "bold"),
            f" ({counted(n_b, 'record', 'records')})",
        )
    )
    common_ids = doc["in_common"]
    if not common_ids:
        out.print(Text("Their records have no identifier in common."))
    for c in common_ids:
        if c["shared"]:
            why = f"refused by the over-merge guard: {c['records']:,} records carry it (limit {c['limit']})"
        else:
            why = "not refused: run `loupe identity`, the data changed since it ran"
        out.print(Text(f"  {c['id_type']} {c['id_value']}: {why}"))
    p = doc["probabilistic"]
    if p["on"]:
        out.print(
            Text(
                "The probabilistic model linked no pair of their records (a pair links at "
                f"P ≥ {p['threshold']:g}, on name, gender, birth date and city). Their golden "
                "records:"
            )
        )
    else:
        out.print(Text("Probabilistic matching is off ([identity] probabilistic = false)."))
    rows = [[c["field"], _fmt(c["values"][0]), _fmt(c["values"][1])] for c in doc["compared"]]
    out.print(whole_table(("", a, b), rows))


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


def _print_moved(moved: dict[str, Any] | None) -> None:
    if moved is None:
        return
    via = f", through {', '.join(moved['via'])}" if moved["via"] else ""
    common.out.print(
        Text(
            f"{moved['old_id']} is no longer a customer id: the identity run of "
            f"{moved['changed_at']:%Y-%m-%d %H:%M} merged its records into "
            f"{moved['customer_id']}{via}. This is {moved['customer_id']}.",
            style="yellow",
        )
    )


def _print_customer(doc: dict[str, Any]) -> None:
    """The customer 360 for a terminal of any width: no cell is cut.  Source records are
    two lines each (8 columns did not fit 80: every e-mail printed as ``zhang.…``)."""
    out = common.out
    _print_moved(doc.get("moved"))
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
    if len(doc["records"]) > 1:
        cid = doc["customer"]["customer_id"]
        out.print(Text(f"  how they are linked: `loupe customers explain {cid}`", style="dim"))

    o = doc["orders"]
    out.print(
        Text.assemble(
            ("Orders", "bold"),
            f": {o['count']} · revenue {_fmt(o['revenue'])} · "
            f"first {_fmt(o['first_order'])} · last {_fmt(o['last_order'])}",
        )
    )
    for ch, v in o["by_channel"].items():
        out.print(Text(f"  {ch}: {counted(v['count'], 'order', 'orders')}, {_fmt(v['revenue'])}"))

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
