"""AppTest of the Recommender explorer: quick picks, typed ids, the diversity slider, new-visitor mode."""
from __future__ import annotations

import json

PAGE = "pages/recommender.py"


def _open(app_env):
    at = app_env().run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _table(at, key):
    """Tables by role (AppTest 1.67 exposes no key for read-only dataframes): the full list has reasons, the
    side-by-side pair (weight 0 first) has only rank, product, brand, category, category_id and score."""
    frames = [d.value for d in at.dataframe]
    pair = [f for f in frames if list(f.columns) == ["rank", "product_id", "brand", "category", "category_id", "score"]]
    if key == "rec_list":
        return next(f for f in frames if "reason" in f.columns)
    if key == "rec_top_cats":
        return next(f for f in frames if "category_code" in f.columns)
    return pair[0] if key == "rec_pure" else pair[1]


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_page_shows_profile_recommendations_and_charts(app_env):
    at = _open(app_env)
    assert not at.error
    recs = _table(at, "rec_list")
    assert len(recs) == 10 and recs["reason"].str.startswith("because you").all()
    assert len(_table(at, "rec_pure")) == len(_table(at, "rec_side")) == 10
    assert len(_table(at, "rec_top_cats")) >= 1
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("History timeline") for t in titles)
    assert any(t.startswith("Category mix at weight 0.30") for t in titles)
    assert {"Intra-list diversity", "Category coverage", "Mean relevance", "Spend"} <= {m.label for m in at.metric}


def test_changing_user_and_slider_updates_the_list(app_env, demo_artifacts):
    from recsys.recommend import load_recommender_service
    at = _open(app_env)
    picks = at.selectbox(key="rec_pick").options
    at.selectbox(key="rec_pick").set_value(picks[-1]).run()
    assert not at.exception
    uid = int(picks[-1].split("·")[-1])
    first = _table(at, "rec_list")
    svc = load_recommender_service(demo_artifacts)
    want = svc.recommend_for_user(uid, 10, 0.3)
    assert first["product_id"].tolist() == want["product_id"].tolist()

    at.slider(key="rec_div").set_value(1.0).run()
    assert not at.exception
    wide = _table(at, "rec_list")
    assert wide["product_id"].tolist() == svc.recommend_for_user(uid, 10, 1.0)["product_id"].tolist()
    pure = _table(at, "rec_pure")
    assert wide["category"].nunique() >= pure["category"].nunique()
    assert wide["product_id"].tolist() != first["product_id"].tolist()


def test_typed_user_id_and_unknown_user(app_env, demo_artifacts):
    from recsys.recommend import load_recommender_service
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
    at.multiselect(key="rec_products").set_value([]).run()
    assert not at.exception and at.info


def test_example_users_stored_by_the_model_stage_fit_their_kind(demo_artifacts):
    from recsys.artifacts import connect, stage_dir
    from recsys.twotower.profiles import EXAMPLES_FILE, find_telling_users, telling_users
    assert (stage_dir(demo_artifacts, "model") / EXAMPLES_FILE).exists()
    con = connect(demo_artifacts)
    examples = telling_users(demo_artifacts)
    assert examples == find_telling_users(con) and all(examples.values())
    purchases = lambda u: con.execute("SELECT count(*) FILTER (WHERE event_type = 'purchase') FROM events "
                                      "WHERE user_id = ?", [u]).fetchall()[0][0]
    assert all(purchases(u) > 0 for u in examples["heavy buyer"])
    assert all(purchases(u) == 0 for u in examples["browser who never buys"])
