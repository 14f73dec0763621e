"""Known answers for cohort retention: cohort assignment, retention shares, sizes, the average curve, and the
aggregates-stage table over a tiny hand-made event log."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from recsys.aggregates import retention as R
from recsys.aggregates.query import ALL, EdaFilters

D = dt.date
# (user, day, bought, category): weeks of Mon 2019-09-30, Mon 10-07, Mon 10-14, Mon 10-21; the data ends Thu 10-24
ROWS = [
    (1, D(2019, 10, 1), False, "a"), (1, D(2019, 10, 8), True, "a"), (1, D(2019, 10, 22), False, "b"),
    (2, D(2019, 10, 2), True, "a"), (2, D(2019, 10, 3), False, "a"),
    (3, D(2019, 10, 9), False, "b"), (3, D(2019, 10, 16), True, "b"), (3, D(2019, 10, 24), True, "a"),
    (4, D(2019, 10, 10), False, "a"),
]


def _ud() -> pd.DataFrame:
    """The stage's per-slice user-day table of ROWS: the all-slice and the per-category slice."""
    df = pd.DataFrame(ROWS, columns=["user_id", "day", "bought", "category_top"])
    every = df.assign(category_top=ALL)
    out = pd.concat([every, df]).assign(brand=ALL)
    return out.groupby(["category_top", "brand", "user_id", "day"], as_index=False)["bought"].any()


@pytest.fixture()
def con(tmp_path):
    c = duckdb.connect()
    c.register("ud_df", _ud())
    c.execute("CREATE TABLE ud AS SELECT category_top, brand, user_id, day::DATE AS day, bought FROM ud_df")
    n = R.write_retention(c, str(tmp_path / "retention.parquet"))
    assert n > 0
    c.execute(f"CREATE TABLE retention AS SELECT * FROM read_parquet('{tmp_path / 'retention.parquet'}')")
    c.execute("CREATE TABLE user_activity AS SELECT category_top, brand, day, count(*) AS active_users "
              "FROM ud GROUP BY ALL")
    return c


def test_periods_follow_the_calendar():
    assert R.period_start("week", D(2019, 10, 6)) == D(2019, 9, 30)  # a Sunday: its Monday
    assert R.period_start("month", D(2019, 11, 30)) == D(2019, 11, 1)
    assert R.period_end("month", D(2019, 2, 1)) == D(2019, 2, 28)
    assert R.period_end("week", D(2019, 10, 21)) == D(2019, 10, 27)
    assert R.periods_between("month", D(2019, 11, 1), D(2020, 2, 1)) == 3
    assert R.periods_between("week", D(2019, 9, 30), D(2019, 10, 21)) == 3


def test_cohorts_by_first_event_week(con):
    long = R.cohorts(con, EdaFilters(), "week", "first_event", "active")
    sizes = dict(zip(*R.cohort_sizes(long)[["cohort", "users"]].T.values))
    assert sizes == {D(2019, 9, 30): 2, D(2019, 10, 7): 2}  # users 1, 2 | users 3, 4
    cell = long.set_index(["cohort", "period"])
    assert cell.loc[(D(2019, 9, 30), 1), "users"] == 1  # user 1 on 10-08
    assert cell.loc[(D(2019, 9, 30), 2), "users"] == 0  # nobody in the week of 10-14: a zero, not a gap
    assert cell.loc[(D(2019, 9, 30), 3), "share"] == 0.5  # user 1 on 10-22
    assert cell.loc[(D(2019, 10, 7), 1), "share"] == 0.5  # user 3 on 10-16
    assert len(long) == 4 + 3  # every reachable cell up to the last week
    assert long.loc[long["period_start"] == D(2019, 10, 21), "partial"].all()  # the data ends on a Thursday
    assert not long.loc[long["period_start"] < D(2019, 10, 21), "partial"].any()


def test_buying_shares_and_first_purchase_cohorts(con):
    buying = R.cohorts(con, EdaFilters(), "week", "first_event", "buying").set_index(["cohort", "period"])
    assert buying.loc[(D(2019, 9, 30), 0), "share"] == 0.5  # user 2 bought in the first week, user 1 did not
    assert buying.loc[(D(2019, 9, 30), 1), "users"] == 1  # user 1 bought on 10-08
    fp = R.cohorts(con, EdaFilters(), "week", "first_purchase", "active")
    sizes = dict(zip(*R.cohort_sizes(fp)[["cohort", "users"]].T.values))
    assert sizes == {D(2019, 9, 30): 1, D(2019, 10, 7): 1, D(2019, 10, 14): 1}  # users 2 | 1 | 3; 4 never bought
    cell = fp.set_index(["cohort", "period"])
    assert cell.loc[(D(2019, 10, 7), 2), "users"] == 1  # user 1 after their purchase week, on 10-22
    assert cell.loc[(D(2019, 10, 14), 1), "users"] == 1  # user 3 on 10-24


def test_a_category_slice_counts_only_its_events(con):
    long = R.cohorts(con, EdaFilters(category="b"), "week", "first_event", "active")
    sizes = dict(zip(*R.cohort_sizes(long)[["cohort", "users"]].T.values))
    assert sizes == {D(2019, 10, 7): 1, D(2019, 10, 21): 1}  # user 3 first in b on 10-09, user 1 on 10-22
    assert long.set_index(["cohort", "period"]).loc[(D(2019, 10, 7), 1), "share"] == 1.0


def test_the_date_range_picks_cohorts_and_ends_periods(con):
    long = R.cohorts(con, EdaFilters(start=D(2019, 10, 8), end=D(2019, 10, 15)), "week", "first_event", "active")
    assert set(long["cohort"]) == {D(2019, 10, 7)}
    assert long["period"].max() == 1  # cut at the week holding 10-15
    assert not long["partial"].any()  # that week is complete in the data


def test_month_cohorts(con):
    long = R.cohorts(con, EdaFilters(), "month", "first_event", "active")
    assert len(long) == 1 and long["cohort"].tolist() == [D(2019, 10, 1)] and long["cohort_size"].tolist() == [4]
    assert long["partial"].tolist() == [True]  # October ends after the data's last day
    assert R.curve_lengths(long) == []  # no complete month: the page says so


def test_matrix_and_average_curve_known_answers():
    long = pd.DataFrame({
        "cohort": [D(2019, 1, 7)] * 3 + [D(2019, 1, 14)] * 2 + [D(2019, 1, 21)],
        "period": [0, 1, 2, 0, 1, 0], "cohort_size": [10] * 3 + [30] * 2 + [5],
        "users": [10, 5, 2, 30, 3, 5], "partial": [False, False, True, False, True, True]})
    long["share"] = long["users"] / long["cohort_size"]
    assert R.cohort_sizes(long)["complete_periods"].tolist() == [2, 1, 0]
    assert R.curve_lengths(long) == [0, 1]
    curve = R.average_curve(long, 1)  # only the first cohort has periods 0 and 1 complete
    assert curve["cohorts"].tolist() == [1, 1] and curve["share"].tolist() == [1.0, 0.5]
    curve0 = R.average_curve(long, 0)  # the first two cohorts, weighted by size: (10 + 30) / 40
    assert curve0["share"].tolist() == [1.0] and curve0["cohort_users"].tolist() == [40]
    m = R.retention_matrix(long)
    assert m.columns.tolist() == ["cohort", "users", "period 0", "period 1", "period 2"]
    assert m["users"].tolist() == [10, 30, 5] and m.loc[1, "period 1"] == pytest.approx(0.1)
    assert pd.isna(m.loc[2, "period 1"])


def test_weighting_is_by_cohort_size_not_a_mean_of_shares():
    long = pd.DataFrame({"cohort": [D(2019, 1, 7)] * 2 + [D(2019, 1, 14)] * 2, "period": [0, 1, 0, 1],
                         "cohort_size": [10, 10, 90, 90], "users": [10, 10, 90, 0], "partial": [False] * 4})
    long["share"] = long["users"] / long["cohort_size"]
    assert R.average_curve(long, 1)["share"].tolist() == [1.0, 0.1]  # 10 / 100, not (1.0 + 0.0) / 2


def test_bad_switch_values_say_what_to_use(con):
    with pytest.raises(ValueError, match="week, month"):
        R.cohorts(con, EdaFilters(), "day")
    with pytest.raises(ValueError, match="active, buying"):
        R.cohorts(con, EdaFilters(), measure="views")


def test_figures_carry_the_shares(con):
    long = R.cohorts(con, EdaFilters(), "week", "first_event", "active")
    fig = R.heatmap_figure(long, "week", "first_event", "active")
    assert fig.data[0].z[0][0] == 1.0 and fig.data[0].y[0] == "2019-09-30 (n=2)"
    assert fig.data[0].z[1][3] is None  # the second cohort cannot reach period 3
