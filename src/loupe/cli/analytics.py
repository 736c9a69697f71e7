"""``loupe funnel|basket|retention|paths|recommend``: behavioural analytics verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from loupe.cli import common
from loupe.errors import LoupeError
from loupe.rich_tables import columns_that_fit, plain, whole_table


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "–"
    if pct:
        return f"{100 * x:.1f}%"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _export(df: Any, path: Path) -> None:
    if path.suffix.lower() == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    common.err.print(f"wrote {len(df)} rows to {path}")


def funnel(
    steps: str = typer.Option(
        ...,
        "--steps",
        help="Comma-separated steps, e.g. 'Product Viewed[category=美妆],Order Completed', or a JSON list.",
    ),
    window: str = typer.Option("7d", "--window", help="Conversion window: 7d, 12h, 30m, 2w."),
    order: str = typer.Option("strict", "--order", help="strict or any."),
    breakdown: str | None = typer.Option(
        None,
        "--breakdown",
        help="An event column (utm_source …), a property key, first_touch, segment or segment:NAME.",
    ),
    dropoff: int | None = typer.Option(
        None,
        "--drop-off",
        "--dropoff",
        help="List the people who reached this step (1-based) but not the next.",
    ),
    export: Path | None = typer.Option(
        None, "--export", help="With --drop-off: write the people to this CSV/Parquet file."
    ),
    save_segment: str | None = typer.Option(
        None,
        "--save-segment",
        help="With --drop-off: save the identified people as this static segment.",
    ),
    replace: bool = typer.Option(
        False, "--replace", help="With --save-segment: overwrite a static segment of that name."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Count people through ordered steps within a conversion window."""
    from loupe import analytics

    spec = analytics.FunnelSpec(
        analytics.parse_steps(steps),
        window=analytics.parse_duration(window),
        order=order,  # type: ignore[arg-type]
        breakdown=breakdown,
    )
    if save_segment is not None and dropoff is None:
        raise LoupeError(
            "--save-segment saves a drop-off list", where="--save-segment", fix="add --drop-off K"
        )
    wh = common.state.warehouse()
    with wh, common.progress_bar(enabled=not as_json) as bar:
        task = bar.add_task("funnel", total=None)
        result = analytics.funnel(wh, spec)
        doc = result.to_dict()
        if dropoff is not None:
            tables = analytics.funnel_tables(wh, spec)
            people = wh.to_pandas(analytics.funnel_dropoff(tables, spec, dropoff, wh.backend))
            if export is not None:
                _export(people, export)
            listed = export is None and save_segment is None
            doc["dropoff"] = {
                "after_step": dropoff,
                "count": int(people["person_id"].nunique()),
                "people": sorted(set(people["person_id"].tolist())) if listed else None,
            }
            if save_segment is not None:
                doc["dropoff"]["saved"] = analytics.save_dropoff(
                    wh, spec, dropoff, save_segment, replace=replace, dropoff=people
                )
        bar.update(task, total=1, completed=1)
    if as_json:
        common.print_json(doc)
        return
    table = Table(title=f"Funnel ({order}, window {window})")
    for col in ("step", "event", "people", "from previous", "from start"):
        table.add_column(col)
    for i, s in enumerate(doc["steps"], start=1):
        table.add_row(
            str(i),
            plain(s["event"]),
            str(s["count"]),
            _fmt(s["conversion_from_previous"], True),
            _fmt(s["conversion_from_start"], True),
        )
    common.out.print(table)
    ttc = doc.get("time_to_convert") or {}
    if ttc.get("median_seconds") is not None:
        common.out.print(f"median time to convert: {ttc['median_seconds'] / 3600:.2f} h")
    for g in doc.get("groups", []):
        counts = " → ".join(str(s["count"]) for s in g["steps"])
        common.out.print(f"{breakdown}={g['value']}: {counts}")
    if "dropoff" in doc:
        common.out.print(f"{doc['dropoff']['count']} people dropped off after step {dropoff}")
        saved = doc["dropoff"].get("saved")
        if saved:
            common.out.print(
                f"saved {saved['size']} customers as segment {saved['segment']!r} "
                f"({saved['anonymous_skipped']} anonymous visitors left out)"
            )


def basket(
    min_support: float = typer.Option(0.01, "--min-support", help="Minimum itemset support."),
    min_confidence: float = typer.Option(0.5, "--min-confidence", help="Minimum rule confidence."),
    max_len: int = typer.Option(2, "--max-len", help="Largest itemset: 2 pairs, 3 triples."),
    level: str = typer.Option("product", "--level", help="product or category."),
    where: list[str] = typer.Option(
        [], "--where", help="Order filter on an orders column, e.g. channel=online (repeatable)."
    ),
    together: str | None = typer.Option(
        None, "--bought-together", help="List the items most often bought with this item."
    ),
    limit: int = typer.Option(50, "--limit", help="Rules to show (table output only)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Association rules over order lines (support, confidence, lift, leverage, conviction)."""
    from loupe import analytics
    from loupe.analytics.spec import parse_step, reject_option

    if together is not None:
        reject_option(together, "--bought-together", "item", "SKU00120")
        if not together.strip():
            raise LoupeError("the item is missing", where="--bought-together")
    conds = tuple(c for w in where for c in parse_step(f"x[{w}]", "--where").where)
    spec = analytics.BasketSpec(
        min_support=min_support,
        min_confidence=min_confidence,
        max_len=max_len,
        level=level,  # type: ignore[arg-type]
        order_filter=conds,
    )
    wh = common.state.warehouse()
    with wh:
        if together is not None:
            tables = analytics.basket_tables(wh)
            bt = analytics.bought_together(tables, spec, backend=wh.backend)
            df = wh.to_pandas(bt.filter(bt.item == together).order_by("rank"))
            doc: dict[str, Any] = {"item": together, "bought_together": df.to_dict("records")}
        else:
            doc = {"rules": analytics.basket_rules(wh, spec)}
    if as_json:
        common.print_json(doc)
        return
    if together is not None:
        if not doc["bought_together"]:
            common.out.print(
                f"{together!r} shares no basket (at least 2) with another item"
                + (" at category level" if level == "category" else "")
            )
        for r in doc["bought_together"]:
            common.out.print(
                f"{r['rank']:>3}. {r['other']}  ({r['count']} baskets, "
                f"confidence {r['confidence']:.2f}, lift {r['lift']:.2f})"
            )
        return
    table = Table(title=f"{len(doc['rules'])} rules")
    for col in ("if", "then", "support", "confidence", "lift", "leverage", "conviction"):
        table.add_column(col)
    for r in doc["rules"][:limit]:
        table.add_row(
            plain(", ".join(r["antecedents"])),
            plain(", ".join(r["consequents"])),
            _fmt(r["support"]),
            _fmt(r["confidence"]),
            _fmt(r["lift"]),
            _fmt(r["leverage"]),
            "∞" if r["conviction"] is None else _fmt(r["conviction"]),
        )
    common.out.print(table)


def retention(
    period: str = typer.Option("week", "--period", help="day, week or month."),
    action: str = typer.Option(
        "any", "--action", help="any, purchase, or an event name (with optional [key=value])."
    ),
    acquisition: str = typer.Option("event", "--acquisition", help="event or order."),
    mode: str = typer.Option(
        "exact", "--mode", help="exact (N-period) or unbounded (on or after)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="channel, segment or segment:NAME: split cohorts into groups."
    ),
    max_periods: int = typer.Option(12, "--max-periods", help="Last period offset shown."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Acquisition cohorts and their retention (and revenue) by period."""
    from loupe import analytics

    spec = analytics.RetentionSpec(
        period=period,  # type: ignore[arg-type]
        acquisition=acquisition,  # type: ignore[arg-type]
        action=action,
        mode=mode,  # type: ignore[arg-type]
        split=split,
        max_periods=max_periods,
    )
    with common.state.warehouse() as wh:
        doc = analytics.retention_doc(analytics.retention(wh, spec), spec)
    if as_json:
        common.print_json(doc)
        return
    periods = max((len(c["retention"]) for c in doc["cohorts"]), default=0)
    key = "channel" if split == "channel" else "segment"
    head = ["cohort", *([key] if split else []), "size"]
    rows = [
        [c["cohort"], *([c[key]] if split else []), f"{c['size']:,}"]
        + [_fmt(r, True) for r in c["retention"]]
        + [""] * (periods - len(c["retention"]))
        for c in doc["cohorts"]
    ]
    headers = head + [str(p) for p in range(periods)]
    # as many periods as the terminal holds whole, rather than every number cut short
    shown = max(columns_that_fit(headers, rows, common.out.width), len(head) + 1)
    table = whole_table(
        headers[:shown],
        [r[:shown] for r in rows],
        right=range(len(head) - 1, shown),
        title=f"{period} retention ({action}, {mode})",
    )
    common.out.print(table)
    if shown < len(headers):
        left_out = f"{shown - len(head)}-{periods - 1}"
        common.out.print(f"periods {left_out} do not fit this terminal; --json has them all")


def paths(
    start: str = typer.Option(..., "--start", help="Start event, e.g. 'Product Viewed'."),
    direction: str = typer.Option("after", "--direction", help="after or before."),
    max_len: int = typer.Option(4, "--max-len", help="Steps per path."),
    window: str | None = typer.Option(
        None, "--window", help="Follow the person across sessions for this long (default: session)."
    ),
    top: int = typer.Option(20, "--top", help="Paths to show."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Most frequent paths after (or before) an event, Sankey links, exits and loops."""
    from loupe import analytics

    spec = analytics.PathSpec(
        start,
        direction=direction,  # type: ignore[arg-type]
        max_len=max_len,
        window=analytics.parse_duration(window) if window else None,
    )
    with common.state.warehouse() as wh:
        doc = analytics.paths(wh, spec, top=top)
    if as_json:
        common.print_json(doc)
        return
    table = Table(title=f"paths {direction} {start}")
    table.add_column("path")
    table.add_column("count")
    table.add_column("people")
    for p in doc["paths"]:
        table.add_row(plain(p["path"]), str(p["count"]), str(p["people"]))
    common.out.print(table)
    exits = ", ".join(f"{e['event']} ({e['count']})" for e in doc["exits"][:5])
    common.out.print(f"top exits: {exits or '–'}")


def recommend(
    model: str = typer.Option("cooccurrence", "--model", help="cooccurrence, als or popularity."),
    k: int = typer.Option(10, "--k", help="Products per customer."),
    evaluate_at: str | None = typer.Option(
        None, "--evaluate", help="Only evaluate on a time split at this date (YYYY-MM-DD)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Top-k products per customer into the recommendations table, or an offline evaluation."""
    from datetime import datetime

    from loupe import analytics

    spec = analytics.RecommendSpec(model=model, k=k)  # type: ignore[arg-type]
    with common.state.warehouse() as wh:
        if evaluate_at is not None:
            try:
                cutoff = datetime.fromisoformat(evaluate_at)
            except ValueError:
                raise LoupeError(
                    f"--evaluate must be a date YYYY-MM-DD, not {evaluate_at!r}", where="--evaluate"
                ) from None
            doc: dict[str, Any] = {
                "cutoff": cutoff,
                "k": k,
                "models": analytics.evaluate(wh, cutoff, k=k),
            }
        else:
            doc = {
                "model": model,
                "k": k,
                "rows": analytics.recommend(wh, spec),
                "table": "recommendations",
            }
    if as_json:
        common.print_json(doc)
        return
    if "models" in doc:
        table = Table(title=f"offline evaluation at {evaluate_at}, k={k}")
        for col in ("model", "precision@k", "recall@k", "coverage", "customers"):
            table.add_column(col)
        for name, m in doc["models"].items():
            table.add_row(
                name, _fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["coverage"]), str(m["users"])
            )
        common.out.print(table)
    else:
        common.out.print(
            f"wrote {doc['rows']} {model} recommendations to the recommendations table"
        )


def register(app: typer.Typer) -> None:
    """Add the analytics verbs to the root app (once)."""
    names = {c.name for c in app.registered_commands}
    if "funnel" in names:
        return
    app.command("funnel")(funnel)
    app.command("basket")(basket)
    app.command("retention")(retention)
    app.command("paths")(paths)
    app.command("recommend")(recommend)
