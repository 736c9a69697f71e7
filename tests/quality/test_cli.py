"""``loupe quality --json`` on a project folder."""

from __future__ import annotations

import json
from datetime import datetime

from typer.testing import CliRunner

from loupe.cli import main
from loupe.config import load_settings
from loupe.warehouse import Warehouse

from .rawdata import write_raw


def test_quality_json_and_html(tmp_path):
    (tmp_path / "loupe.toml").write_text('[project]\nname = "t"\n\n[currency_rates]\nUSD = 7.1\n')
    with Warehouse.open(load_settings(tmp_path)) as wh:
        write_raw(wh, "contacts", [{"source": "crm", "source_key": "1", "email": " A@X.COM",
                                    "updated_at": datetime(2024, 1, 1)}])  # fmt: skip
    main._register()
    html = tmp_path / "out" / "q.html"
    result = CliRunner().invoke(
        main.app, ["--project", str(tmp_path), "quality", "--json", "--html", str(html)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    contacts = next(t for t in doc["tables"] if t["table"] == "contacts")
    assert contacts["rows_out"] == 1
    assert doc["html"] == str(html)
    assert "contacts" in html.read_text(encoding="utf-8")
    with Warehouse.open(load_settings(tmp_path)) as wh:
        assert wh.to_pandas(wh.table("contacts")).email.tolist() == ["a@x.com"]


def test_missing_project_is_a_clean_error(tmp_path):
    main._register()
    assert main.main(["--project", str(tmp_path), "quality", "--json"]) == 2
