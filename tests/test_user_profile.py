"""Known answers for the recommender explorer's user profile (``recsys.model.profiles.user_profile``)."""
from __future__ import annotations

import pandas as pd
import pytest

from recsys.model.profiles import user_profile
from tests.stores import write_events_stage

T = pd.Timestamp


def _row(t, kind, product, category, brand, price, user, session):
    return (T(t, tz="UTC"), kind, product, 10 + product, category, brand, price, user, session)


ROWS = [
    _row("2019-10-01 10:00:00", "view", 1, "electronics.smartphone", "apple", 500.0, 7, "a"),
    _row("2019-10-01 10:01:00", "cart", 1, "electronics.smartphone", "apple", 500.0, 7, "a"),
    _row("2019-10-01 10:02:00", "purchase", 1, "electronics.smartphone", "apple", 500.0, 7, "a"),
    _row("2019-10-03 09:00:00", "view", 2, "electronics.audio", "sony", 80.0, 7, "b"),
    _row("2019-10-03 09:05:00", "purchase", 2, "electronics.audio", "sony", 80.0, 7, "b"),
    _row("2019-10-04 12:00:00", "view", 3, "appliances.kettle", "unknown", 20.0, 7, "c"),
    _row("2019-10-04 12:00:30", "view", 1, "electronics.smartphone", "apple", 500.0, 7, "c"),
    _row("2019-10-02 08:00:00", "view", 1, "electronics.smartphone", "apple", 500.0, 8, "d"),  # another user
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_events_stage(tmp_path_factory.mktemp("profile"), ROWS)


def test_totals_timeline_and_tops_of_one_user(root):
    p = user_profile(root, 7)
    assert p["user_id"] == 7
    t = p["totals"]
    assert (t["events"], t["sessions"], t["products"]) == (7, 3, 3)
    assert (t["views"], t["carts"], t["purchases"]) == (4, 1, 2)
    assert t["spend"] == pytest.approx(580.0)
    assert (t["first_seen"], t["last_seen"]) == (T("2019-10-01 10:00:00", tz="UTC"), T("2019-10-04 12:00:30", tz="UTC"))
    tl = p["timeline"]
    assert list(tl["event_time"]) == sorted(r[0] for r in ROWS if r[7] == 7)
    assert list(tl.columns) == ["event_time", "event_type", "product_id", "brand", "category_code", "price",
                                "user_session"]
    cats = p["top_categories"]
    assert cats.values.tolist() == [["electronics.smartphone", 4, 1], ["electronics.audio", 2, 1],
                                    ["appliances.kettle", 1, 0]]
    assert p["top_brands"].values.tolist() == [["apple", 4, 1], ["sony", 2, 1], ["unknown", 1, 0]]


def test_unknown_user_is_a_key_error(root):
    with pytest.raises(KeyError, match="unknown user_id 99"):
        user_profile(root, 99)


def test_timeline_keeps_the_latest_events_in_time_order(root, monkeypatch):
    from recsys.model import profiles
    monkeypatch.setattr(profiles, "TIMELINE_ROWS", 2)
    tl = user_profile(root, 7)["timeline"]
    assert list(tl["event_time"]) == [T("2019-10-04 12:00:00", tz="UTC"), T("2019-10-04 12:00:30", tz="UTC")]
    assert user_profile(root, 7)["totals"]["events"] == 7  # the totals still count every event
