"""One small shop with its profile built, shared by the segment tests of a module (the
profile takes seconds; the tests that save segments use names of their own)."""

from __future__ import annotations

from datetime import date

import pytest

from loupe.profile import build_profile
from loupe.warehouse import Warehouse
from tests.conftest import make_settings
from tests.profile.shop import load_into, make_shop

AS_OF = date(2025, 12, 1)


@pytest.fixture(scope="module")
def shop_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    (root / "loupe.toml").write_text('[project]\nname = "shop"\n', encoding="utf-8")
    wh = Warehouse.open(make_settings(root))
    shop = make_shop(seed=11, customers=80, orders=700, events=900)
    load_into(wh, shop)
    build_profile(wh, AS_OF)
    yield root, wh, shop
    wh.close()
