"""``loupe models`` on a project without propensity models: every mistake is a LoupeError."""

from __future__ import annotations

import json

import pytest

from loupe.cli.main import main
from loupe.config import load_settings
from loupe.models.registry import save_model
from loupe.scaffold import example_toml, write_config
from loupe.warehouse import Warehouse


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One project for the module: no test here writes to it."""
    tmp_path = tmp_path_factory.mktemp("models-cli")
    write_config(tmp_path, example_toml("t"))
    wh = Warehouse.open(load_settings(tmp_path))
    save_model(wh, {"r": 0.24}, name="clv", kind="clv", metrics={"loglik": -9582.4})
    wh.close()
    return tmp_path


def run(project, *args: str) -> int:
    return main(["--project", str(project), "models", *args])


def test_list_shows_models_of_every_kind(project, capsys):
    assert run(project, "list", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] == 1
    assert doc["data"][0]["kind"] == "clv"
    assert doc["data"][0]["metrics"] == {"loglik": -9582.4}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "no_such_label", "--json"), "No label 'no_such_label'"),
        (("train", "--cutoff", "2025-13-01"), "--cutoff must be a date"),
        (("score", "nope", "--json"), "No trained model 'nope'"),
        (("report", "clv", "--json"), "has no validation report"),
        (("fairness", "clv", "--by", "shoe_size"), "cannot group customers by 'shoe_size'"),
        (("fairness", "clv", "--json"), "has not been scored"),
    ],
)
def test_mistakes_are_reported_without_a_traceback(project, capsys, args, message):
    assert run(project, *args) != 0
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_list_keeps_the_version_whole_at_80_columns(project, capsys, monkeypatch):
    """The version is what ``models score``, ``report`` and ``fairness`` take: at 80 columns it
    printed as ``clv@202612…``.  A narrow table leaves out the training time, which the
    version's name holds, and folds the window and the metrics into one column."""
    from loupe.cli import common

    assert run(project, "list", "--json") == 0
    version = json.loads(capsys.readouterr().out)["data"][0]["version"]
    monkeypatch.setattr(common.out, "width", 80)
    assert run(project, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 and "…" not in line for line in lines)
    row = next(line for line in lines if version in line).replace("│", " ").split()
    assert row[:3] == [version, "clv", "-"]  # version, kind, target (none): whole
    assert "loglik" in " ".join(lines) and "trained at" not in " ".join(lines)
    monkeypatch.setattr(common.out, "width", 200)
    assert run(project, "list") == 0
    assert "trained at" in capsys.readouterr().out
