"""customer_360 and the CLI."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from identity_data import load, person
from typer.testing import CliRunner

from loupe.cli import main
from loupe.errors import LoupeError, NotFoundError
from loupe.identity import customer_360, resolve_identities
from loupe.warehouse import Warehouse


def fill(wh: Warehouse) -> None:
    load(
        wh,
        contacts=[
            person(
                "crm", "1", email="li.fang@x.com", phone="+8613812345678", name="李芳", user_id="u1"
            ),
            person("web", "1", user_id="u1", anonymous_id="anon1"),
            person("crm", "2", email="other@x.com", name="张强"),
        ],
        orders=[
            {
                "order_id": f"o{i}",
                "source": "shop",
                "contact_source": "crm",
                "source_key": "1",
                "ordered_at": datetime(2024, 1, 1 + i),
                "amount_base": 10.0 * (i + 1),
                "channel": "store" if i else "online",
            }
            for i in range(3)
        ],
        events=[
            {
                "source": "web",
                "event_id": f"e{i:02d}",
                "type": "track",
                "event": "view",
                "anonymous_id": "anon1",
                "ts": datetime(2024, 2, 1, 0, i),
            }
            for i in range(25)
        ],
        consents=[
            {
                "source": "crm",
                "identifier": "li.fang@x.com",
                "identifier_type": "email",
                "purpose": "email",
                "granted": True,
                "ts": datetime(2024, 1, 1),
            },
            {
                "source": "app",
                "identifier": "+8613812345678",
                "identifier_type": "phone",
                "purpose": "email",
                "granted": False,
                "ts": datetime(2024, 3, 1),
            },
            {
                "source": "crm",
                "identifier": "other@x.com",
                "identifier_type": "email",
                "purpose": "sms",
                "granted": True,
                "ts": datetime(2024, 1, 1),
            },
        ],
    )
    resolve_identities(wh)


def test_lookup_by_email_in_upper_case_and_phone_in_another_format(wh):
    fill(wh)
    by_email = customer_360(wh, "  LI.FANG@X.COM ")
    by_phone = customer_360(wh, "138 1234 5678")
    assert by_email["customer"]["customer_id"] == by_phone["customer"]["customer_id"]
    assert customer_360(wh, by_email["customer"]["customer_id"]) == by_email
    doc = by_email
    assert {r["source"] for r in doc["records"]} == {"crm", "web"}
    assert doc["records"][0]["location"] == "crm.csv:2"
    assert doc["orders"]["count"] == 3
    assert doc["orders"]["revenue"] == 60.0
    assert doc["orders"]["by_channel"]["store"] == {"count": 2, "revenue": 50.0}
    assert len(doc["recent_events"]) == 20
    assert doc["recent_events"][0]["ts"] == datetime(2024, 2, 1, 0, 24)
    assert [(c["purpose"], c["granted"]) for c in doc["consents"]] == [("email", False)]


def test_unknown_key_is_not_found(wh):
    fill(wh)
    with pytest.raises(NotFoundError, match=r"nobody@x\.com"):
        customer_360(wh, "nobody@x.com")


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "loupe.toml").write_text('[project]\nname = "t"\n', encoding="utf-8")
    from loupe.config import load_settings

    wh = Warehouse.open(load_settings(tmp_path))
    fill(wh)
    wh.close()
    main._register()
    return tmp_path


def test_cli_json_output_is_only_json(project):
    runner = CliRunner()
    res = runner.invoke(main.app, ["--project", str(project), "identity", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["records"] == 3 and doc["customers"] == 2
    res = runner.invoke(
        main.app, ["--project", str(project), "customers", "show", "LI.FANG@x.com", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["customer"]["name"] == "李芳"


def test_cli_terminal_view_cuts_nothing_at_80_columns(project, capsys, monkeypatch):
    """Every source record, e-mail and location is whole (at 80 columns the records table
    printed every e-mail as ``li.fan…``); times are to the second; values are not markup."""
    from loupe.cli import common

    monkeypatch.setattr(common.out, "width", 80)
    assert main.main(["--project", str(project), "customers", "show", "u1"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    lines = out.splitlines()
    crm = lines.index(next(line for line in lines if line.split()[:2] == ["crm", "1"]))
    assert lines[crm + 1].split(" · ")[:3] == ["    李芳", "li.fang@x.com", "+8613812345678"]
    assert "Orders: 3 · revenue 60.00 · first 2024-01-01 00:00:00" in out
    cells = [line.replace("│", " ").split() for line in lines]  # with or without rules
    events = [c for c in cells if c[:1] == ["2024-02-01"]]
    assert len(events) == 20 and events[0] == ["2024-02-01", "00:24:00", "view", "web"]
    assert ["email", "no", "2024-03-01", "00:00:00", "+8613812345678", "app"] in cells


def test_cli_unknown_customer_exits_cleanly(project, capsys):
    code = main.main(["--project", str(project), "customers", "show", "nobody@x.com"])
    assert code == 1
    assert "No customer found" in capsys.readouterr().err


def test_a_shared_phone_names_its_customers_instead_of_nobody(wh):
    """A family or shop phone carried by more records than the guard allows links no one, but
    the golden records still show it: looking it up lists whose it is (it said 'No customer
    found'), and a unique identifier still finds its one customer."""
    family = "+8613900000000"
    people = [person("crm", str(i), email=f"p{i}@x.com", phone=family) for i in range(7)]
    load(wh, contacts=people)
    resolve_identities(wh)
    with pytest.raises(LoupeError, match=r"'139 0000 0000' is shared by 7 customers: C") as err:
        customer_360(wh, "139 0000 0000")
    assert not isinstance(err.value, NotFoundError)
    assert customer_360(wh, "p3@x.com")["customer"]["phone"] == family
