"""Small shared pieces of analysis specs: step filters, durations, event properties."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir

from loupe.errors import LoupeError
from loupe.warehouse.functions import json_get, json_valid

Op = Literal["=", "!="]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_KEY = re.compile(r"^\w+$")


def parse_duration(text: str | timedelta | int, *, where: str = "--window") -> timedelta:
    """``7d``, ``12h``, ``30m``, ``2w``, ``3600s`` or a number of days, as a timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(days=text)
    m = _DURATION.match(text)
    if not m:
        raise LoupeError(
            f"cannot read the duration {text!r}", where=where, fix="write e.g. 7d, 12h, 30m or 2w"
        )
    seconds = float(m.group(1)) * _UNITS[(m.group(2) or "d").lower()]
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Condition:
    """``key op value`` on an event column or, failing that, a key of ``properties``."""

    key: str
    op: Op
    value: str


@dataclass(frozen=True)
class Step:
    """One funnel step: an event name with optional property conditions (all must hold)."""

    event: str
    where: tuple[Condition, ...] = ()

    @property
    def label(self) -> str:
        if not self.where:
            return self.event
        conds = ",".join(f"{c.key}{c.op}{c.value}" for c in self.where)
        return f"{self.event}[{conds}]"


def _split_outside_brackets(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _condition(text: str, where: str) -> Condition:
    m = re.match(r"^\s*([^=!\s]+)\s*(!=|=)\s*(.*?)\s*$", text)
    if not m or not _KEY.match(m.group(1)):
        raise LoupeError(
            f"cannot read the step filter {text!r}",
            where=where,
            fix="write key=value or key!=value, e.g. Product Viewed[category=美妆]",
        )
    return Condition(m.group(1), m.group(2), m.group(3))  # type: ignore[arg-type]


def reject_option(text: str, where: str, what: str, example: str) -> None:
    """Refuse a value that is the next flag: in ``--start --json`` click hands ``--json``
    over as the start event."""
    if text.strip().startswith("--"):
        raise LoupeError(
            f"the {what} is missing: {text.strip()!r} is an option",
            where=where,
            fix=f"give the {what} after {where}, e.g. {where} {example}",
        )


def parse_step(text: str, where: str = "--steps") -> Step:
    """``Product Viewed`` or ``Product Viewed[category=美妆,brand!=X]``."""
    reject_option(text, where, "event", '"Product Viewed"')
    m = re.match(r"^(.*?)\s*(?:\[(.*)\])?\s*$", text.strip())
    if not m or not m.group(1):
        raise LoupeError(f"cannot read the step {text!r}", where=where)
    if "[" in m.group(1) or "]" in m.group(1):
        raise LoupeError(
            f"unbalanced brackets in the step {text!r}",
            where=where,
            fix="close the filter: Product Viewed[category=美妆]",
        )
    conds = tuple(_condition(c, where) for c in (m.group(2) or "").split(",") if c.strip())
    return Step(m.group(1), conds)


def parse_steps(text: str, where: str = "--steps") -> tuple[Step, ...]:
    """Steps from ``e1,e2[k=v],…`` or a JSON list of names / ``{"event", "where": {k: v}}``."""
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LoupeError(f"the steps are not valid JSON: {exc}", where=where) from None
        steps = []
        for item in items:
            if isinstance(item, str):
                steps.append(parse_step(item, where))
            elif isinstance(item, dict) and "event" in item:
                conds = []
                for key, value in (item.get("where") or {}).items():
                    op: Op = "="
                    if isinstance(value, dict) and "!=" in value:
                        op, value = "!=", value["!="]
                    conds.append(Condition(str(key), op, str(value)))
                steps.append(Step(str(item["event"]), tuple(conds)))
            else:
                raise LoupeError(
                    f"a JSON step must be a name or an object with 'event', not {item!r}",
                    where=where,
                )
        return tuple(steps)
    return tuple(parse_step(s, where) for s in _split_outside_brackets(text))


def event_value(events: ir.Table, key: str, backend: str) -> ir.StringValue:
    """An event column as text, or the property ``key`` of the ``properties`` JSON."""
    if key in events.columns and key not in ("properties", "traits"):
        return events[key].cast("string")
    if not _KEY.match(key):
        raise LoupeError(f"{key!r} is not a column or a property name", where=key)
    props = events.properties
    valid = ibis.ifelse(json_valid(props, backend), props, ibis.null("string"))
    return json_get(valid, f"$.{key}", backend)


def step_condition(events: ir.Table, step: Step, backend: str) -> ir.BooleanValue:
    cond = events.event == step.event
    for c in step.where:
        value = event_value(events, c.key, backend)
        cond &= (value == c.value) if c.op == "=" else (value.isnull() | (value != c.value))
    return cond
