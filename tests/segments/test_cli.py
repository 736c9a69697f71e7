"""``loupe segments …``, ``loupe rfm``, ``loupe lifecycle``, ``loupe tags``, ``loupe cluster``:
one JSON document on stdout, errors without tracebacks."""

from __future__ import annotations

import json

import pytest

from loupe.cli import profile as profile_cli
from loupe.cli import segments as segments_cli
from loupe.cli.main import app, main
from loupe.config import load_settings
from loupe.segments import declared_segments, save_definitions
from loupe.warehouse import Warehouse


@pytest.fixture(autouse=True, scope="module")
def _registered():
    # until cli.main registers these modules itself (see docs/segments.md)
    profile_cli.register(app)
    segments_cli.register(app)


def run(capsys, root, *args):
    code = main(["-p", str(root), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_preview_json(shop_project, capsys):
    root, wh, _ = shop_project
    code, out, _ = run(capsys, root, "segments", "preview", "frequency >= 2", "--json")
    assert code == 0
    doc = json.loads(out)
    f = wh.to_pandas(wh.table("customer_features"))
    assert doc["size"] == (f.frequency >= 2).sum()
    assert set(doc) >= {"size", "population", "share", "revenue_share", "sample"}


def test_bad_expression_exits_non_zero_with_the_caret(shop_project, capsys):
    root, _, _ = shop_project
    code, out, err = run(capsys, root, "segments", "preview", "frequency >= ", "--json")
    assert code != 0 and out == ""
    assert "^" in err and "Traceback" not in err


def test_create_list_show_overlap_export(shop_project, capsys, tmp_path):
    root, _, _ = shop_project
    assert run(capsys, root, "segments", "create", "c_a", "frequency >= 2", "--json")[0] == 0
    assert run(capsys, root, "segments", "create", "c_b", "monetary > 500", "--json")[0] == 0
    code, out, _ = run(capsys, root, "segments", "list", "--json")
    names = {s["name"] for s in json.loads(out)["data"]}
    assert {"c_a", "c_b"} <= names
    code, out, _ = run(capsys, root, "segments", "show", "c_a", "--json")
    assert json.loads(out)["name"] == "c_a"
    code, out, _ = run(capsys, root, "segments", "overlap", "c_a", "c_b", "--json")
    doc = json.loads(out)
    assert doc["segments"] == ["c_a", "c_b"] and len(doc["shared"]) == 2
    target = tmp_path / "a.csv"
    code, out, _ = run(
        capsys, root, "segments", "export", "c_a", str(target), "--consent", "email", "--json"
    )
    assert code == 0 and target.exists() and json.loads(out)["consent"] == "email"
    code, _, err = run(capsys, root, "segments", "show", "missing", "--json")
    assert code != 0 and "No segment named" in err


def test_delete_removes_definition_and_members_but_not_one_still_read(shop_project, capsys):
    root, wh, _ = shop_project
    assert run(capsys, root, "segments", "create", "d_base", "frequency >= 2")[0] == 0
    reader = 'in_segment("d_base") and monetary > 0'
    assert run(capsys, root, "segments", "create", "d_reader", reader)[0] == 0
    code, out, err = run(capsys, root, "segments", "delete", "d_base", "--json")
    assert code != 0 and out == "" and "read by d_reader" in err and "Traceback" not in err
    sizes = {}
    for name in ("d_reader", "d_base"):
        members = wh.to_pandas(wh.table("segment_members"))
        sizes[name] = int((members.segment == name).sum())
        code, out, _ = run(capsys, root, "segments", "delete", name, "--json")
        assert code == 0 and json.loads(out) == {
            "deleted": name,
            "member_rows_removed": sizes[name],
        }
    assert sizes["d_base"] > 0
    code, out, _ = run(capsys, root, "segments", "list", "--json")
    assert not {"d_base", "d_reader"} & {s["name"] for s in json.loads(out)["data"]}
    members = wh.to_pandas(wh.table("segment_members"))
    assert not members.segment.isin(["d_base", "d_reader"]).any()
    code, _, err = run(capsys, root, "segments", "delete", "d_base")
    assert code != 0 and "No segment named 'd_base'" in err


def test_a_segment_declared_in_loupe_toml_is_not_deleted(tmp_path, capsys):
    (tmp_path / "loupe.toml").write_text(
        '[project]\nname = "t"\n\n[[segments]]\nname = "vip"\nexpr = "monetary > 100"\n',
        encoding="utf-8",
    )
    wh = Warehouse.open(load_settings(tmp_path))
    assert [d.name for d in declared_segments(wh.settings)] == ["vip"]
    save_definitions(wh, declared_segments(wh.settings))
    wh.close()
    code, _, err = run(capsys, tmp_path, "segments", "delete", "vip")
    assert code != 0 and "declared in loupe.toml" in err


def test_rfm_lifecycle_tags_json(shop_project, capsys):
    root, _, _ = shop_project
    code, out, _ = run(capsys, root, "rfm", "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["grid"]) == 5 and doc["groups"]
    code, out, _ = run(capsys, root, "lifecycle", "--json", "--days", "30")
    doc = json.loads(out)
    assert code == 0 and sum(doc["stages"].values()) > 0
    code, out, _ = run(capsys, root, "tags", "list", "--json")
    doc = json.loads(out)
    assert code == 0 and any(
        t["name"] == "熬夜党" and t["label_en"] == "night owl" for t in doc["tags"]
    )
    # a one-sided threshold reads as one inequality (it printed `6.0 <= orders_365d <= `)
    by_name = {t["name"]: t["definition"] for t in doc["tags"]}
    assert by_name["高频购买用户"] == "6.0 <= orders_365d"


def test_cluster_json_and_save(shop_project, capsys):
    root, _, _ = shop_project
    code, out, _ = run(capsys, root, "cluster", "--k", "3", "--save-as-segments", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["k"] == 3 and len(doc["clusters"]) == 3
    assert sum(c["size"] for c in doc["clusters"]) == doc["customers"]
    assert sum(c["revenue_share"] for c in doc["clusters"]) == pytest.approx(1.0)
    saved = doc["saved_segments"]
    code, out, _ = run(capsys, root, "segments", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)["data"]}
    assert all(listed[n]["size"] > 0 for n in saved)


def test_list_keeps_segment_names_whole_at_80_columns(shop_project, capsys, monkeypatch):
    """A segment's name is what every other verb takes: at 80 columns a long one printed as
    ``night_owls_who_buy_o…``.  A table that does not fit whole gives way to a block per
    segment, and the time is to the second (it had microseconds)."""
    from loupe.cli import common

    root, _, _ = shop_project
    name = "night_owls_who_buy_often_in_winter"
    expr = "frequency >= 2 and monetary > 100 and recency_days < 400"
    assert run(capsys, root, "segments", "create", name, expr, "--replace", "--json")[0] == 0
    monkeypatch.setattr(common.out, "width", 80)
    code, out, _ = run(capsys, root, "segments", "list")
    assert code == 0 and "…" not in out
    listed = {
        s["name"]: s for s in json.loads(run(capsys, root, "segments", "list", "--json")[1])["data"]
    }
    row = next(line for line in out.splitlines() if name in line).split()
    day, time = str(listed[name]["computed_at"])[:19].split("T")
    assert row == [name, f"{listed[name]['size']:,}", "customers", day, time]
    assert all(word in out.split() for word in expr.split())
    monkeypatch.setattr(common.out, "width", 400)
    code, out, _ = run(capsys, root, "segments", "list")
    row = next(line for line in out.splitlines() if name in line).split("│")
    assert [c.strip() for c in row[1:-1]] == [
        name,
        f"{listed[name]['size']:,}",
        expr,
        f"{day} {time}",
    ]


def test_overlap_numbers_long_names_at_80_columns(shop_project, capsys, monkeypatch):
    """With long segment names the overlap matrix cut every name and count at 80 columns
    (``mornin…``); a matrix that does not fit whole numbers its segments and lists the
    names below it."""
    from loupe.cli import common

    root, _, _ = shop_project
    names = [f"{word}_customers_of_the_spring_campaign" for word in ("loyal", "new", "big")]
    for name, expr in zip(
        names, ("frequency >= 2", "frequency < 2", "monetary > 500"), strict=True
    ):
        assert run(capsys, root, "segments", "create", name, expr, "--replace", "--json")[0] == 0
    doc = json.loads(run(capsys, root, "segments", "overlap", *names, "--json")[1])
    monkeypatch.setattr(common.out, "width", 80)
    code, out, _ = run(capsys, root, "segments", "overlap", *names)
    assert code == 0 and "…" not in out
    lines = out.splitlines()
    cells = [x.replace("│", " ").split() for x in lines]
    for i, name in enumerate(names):
        assert f"{i + 1:>3}  {name}" in lines  # the legend
        row = next(c for c in cells if c[:1] == [str(i + 1)] and name not in c)
        assert row[1:] == [f"{n:,}" for n in doc["shared"][i]]
    monkeypatch.setattr(common.out, "width", 400)
    code, out, _ = run(capsys, root, "segments", "overlap", *names)
    assert f"┃ {names[0]} ┃" in out and f"{doc['shared'][0][0]:,} (1.00)" in out


def test_cluster_names_features_and_tags_whole_at_80_columns(shop_project, capsys, monkeypatch):
    """At 80 columns the six-column cluster table cut feature and tag names
    (``cat_share_elec…``, ``偏好品类=appa…``); a narrow terminal now gets a block per
    cluster, and a wide one the table."""
    from rich.cells import cell_len

    from loupe.cli import common

    root, _, _ = shop_project
    code, out, _ = run(capsys, root, "cluster", "--k", "3", "--json")
    clusters = json.loads(out)["clusters"]
    monkeypatch.setattr(common.out, "width", 80)
    code, out, _ = run(capsys, root, "cluster", "--k", "3")
    assert code == 0 and "…" not in out and "┃" not in out
    assert all(cell_len(line) <= 80 for line in out.splitlines())
    code, out, _ = run(capsys, root, "cluster")  # k chosen: the silhouette of each k wraps
    assert code == 0 and "k=8:" in out and all(cell_len(x) <= 80 for x in out.splitlines())
    words = set(out.replace(",", " ").split())
    for c in clusters:
        assert f"{c['cluster'] + 1}. {c['name']}" in out
        assert f"{c['size']:,} ({c['share']:.0%}) of customers" in out
        assert {s["feature"] for s in c["standout"][:3]} | {
            t["tag"] for t in c["top_tags"][:3]
        } <= words
    monkeypatch.setattr(common.out, "width", 400)
    code, out, _ = run(capsys, root, "cluster", "--k", "3")
    assert code == 0 and "┃ name" in out and all(c["name"] in out for c in clusters)


def test_profile_json(shop_project, capsys):
    root, _, _ = shop_project
    code, out, _ = run(capsys, root, "profile", "--as-of", "2025-12-01", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["features"]["as_of"] == "2025-12-01"
    code, _, err = run(capsys, root, "profile", "--as-of", "yesterday", "--json")
    assert code != 0 and "YYYY-MM-DD" in err
