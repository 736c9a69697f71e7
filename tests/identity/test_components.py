"""Label propagation against a brute-force union-find, and order invariance."""

from __future__ import annotations

import random

import ibis
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loupe.identity import components as comp


def union_find(records: list[str], edges: list[tuple[str, str]]) -> dict[str, str]:
    """Reference: record -> smallest record of its component."""
    parent = {r: r for r in records}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r, node in edges:
        parent.setdefault(node, node)
        a, b = find(r), find(node)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for r in records:
        groups.setdefault(find(r), []).append(r)
    return {r: min(g) for g in groups.values() for r in g}


def run(wh, records: list[str], edges: list[tuple[str, str]], max_iterations: int = 100):
    recs = ibis.memtable(pd.DataFrame({"record": records}), schema={"record": "string"})
    e = ibis.memtable(
        pd.DataFrame(edges, columns=["record", "node"]),
        schema={"record": "string", "node": "string"},
    )
    wh.scratch(comp.LABELS, comp.initial_labels(recs))
    result = comp.propagate_labels(wh, e, max_iterations=max_iterations)
    df = wh.to_pandas(wh.table(comp.LABELS))
    return dict(zip(df.record, df.label, strict=True)), result


def test_matches_union_find_on_random_graph(wh):
    rng = random.Random(7)
    records = [f"r{i:03d}" for i in range(60)]
    edges = [(rng.choice(records), f"id{rng.randrange(45)}") for _ in range(70)]
    labels, result = run(wh, records, edges)
    assert result.converged
    assert labels == union_find(records, edges)


def test_long_chain_converges_fast(wh):
    # a-b-c-...: record i shares identifier i with record i+1; the largest record first
    n = 64
    records = [f"r{i:03d}" for i in range(n)]
    edges = [(records[i], f"n{i}") for i in range(n - 1)]
    edges += [(records[i + 1], f"n{i}") for i in range(n - 1)]
    labels, result = run(wh, records, edges)
    assert result.converged
    assert set(labels.values()) == {"r000"}
    assert result.iterations <= 12  # pointer jumping: logarithmic, not 63


def test_cap_on_iterations_is_reported(wh):
    records = [f"r{i:03d}" for i in range(40)]
    edges = [(records[i], f"n{i}") for i in range(39)] + [
        (records[i + 1], f"n{i}") for i in range(39)
    ]
    _, result = run(wh, records, edges, max_iterations=2)
    assert not result.converged
    assert result.iterations == 2


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_labels_do_not_depend_on_order(wh, data):
    n = data.draw(st.integers(2, 12))
    records = [f"r{i:02d}" for i in range(n)]
    edges = data.draw(
        st.lists(
            st.tuples(st.sampled_from(records), st.sampled_from(["a", "b", "c", "d", "e"])),
            max_size=15,
        )
    )
    shuffled = data.draw(st.permutations(records))
    labels, _ = run(wh, list(shuffled), list(reversed(edges)))
    assert labels == union_find(records, edges)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_merging_components_equals_propagating_over_all_edges(wh, data):
    """Edges found later (probabilistic matches) merge whole components: the labels equal
    those of one propagation over the old and new edges together."""
    n = data.draw(st.integers(2, 14))
    records = [f"r{i:02d}" for i in range(n)]
    pick = st.sampled_from(records)
    old = data.draw(st.lists(st.tuples(pick, st.sampled_from(["a", "b", "c", "d"])), max_size=12))
    pairs = data.draw(st.lists(st.tuples(pick, pick), min_size=1, max_size=6))
    new = [(r, f"match:{i}") for i, pair in enumerate(pairs) for r in pair]
    run(wh, records, old)
    e = ibis.memtable(
        pd.DataFrame(new, columns=["record", "node"]),
        schema={"record": "string", "node": "string"},
    )
    result = comp.merge_components(wh, e, max_iterations=100)
    df = wh.to_pandas(wh.table(comp.LABELS))
    assert result.converged
    assert dict(zip(df.record, df.label, strict=True)) == union_find(records, old + new)


def test_connected_components_labels_with_the_smallest_record_name(wh):
    """Numbered in name order, propagated on numbers, named again: the labels are the
    smallest record name of each component, as union-find gives them (records are named so
    that text order and the order they are listed in differ)."""
    rng = random.Random(11)
    records = [f"r{rng.randrange(10**6)}" for _ in range(80)]
    records = sorted(set(records), key=lambda r: int(r[1:]))  # 'r9' before 'r10'
    edges = [(rng.choice(records), f"id{rng.randrange(60)}") for _ in range(90)]
    recs = ibis.memtable(pd.DataFrame({"record": records}), schema={"record": "string"})
    e = ibis.memtable(
        pd.DataFrame(edges, columns=["record", "node"]),
        schema={"record": "string", "node": "string"},
    )
    result = comp.connected_components(wh, recs, e, max_iterations=100)
    df = wh.to_pandas(wh.table(comp.LABELS))
    assert result.converged and len(df) == len(records)
    assert dict(zip(df.record, df.label, strict=True)) == union_find(records, edges)
