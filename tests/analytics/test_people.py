"""Who did it: the hashed person keys agree with the person ids they stand for."""

from __future__ import annotations

from datetime import datetime

from loupe.analytics.people import event_people, event_person_keys
from loupe.warehouse.functions import hash64
from tests.analytics.conftest import canonical, links

LINKS = {
    ("user_id", "u1"): "c1",
    ("anonymous_id", "a1"): "c2",  # a1 later logged in as u1: the user_id wins
    ("anonymous_id", "a2"): "c3",
    ("anonymous_id", "a4"): "c5",  # one identifier, two customers: the smaller one
    ("user_id", "u9"): "c9",
}
#: (anonymous_id, user_id) of each event, and the person it belongs to
EVENTS = [
    (("a1", "u1"), "c1"),
    (("a1", None), "c2"),
    (("a2", None), "c3"),
    (("a3", None), "a3"),  # a visitor never identified
    (("", "u7"), "u7"),  # an empty anonymous_id is no identifier; an unlinked user_id
    (("a3", ""), "a3"),
    (("a4", None), "c4"),
    ((None, "u9"), "c9"),
    (("", None), None),  # no identifier at all
    ((None, None), None),
]


def test_person_keys_are_the_hash_of_the_person_id(wh):
    link_table = links(LINKS).union(links({("anonymous_id", "a4"): "c4"}))
    events = canonical(
        "events",
        [
            {"event_id": str(i), "anonymous_id": a, "user_id": u, "ts": datetime(2024, 1, 1)}
            for i, ((a, u), _) in enumerate(EVENTS)
        ],
    ).select("event_id", "anonymous_id", "user_id")
    keys = event_person_keys(events, link_table, wh.backend, person_id=True)
    got = wh.to_pandas(keys.order_by(keys.event_id.cast("int64")))
    expected = [person for _, person in EVENTS]
    assert got["person_id"].tolist() == expected
    # the key is the hash of that id, computed by the engine, NULL where there is no person
    # (read as text: a pandas column of uint64 with NULLs would be float)
    ref = event_people(events, link_table)
    ref = ref.select("event_id", ref_pk=hash64(ref.person_id, wh.backend).cast("string"))
    pks = keys.select("event_id", pk=keys.pk.cast("string"))
    j = wh.to_pandas(pks.join(ref, "event_id").order_by(pks.event_id.cast("int64")))
    has_person = [p is not None for p in expected]
    assert j["pk"].notna().tolist() == has_person
    assert (j["pk"] == j["ref_pk"]).tolist() == has_person
    # without person_id, no string is resolved
    assert "person_id" not in event_person_keys(events, link_table, wh.backend).columns
