"""AppTest of the Recommender explorer: the served list with reasons beside the two-tower's own list, quick picks,
typed ids, the diversity slider, new-visitor mode."""
from __future__ import annotations

import json

PAGE = "pages/recommender.py"


def _open(app_env):
    at = app_env().run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _table(at, key):
    """Tables by role (AppTest 1.67 exposes no key for read-only dataframes): the two lists with reasons, the
    served one first, then the two-tower's own list; the profile's top categories."""
    frames = [d.value for d in at.dataframe]
    if key == "rec_top_cats":
        return next(f for f in frames if "category_code" in f.columns)
    lists = [f for f in frames if "reason" in f.columns]
    assert len(lists) == 2, [list(f.columns) for f in frames]
    return lists[0] if key == "rec_list" else lists[1]


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_page_shows_profile_served_and_two_tower_lists_and_charts(app_env, demo_artifacts):
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    at = _open(app_env)
    assert not at.error
    served, tt = _table(at, "rec_list"), _table(at, "rec_tt")
    for df in (served, tt):
        assert len(df) == 10 and {"source", "reason", "because_product_id"} <= set(df.columns)
        assert df["reason"].str.len().gt(0).all() and df["source"].str.len().gt(0).all()
    assert svc.ranker is not None
    assert (tt["source"] == "two-tower").all() and tt["reason"].str.startswith("because you").all()
    # the served list speaks from the ranker's evidence, not the two-tower's generic sentence
    assert not served["reason"].str.startswith("because you").any()
    uid = int(at.selectbox(key="rec_pick").value.split("·")[-1])
    assert tt["product_id"].tolist() == svc.two_tower_for_user(uid, 10)["product_id"].tolist()
    want = svc.recommend_for_user(uid, 10, 0.3)
    assert served[["product_id", "reason", "source"]].equals(want[["product_id", "reason", "source"]])
    # reasons carry store labels: they are table cells, never Markdown
    assert not any(r in m.value for r in served["reason"] for m in at.markdown)
    assert len(_table(at, "rec_top_cats")) >= 1
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("History timeline") for t in titles)
    assert {"Category mix at weight 0.30", "Category mix of the two-tower's list"} <= set(titles)
    assert {"Intra-list diversity", "Category coverage", "Mean relevance", "Spend"} <= {m.label for m in at.metric}


def test_changing_user_and_slider_reranks_the_served_list_only(app_env, demo_artifacts):
    from recsys.serving.service import load_recommender_service
    at = _open(app_env)
    picks = at.selectbox(key="rec_pick").options
    at.selectbox(key="rec_pick").set_value(picks[-1]).run()
    assert not at.exception
    uid = int(picks[-1].split("·")[-1])
    first = _table(at, "rec_list")
    svc = load_recommender_service(demo_artifacts)
    assert first["product_id"].tolist() == svc.recommend_for_user(uid, 10, 0.3)["product_id"].tolist()
    tt = _table(at, "rec_tt")

    lists = {}
    for w in (0.0, 1.0):
        at.slider(key="rec_div").set_value(w).run()
        assert not at.exception
        lists[w] = _table(at, "rec_list")
        assert lists[w]["product_id"].tolist() == svc.recommend_for_user(uid, 10, w)["product_id"].tolist()
        assert lists[w]["reason"].str.len().gt(0).all()
        assert _table(at, "rec_tt").equals(tt)  # the two-tower's own list does not move with the slider
    assert lists[1.0]["product_id"].tolist() != lists[0.0]["product_id"].tolist()
    assert lists[1.0]["category"].nunique() >= lists[0.0]["category"].nunique()


def test_typed_user_id_and_unknown_user(app_env, demo_artifacts):
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    at = _open(app_env)
    uid = int(svc.user_ids[5])
    at.text_input(key="rec_user").set_value(str(uid)).run()
    assert not at.exception and "Profile of user" in at.expander[0].label
    at.text_input(key="rec_user").set_value("1").run()
    assert not at.exception
    assert any("unknown user_id 1" in w.value.replace("\\", "") for w in at.warning)
    at.text_input(key="rec_user").set_value("abc").run()
    assert any("not a user id" in w.value for w in at.warning)


def test_new_visitor_mode(app_env):
    at = _open(app_env)
    at.radio(key="rec_mode").set_value("New visitor").run()
    assert not at.exception
    recs = _table(at, "rec_list")
    chosen = [int(p.split("#")[-1]) for p in at.multiselect(key="rec_products").value]
    assert len(recs) == 10 and not set(chosen) & set(recs["product_id"].tolist())
    assert (recs["source"] == "two-tower").all() and (_table(at, "rec_tt")["source"] == "two-tower").all()
    at.multiselect(key="rec_products").set_value([]).run()
    assert not at.exception and at.info


def test_example_users_stored_by_the_model_stage_fit_their_kind(demo_artifacts):
    from recsys.artifacts import connect, stage_dir
    from recsys.model.profiles import EXAMPLES_FILE, find_telling_users, telling_users
    assert (stage_dir(demo_artifacts, "model") / EXAMPLES_FILE).exists()
    con = connect(demo_artifacts)
    examples = telling_users(demo_artifacts)
    assert examples == find_telling_users(con) and all(examples.values())
    purchases = lambda u: con.execute("SELECT count(*) FILTER (WHERE event_type = 'purchase') FROM events "
                                      "WHERE user_id = ?", [u]).fetchall()[0][0]
    assert all(purchases(u) > 0 for u in examples["heavy buyer"])
    assert all(purchases(u) == 0 for u in examples["browser who never buys"])


def _sent_so_far() -> str:
    """The page's output sent so far in the running AppTest script (its local runner's forward messages)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    runner = get_script_run_ctx()._enqueue.__self__  # AppTest's LocalScriptRunner
    return "".join(str(m) for m in runner.forward_msgs())


def test_profile_heading_and_tiles_come_from_one_profile_when_switching_users(app_env, demo_artifacts, monkeypatch):
    """The heading and the tiles show the same user after a switch, and a user's heading is not on the page
    before that user's profile exists: otherwise, while the profile is computed (slow under load), the browser
    shows the previous user's tiles and timeline under the new heading."""
    from ui import recommender as recommender_ui
    from recsys.model import profiles
    real, heading_first = profiles.user_profile, {}

    def spy(root, user_id):
        heading_first[int(user_id)] = f"Profile of user {int(user_id)}" in _sent_so_far()
        return real(root, user_id)

    monkeypatch.setattr(profiles, "user_profile", spy)
    recommender_ui.profile.clear()
    at = _open(app_env)
    picks = at.selectbox(key="rec_pick").options
    for pick in (picks[-1], picks[1], picks[-1]):
        at.selectbox(key="rec_pick").set_value(pick).run()
        assert not at.exception
        uid = int(pick.split("·")[-1])
        want = real(demo_artifacts, uid)
        assert [e.label for e in at.expander] == [f"Profile of user {uid}"]
        t = want["totals"]
        assert {m.label: m.value for m in at.metric if m.label in ("Events", "Purchases", "Spend")} == \
            {"Events": f"{t['events']:,}", "Purchases": f"{t['purchases']:,}", "Spend": f"${t['spend']:,.0f}"}
        titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
        assert f"History timeline (last {len(want['timeline'])} events)" in titles
        assert _table(at, "rec_top_cats").equals(want["top_categories"])
        assert heading_first.get(uid) is False, heading_first  # computed (once, then cached) before its heading
    recommender_ui.profile.clear()
