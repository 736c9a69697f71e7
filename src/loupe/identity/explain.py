"""Why a customer is one customer, and why two are not (``loupe customers explain``).

Identity resolution is trusted when its merges can be checked.  For one customer this says
which identifiers and which probabilistic matches hold its source records together, which of
those links the customer hangs on (without it, some records would be apart), and which
identifiers its records carry that the over-merge guard refused.  Given two keys of one
customer it gives the chain of links from one to the other; of two customers, what their
records have in common and why that did not join them.

A customer's records are few, so the graph is rebuilt for them alone with the expressions the
identity stage runs (:func:`loupe.identity.graph.record_identifiers`, the stored
``shared_identifiers`` and ``identity_matches``), and read in Python.  Whether a link is
needed is decided by its definition: remove it and count the parts left, with SciPy's
``connected_components`` (compiled; a link per call), so it stays exact for an over-merged
customer of thousands of records.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from loupe.config import ID_TYPES
from loupe.identity.customer360 import _candidates, _rows, person_records, resolve_key
from loupe.identity.graph import DEFAULT_LIMIT, record_identifiers
from loupe.warehouse import Warehouse

#: The fields of a record the probabilistic model compares, shown beside a match.
COMPARED = ("name", "gender", "birth_date", "city")
#: Records named in ``apart`` at most (``splits_off`` counts them all).
APART_SHOWN = 10
_ORDER = {t: i for i, t in enumerate((*ID_TYPES, "match"))}


def explain(wh: Warehouse, key: str, other: str | None = None) -> dict[str, Any]:
    """How the records of the customer ``key`` names are linked into one customer.

    ``key`` and ``other`` are what ``customers show`` takes: a customer id, an e-mail, a
    phone, a user id or a record name ``source:source_key``.

    Returns
    -------
    dict
        ``kind``, then by kind:

        ``customer`` (one key, or two keys of one customer): ``customer_ids`` (the key's,
        once per key), ``moved`` (None, or where the first key went when it is a retired
        customer id: :func:`loupe.identity.customer360.retired_id`), ``customer_id``,
        ``name``, ``records`` (``record, location`` and the fields the probabilistic model
        compares),
        ``links`` (``by``: an identifier type or ``match``; ``value``; ``records``;
        ``match_probability``, ``match_weight``, ``levels`` (each comparison's ``comparison,
        level, weight``) and ``prior_weight`` for a match; ``needed``; ``splits_off``,
        how many records would be apart without the link, and ``apart``, the first ten of
        them), ``refused`` (identifiers the guard refused: ``id_type, id_value, records``,
        how many records carry it in the whole warehouse, ``limit`` and ``carried_by``, the
        customer's records carrying it) and ``connected`` (false when the tables no longer
        join the customer's records: the data changed since ``loupe identity`` ran).  With
        two keys also ``ends`` (the records each key names; none for a customer id, which
        names them all) and ``path``: the fewest links from a record of one key to a record
        of the other, as hops ``from, by, value, to`` (empty when both name one record,
        null when a key names no record).

        ``apart`` (two keys of two customers): ``customer_ids``, ``keys``, ``records``
        (each customer's),
        ``in_common`` (identifiers their records share: ``id_type, id_value, records,
        limit, shared``), ``compared`` (the golden records' compared fields, side by side)
        and ``probabilistic`` (``on``, ``threshold``).

        ``shared`` (one key that is an identifier the guard refused): ``id_type,
        id_value, records, limit``, ``customers`` (how many customers its records belong
        to) and ``carried_by`` (the first fifty records: ``record, customer_id, name``).
    """
    if other is None:
        refused = _refused_identifier(wh, key)
        if refused is not None:
            return refused
    cid, moved = resolve_key(wh, key)
    if other is None:
        return {"kind": "customer", "customer_ids": [cid], "moved": moved, **_one(wh, cid)[0]}
    oid, _ = resolve_key(wh, other)
    if oid != cid:
        return _apart(wh, key, other, cid, oid)
    doc, ids = _one(wh, cid)
    ends = [_named_records(wh, k, doc, ids) for k in (key, other)]
    graph = _Graph([r["record"] for r in doc["records"]], doc["links"])
    path = graph.path(*ends) if all(ends) else None
    both = {"kind": "customer", "customer_ids": [cid, cid], "moved": moved}
    return {**both, **doc, "ends": ends, "path": path}


def _refused_identifier(wh: Warehouse, key: str) -> dict[str, Any] | None:
    """The ``shared`` explanation when ``key`` is an identifier the guard refused."""
    if not wh.exists("shared_identifiers"):
        return None
    forms = _candidates(key, wh.settings.project.default_region)
    s = wh.table("shared_identifiers")
    hit = wh.to_pandas(s.filter(s.id_value.isin(forms)).order_by(["id_type", "id_value"]))
    if not len(hit):
        return None
    t, v = str(hit.id_type.iloc[0]), str(hit.id_value.iloc[0])
    c = person_records(wh)
    events = wh.table("events") if wh.exists("events") else None
    if t == "anonymous_id" and events is not None:
        # the records of the user ids an identify call joined to it carry it too
        events = events.filter(events.anonymous_id == v)
        c = c.filter((c.anonymous_id == v) | c.user_id.isin(events.user_id))
    else:
        c = c.filter(c[t] == v)
    edges = record_identifiers(c.drop("record"), events)
    carriers = edges.filter((edges.id_type == t) & (edges.id_value == v)).select("record")
    links = wh.table("identity_links")
    owners = links.filter(links.id_type == "record").select(
        record=links.id_value, customer_id=links.customer_id
    )
    customers = wh.table("customers").select("customer_id", "name")
    rows = carriers.join(owners, "record", how="left").join(customers, "customer_id", how="left")
    rows = rows.select("record", "customer_id", "name").distinct()
    n = rows.aggregate(n=rows.customer_id.nunique())
    return {
        "kind": "shared",
        **_guarded(wh, hit.assign(shared=True).head(1)),
        "customers": int(wh.to_pandas(n)["n"].iloc[0]),
        "carried_by": _rows(wh.to_pandas(rows.order_by(["customer_id", "record"]).limit(50))),
    }


def _records_of(wh: Warehouse, cid: str) -> list[str]:
    links = wh.table("identity_links")
    mine = links.filter((links.customer_id == cid) & (links.id_type == "record"))
    return sorted(wh.to_pandas(mine.select("id_value")).id_value.astype(str))


def _identifiers(wh: Warehouse, records: Sequence[str]) -> pd.DataFrame:
    """``(record, id_type, id_value)`` of ``records``, as the identity stage builds them, with
    ``records`` and ``shared`` from ``shared_identifiers`` where the guard refused one."""
    c = person_records(wh)
    c = c.filter(c.record.isin(list(records))).drop("record")
    events = None
    if wh.exists("events"):
        users = wh.to_pandas(c.filter(c.user_id.notnull()).select("user_id").distinct())
        if len(users):
            e = wh.table("events")
            events = e.filter(e.user_id.isin(list(users.user_id.astype(str))))
    edges = wh.to_pandas(record_identifiers(c, events))
    edges = edges.astype({"record": str, "id_type": str, "id_value": str})
    refused = pd.DataFrame({"id_type": [], "id_value": [], "records": []})
    if wh.exists("shared_identifiers") and len(edges):
        s = wh.table("shared_identifiers")
        s = s.filter(s.id_value.isin(sorted(set(edges.id_value))))
        refused = wh.to_pandas(s.select("id_type", "id_value", "records"))
    out = edges.merge(refused, on=["id_type", "id_value"], how="left")
    out["shared"] = out["records"].notna()
    return out.sort_values(["id_type", "id_value", "record"], ignore_index=True)


def _one(wh: Warehouse, cid: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The explanation of one customer, and its records' identifiers."""
    names = _records_of(wh, cid)
    c = person_records(wh)
    c = c.filter(c.record.isin(names))
    where = c._file.concat(":", c._line.cast("string").coalesce(""))
    c = c.mutate(location=ibis.ifelse(c._file.isnull(), "", where))
    records = _rows(wh.to_pandas(c.select("record", "location", *COMPARED).order_by("record")))
    by_name = {r["record"]: r for r in records}

    ids = _identifiers(wh, names)
    links: list[dict[str, Any]] = []
    for (t, v), g in ids[~ids.shared].groupby(["id_type", "id_value"], sort=False):
        if len(g) > 1:  # an identifier of one record links nothing
            links.append({"by": t, "value": v, "records": sorted(g.record)})
    if wh.exists("identity_matches"):
        m = wh.table("identity_matches")
        m = m.filter(m.record_l.isin(names) | m.record_r.isin(names))
        for p in wh.to_pandas(m).itertuples():
            levels = json.loads(p.levels) if isinstance(p.levels, str) else []
            links.append(
                {
                    "by": "match",
                    "value": None,
                    "records": sorted([str(p.record_l), str(p.record_r)]),
                    "match_probability": float(p.match_probability),
                    "match_weight": float(p.match_weight),
                    "levels": levels,
                    # the rest of the weight: log2 of the prior odds that two records match
                    "prior_weight": float(p.match_weight) - sum(lv["weight"] for lv in levels)
                    if levels
                    else None,
                }
            )
    links.sort(key=lambda x: (_ORDER.get(x["by"], 99), str(x["value"]), x["records"]))
    graph = _Graph(names, links)
    for i, link in enumerate(links):
        apart = graph.apart_without(i)
        link.update(needed=bool(apart), splits_off=len(apart), apart=apart[:APART_SHOWN])

    refused = [
        {**_guarded(wh, g), "carried_by": sorted(g.record)}
        for _, g in ids[ids.shared].groupby(["id_type", "id_value"], sort=False)
    ]
    refused.sort(key=lambda x: (_ORDER.get(x["id_type"], 99), x["id_value"]))
    customers = wh.table("customers")
    golden = wh.to_pandas(customers.filter(customers.customer_id == cid).select("name"))
    doc = {
        "customer_id": cid,
        "name": _rows(golden)[0]["name"] if len(golden) else None,
        "records": [by_name.get(n, {"record": n, "location": None}) for n in names],
        "links": links,
        "refused": refused,
        "connected": graph.parts <= 1,
    }
    return doc, ids


def _guarded(wh: Warehouse, g: pd.DataFrame) -> dict[str, Any]:
    """An identifier (the rows ``g`` of :func:`_identifiers` carrying it) and the guard's
    judgement: ``records`` carrying it in the warehouse (None when not refused), ``limit``."""
    t = str(g.id_type.iloc[0])
    limits = wh.settings.identity.max_records_per_identifier
    refused = bool(g.shared.iloc[0])
    return {
        "id_type": t,
        "id_value": str(g.id_value.iloc[0]),
        "records": int(g.records.iloc[0]) if refused else None,
        "limit": int(limits.get(t, DEFAULT_LIMIT)),
    }


def _named_records(wh: Warehouse, key: str, doc: dict[str, Any], ids: pd.DataFrame) -> list[str]:
    """The customer's records ``key`` names: the record itself, or those carrying the
    identifier; none for a customer id (it names them all)."""
    forms = set(_candidates(key, wh.settings.project.default_region))
    names = [r["record"] for r in doc["records"]]
    hit = [n for n in names if n in forms]
    if hit:
        return hit
    return sorted(set(ids[ids.id_value.isin(forms)].record))


def _apart(wh: Warehouse, key: str, other: str, cid: str, oid: str) -> dict[str, Any]:
    """Why the customers of ``key`` and ``other`` are two."""
    mine, theirs = _records_of(wh, cid), _records_of(wh, oid)
    ids = _identifiers(wh, mine + theirs)
    side = ids.record.isin(mine)
    common = ids[side].merge(ids[~side], on=["id_type", "id_value"], suffixes=("", "_o"))
    in_common = [
        {**_guarded(wh, g), "shared": bool(g.shared.iloc[0])}
        for _, g in common.groupby(["id_type", "id_value"], sort=False)
    ]
    in_common.sort(key=lambda x: (_ORDER.get(x["id_type"], 99), x["id_value"]))
    customers = wh.table("customers")
    golden = _rows(
        wh.to_pandas(
            customers.filter(customers.customer_id.isin([cid, oid])).select(
                "customer_id", *COMPARED
            )
        )
    )
    by_id = {g["customer_id"]: g for g in golden}
    cfg = wh.settings.identity
    return {
        "kind": "apart",
        "customer_ids": [cid, oid],
        "keys": [key, other],
        "records": [mine, theirs],
        "in_common": in_common,
        "compared": [
            {"field": f, "values": [by_id.get(cid, {}).get(f), by_id.get(oid, {}).get(f)]}
            for f in COMPARED
        ],
        "probabilistic": {
            "on": bool(cfg.probabilistic),
            "threshold": float(cfg.match_threshold) if cfg.probabilistic else None,
        },
    }


class _Graph:
    """Records and links as one graph: a node per record, then a node per link joined to the
    records it links (an identifier can link many)."""

    def __init__(self, records: Sequence[str], links: Sequence[dict[str, Any]]) -> None:
        self.records = list(records)
        self.links = list(links)
        index = {r: i for i, r in enumerate(self.records)}
        n = len(self.records)
        self.size = n + len(self.links)
        rows, cols = [], []
        self.members: list[list[int]] = []
        for j, link in enumerate(self.links):
            members = [index[r] for r in link["records"] if r in index]
            self.members.append(members)
            rows += [n + j] * len(members)
            cols += members
        self.rows, self.cols = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)

    def _labels(self, without: int | None = None) -> np.ndarray:
        keep = np.ones(len(self.rows), dtype=bool)
        if without is not None:
            keep = self.rows != len(self.records) + without
        r, c = self.rows[keep], self.cols[keep]
        adj = coo_matrix((np.ones(len(r)), (r, c)), shape=(self.size, self.size))
        return connected_components(adj, directed=False)[1][: len(self.records)]

    @functools.cached_property
    def parts(self) -> int:
        """How many parts the records form with every link."""
        return len(set(self._labels().tolist())) if self.records else 0

    def apart_without(self, link: int) -> list[str]:
        """The records no longer with the largest part when ``link`` is taken out (on a tie,
        the part holding the first record stays)."""
        labels = self._labels(link)
        values, counts = np.unique(labels, return_counts=True)
        if len(values) <= self.parts:
            return []
        first = {int(v): int(np.argmax(labels == v)) for v in values}
        main = max(values.tolist(), key=lambda v: (counts[values == v][0], -first[v]))
        return sorted(r for r, lab in zip(self.records, labels, strict=True) if lab != main)

    def path(self, start: list[str], end: list[str]) -> list[dict[str, Any]] | None:
        """The fewest links from a record of ``start`` to one of ``end``, as hops."""
        index = {r: i for i, r in enumerate(self.records)}
        by_record: dict[int, list[int]] = {}
        for j, members in enumerate(self.members):
            for m in members:
                by_record.setdefault(m, []).append(j)
        goal = {index[r] for r in end if r in index}
        came: dict[int, tuple[int, int] | None] = {index[r]: None for r in start if r in index}
        queue = deque(came)
        while queue:
            node = queue.popleft()
            if node in goal:
                hops = []
                while came[node] is not None:
                    prev, j = came[node]  # type: ignore[misc]
                    link = self.links[j]
                    hops.append(
                        {
                            "from": self.records[prev],
                            "by": link["by"],
                            "value": link["value"],
                            "to": self.records[node],
                        }
                    )
                    node = prev
                return hops[::-1]
            for j in by_record.get(node, []):
                for m in self.members[j]:
                    if m not in came:
                        came[m] = (node, j)
                        queue.append(m)
        return None
