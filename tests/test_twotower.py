"""Two-tower model: planted structure it must recover, features, checkpoint, serving API and the build stages."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys import schema as S
from recsys.ingest.interactions import Interactions
from recsys.model.features import (CART_I, PURCHASE_I, REMOVE_I, VIEW_I, behaviour_features, build_sequences,
                                      pad_history)
from recsys.model.towers import TwoTowerConfig, load_checkpoint, numpy_user_tower, save_checkpoint
from recsys.model.store import repurchase_stats
from recsys.model.train import train_two_tower

N_CLUSTERS, PER_CLUSTER, USERS_PER_CLUSTER = 10, 10, 30
HELD_OUT_FROM = 21 * 86400
FAST = dict(max_epochs=40, patience=6, batch_size=128, uniform_negatives=64, max_seconds=60, min_total_examples=60_000,
            lr=5e-3, seed=1)


def _inter(user, item, event, ts, n_users, catalog, session=None) -> Interactions:
    order = np.argsort(ts, kind="stable")
    user, item, event, ts = (np.asarray(a)[order] for a in (user, item, event, ts))
    sess = np.asarray(session)[order] if session is not None else user.astype(np.int64)
    return Interactions(user.astype(np.int32), item.astype(np.int32), event.astype(np.int8), ts.astype(np.int64),
                        sess.astype(np.int64), np.arange(n_users, dtype=np.int64) + 1000,
                        catalog[S.PRODUCT_ID].to_numpy(np.int64), catalog)


def _catalog(n: int, rng: np.random.Generator, aligned: bool) -> pd.DataFrame:
    """Items of cluster c = codes [c*10, c*10+10); categories follow clusters only when ``aligned``."""
    cluster = np.arange(n) // PER_CLUSTER
    cat = cluster if aligned else rng.integers(0, 5, n)
    return pd.DataFrame({S.PRODUCT_ID: np.arange(n, dtype=np.int64) + 10_000, S.CATEGORY_ID: cat.astype(np.int64) + 7,
                         S.CATEGORY_CODE: [f"dept{c % 3}.cat{c}" for c in cat],
                         S.BRAND: [f"brand{b}" for b in rng.integers(0, 4, n)], S.PRICE: rng.uniform(5, 500, n)})


def planted(aligned: bool = False, seed: int = 0):
    """Users of cluster c touch 6 of its 10 items before day 20 and 2 of the other 4 after: (train, test truth)."""
    rng = np.random.default_rng(seed)
    n_items = N_CLUSTERS * PER_CLUSTER
    catalog = _catalog(n_items, rng, aligned)
    rows, truth = [], []
    for u in range(N_CLUSTERS * USERS_PER_CLUSTER):
        c = u % N_CLUSTERS
        items = c * PER_CLUSTER + rng.permutation(PER_CLUSTER)
        t = np.sort(rng.uniform(0, 20 * 86400, 6)).astype(np.int64)
        rows += [(u, i, VIEW_I if k % 3 else CART_I, tt) for k, (i, tt) in enumerate(zip(items[:6], t))]
        rows += [(u, i, VIEW_I, HELD_OUT_FROM + 3600 * k) for k, i in enumerate(items[6:8])]
        truth.append(items[6:8])
    user, item, event, ts = map(np.array, zip(*rows))
    full = _inter(user, item, event, ts, N_CLUSTERS * USERS_PER_CLUSTER, catalog)
    return full.window(end=HELD_OUT_FROM), truth, full


@pytest.fixture(scope="module")
def fitted():
    from recsys.model.two_tower import TwoTowerRecommender
    train, truth, full = planted()
    return TwoTowerRecommender(TwoTowerConfig(**FAST)).fit(train), train, truth, full


def test_planted_clusters_are_recovered(fitted):
    rec, train, truth, _ = fitted
    out = rec.recommend(np.arange(train.n_users), 10, exclude_seen=True)
    recall = np.mean([len(np.intersect1d(r, t)) / len(t) for r, t in zip(out.items, truth)])
    assert recall >= 0.9, f"recall@10 of held-out cluster items {recall:.3f}"
    # the category features are random here: only the co-occurrence of ids can explain this
    assert rec.report["val_recall@10"] is not None


def test_holdout_report_measures_the_held_out_days(fitted):
    from recsys.model.train import holdout_report
    rec, _, _, full = fitted
    rep = holdout_report(rec.model, full, HELD_OUT_FROM)
    assert rep["users"] == full.n_users
    # without exclusion the seen cluster items compete, but the held-out ones still rank far above popularity
    assert rep["recall@10"] >= 0.6 > rep["popularity_recall@10"] + 0.3


def test_recommender_protocol_and_exclude_seen(fitted):
    from recsys.recommenders.base import Recommender
    rec, train, _, _ = fitted
    assert isinstance(rec, Recommender)
    out = rec.recommend(np.array([0, 1]), 5, exclude_seen=True)
    assert out.items.shape == (2, 5) and out.scores.shape == (2, 5)
    seen0 = set(train.item[train.user == 0].tolist())
    assert not seen0 & set(out.items[0].tolist())
    assert np.all(np.diff(out.scores, axis=1) <= 1e-6)
    sim = rec.similar_items(3, 5)
    assert 3 not in sim.items[0] and (sim.items[0] // PER_CLUSTER == 0).sum() >= 4


def test_diversity_variant_spreads_categories():
    from recsys.model.two_tower import TwoTowerRecommender
    train, _, _ = planted(aligned=False)
    plain = TwoTowerRecommender(TwoTowerConfig(**{**FAST, "max_epochs": 5})).fit(train)
    div = TwoTowerRecommender(TwoTowerConfig(**{**FAST, "max_epochs": 5}), diversity_weight=1.0).fit(train)
    cat = train.catalog[S.CATEGORY_ID].to_numpy()
    users = np.arange(20)
    n_plain = np.mean([len(set(cat[r])) for r in plain.recommend(users, 5).items])
    n_div = np.mean([len(set(cat[r])) for r in div.recommend(users, 5).items])
    assert div.name != plain.name and n_div > n_plain


def test_cold_start_item_lands_near_its_category():
    train, _, _ = planted(aligned=True, seed=2)
    cold = train.catalog.iloc[[25]].copy()  # same category and price range as cluster 2, never interacted with
    cold[S.PRODUCT_ID] = 99_999
    catalog = pd.concat([train.catalog, cold], ignore_index=True)
    train = Interactions(train.user, train.item, train.event, train.ts, train.session, train.user_ids,
                         catalog[S.PRODUCT_ID].to_numpy(np.int64), catalog)
    model, report = train_two_tower(train, TwoTowerConfig(**FAST))
    assert report["cold_items"] == 1
    vecs = model.all_item_vectors()
    near = np.argsort(-(vecs[:-1] @ vecs[-1]))[:10]
    assert (near // PER_CLUSTER == 2).sum() >= 6


def test_training_is_deterministic_with_a_seed():
    train, _, _ = planted(seed=4)
    cfg = TwoTowerConfig(**{**FAST, "max_epochs": 2})
    a, _ = train_two_tower(train, cfg)
    b, _ = train_two_tower(train, cfg)
    assert np.array_equal(a.all_item_vectors(), b.all_item_vectors())


def test_checkpoint_loads_with_weights_only_and_numpy_tower_matches(tmp_path):
    train, _, _ = planted(seed=5)
    model, _ = train_two_tower(train, TwoTowerConfig(**{**FAST, "max_epochs": 2}))
    save_checkpoint(model, tmp_path / "m.pt")
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    assert blob["config"]["dim"] == 64 and "state_dict" in blob
    from recsys.model.features import ItemFeatures
    feats = ItemFeatures(*[model.features[i].numpy() for i in range(7)])
    again = load_checkpoint(tmp_path / "m.pt", feats)
    assert np.allclose(again.all_item_vectors(), model.all_item_vectors())
    assert np.allclose(np.linalg.norm(model.all_item_vectors(), axis=1), 1.0, atol=1e-5)
    items, events, ts, mask = pad_history(np.array([3, 4, 5]), np.array([0, 1, 2], np.int8),
                                          np.array([10, 20, 30]), 50)
    beh = behaviour_features(events, ts, mask, np.array([100]))
    want = model.user_vectors(torch.from_numpy(items), torch.from_numpy(events.astype(np.int64)),
                              torch.from_numpy(mask), torch.from_numpy(beh)).detach().numpy()
    assert np.allclose(numpy_user_tower(model)(items, events.astype(np.int64), mask, beh), want, atol=1e-5)


def test_sequences_merge_repeats_and_drop_removes():
    cat = _catalog(5, np.random.default_rng(0), True)
    inter = _inter(user=[0, 0, 0, 0, 1, 0], item=[1, 1, 1, 2, 3, 2],
                   event=[VIEW_I, CART_I, VIEW_I, REMOVE_I, VIEW_I, PURCHASE_I], ts=[1, 2, 3, 4, 5, 6],
                   n_users=2, catalog=cat)
    seq = build_sequences(inter)
    assert seq.offsets.tolist() == [0, 2, 3]
    assert seq.item.tolist() == [1, 2, 3]
    assert seq.event.tolist() == [CART_I, PURCHASE_I, VIEW_I]  # strongest event of the run
    assert seq.ts.tolist() == [3, 6, 5]


def test_sequences_without_removes_keep_the_last_session_and_dtypes():
    cat = _catalog(5, np.random.default_rng(0), True)
    # no removes (the path without a filtered copy); users interleaved in time; user 2 has no events
    inter = _inter(user=[1, 0, 1, 0, 1], item=[4, 2, 4, 3, 0], event=[VIEW_I, VIEW_I, CART_I, VIEW_I, VIEW_I],
                   ts=[1, 2, 3, 4, 5], n_users=3, catalog=cat, session=[7, 8, 9, 8, 9])
    seq = build_sequences(inter)
    assert seq.offsets.tolist() == [0, 2, 4, 4]
    assert seq.item.tolist() == [2, 3, 4, 0] and seq.event.tolist() == [VIEW_I, VIEW_I, CART_I, VIEW_I]
    assert seq.ts.tolist() == [2, 4, 3, 5] and seq.session.tolist() == [8, 8, 9, 9]  # the run's last event
    assert [a.dtype for a in (seq.offsets, seq.item, seq.event, seq.ts, seq.session)] == \
        [np.int64, np.int64, np.int8, np.int64, np.int64]
    empty = build_sequences(inter.window(end=0))
    assert empty.offsets.tolist() == [0, 0, 0, 0] and len(empty.item) == 0 and empty.item.dtype == np.int64


def test_repurchase_rate_counts_repeat_purchases_in_later_sessions():
    cat = _catalog(5, np.random.default_rng(0), True)
    # user 0 buys item 1 in sessions 10, 10 (same basket: not a repeat) and 11 (repeat); user 1 buys item 2 once
    inter = _inter(user=[0, 0, 0, 1], item=[1, 1, 1, 2], event=[PURCHASE_I] * 4, ts=[1, 2, 3, 4], n_users=2,
                   catalog=cat, session=[10, 10, 11, 12])
    stats = repurchase_stats(inter)
    assert stats["purchases"] == 4 and stats["repeat_purchases"] == 1
    assert stats["repurchase_rate"] == 0.25 and stats["exclude_purchased_default"] is False


def test_training_rejects_a_window_without_histories():
    train, _, _ = planted()
    one = train.window(end=int(train.ts[0]) + 1)
    with pytest.raises(ValueError, match="two or more interactions"):
        train_two_tower(one, TwoTowerConfig(**FAST))


# ---- the build stages and the serving API on the demo store ------------------------------------------------

def _active_user(svc) -> int:
    lengths = np.diff(svc.art.histories.offsets)
    return int(svc.user_ids[int(np.argmax(lengths))])


def test_model_and_index_stages_write_aligned_artifacts(demo_artifacts):
    from recsys.artifacts import read_manifest
    from recsys.ingest.interactions import load_interactions
    m = read_manifest(demo_artifacts, "model")
    ix = read_manifest(demo_artifacts, "index")
    assert m and ix and ix["index"]["kind"] == "flat_ip" and ix["index"]["recall@10"] == 1.0
    inter = load_interactions(demo_artifacts)
    d = demo_artifacts / "model"
    vecs = np.load(d / "item_embeddings.npy")
    assert vecs.shape == (inter.n_items, 64)
    assert np.array_equal(np.load(d / "item_ids.npy"), inter.item_ids)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    blob = torch.load(d / "model.pt", weights_only=True)
    assert blob["config"]["dim"] == 64
    assert 0.0 <= m["repurchase"]["repurchase_rate"] <= 1.0
    assert not m["train"]["hit_time_limit"] and m["train"]["epochs"] <= m["train"]["planned_epochs"]


def test_hnsw_index_reaches_the_recall_target(demo_artifacts):
    from recsys.model.retrieval import IndexParams, build_index
    vecs = np.load(demo_artifacts / "model" / "item_embeddings.npy")
    index, facts = build_index(vecs, IndexParams(exact_max_items=100, eval_queries=300))
    assert facts["kind"] == "hnsw_ip" and facts["recall@10"] >= 0.95


def test_recommend_products_for_user_end_to_end(demo_artifacts):
    from recsys import recommend_products_for_user
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    uid = _active_user(svc)
    df = recommend_products_for_user(uid, top_n=10, diversity_weight=0.3, artifacts=demo_artifacts)
    assert list(df.columns) == ["rank", "product_id", "brand", "category", "category_id", "price", "score", "reason",
                                "source", "because_product_id"]
    assert len(df) == 10 and df["product_id"].is_unique
    assert df["reason"].str.len().gt(0).all() and df["source"].str.len().gt(0).all()
    from recsys.artifacts import connect
    touched = set(connect(demo_artifacts).execute("SELECT DISTINCT product_id FROM events WHERE user_id = ?",
                                                  [uid]).df()["product_id"].tolist())
    assert set(df["because_product_id"].dropna().astype(int)) <= touched  # reasons name the user's own items
    plain = recommend_products_for_user(uid, 10, 0.0, artifacts=demo_artifacts)
    assert np.all(np.diff(plain["score"].to_numpy()) <= 1e-6)
    wide = recommend_products_for_user(uid, 10, 1.0, artifacts=demo_artifacts)
    assert wide.attrs["categories"] >= plain.attrs["categories"]
    assert wide.attrs["intra_list_diversity"] >= plain.attrs["intra_list_diversity"]


def test_unknown_user_and_bad_arguments_say_so(demo_artifacts):
    from recsys import recommend_products_for_user
    with pytest.raises(KeyError, match="unknown user_id 1"):
        recommend_products_for_user(1, artifacts=demo_artifacts)
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    with pytest.raises(ValueError, match="diversity_weight"):
        svc.recommend_for_user(_active_user(svc), 10, 2.0)
    with pytest.raises(ValueError, match="unknown product_id"):
        svc.recommend_for_products([1])


def test_exclude_purchased_removes_bought_items(demo_artifacts):
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    buyers = np.flatnonzero(np.diff(svc.art.purchase_offsets) > 0)
    assert len(buyers)
    code = int(buyers[0])
    bought = set(svc.product_ids[svc.purchased(code)].tolist())
    df = svc.recommend_for_user(int(svc.user_ids[code]), 30, 0.0, exclude_purchased=True)
    assert not bought & set(df["product_id"].tolist())


def test_new_visitor_and_similar_products(demo_artifacts):
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    seen = svc.product_ids[:3].tolist()
    df = svc.recommend_for_products(seen, top_n=5, diversity_weight=0.0)
    assert len(df) == 5 and not set(seen) & set(df["product_id"].tolist())
    assert set(df["because_product_id"].astype(int)) <= set(seen)
    sim = svc.similar_products(seen[0], 5)
    assert len(sim) == 5 and seen[0] not in sim["product_id"].tolist()
    assert sim["reason"].str.startswith("similar to").all()


def test_service_is_safe_to_share_between_threads(demo_artifacts):
    from concurrent.futures import ThreadPoolExecutor
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    users = [int(u) for u in svc.user_ids[:40]]
    want = [svc.recommend_for_user(u, 10, 0.5)["product_id"].tolist() for u in users]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda u: svc.recommend_for_user(u, 10, 0.5)["product_id"].tolist(), users))
    assert got == want


def test_real_rees46_head_beats_popularity(head_artifacts):
    """On the real October head the model's next-visit recall@10 is far above popularity's (same users)."""
    from recsys.artifacts import read_manifest
    from recsys.serving.service import load_recommender_service
    train = read_manifest(head_artifacts, "model")["train"]
    assert train["val_users"] >= 100
    assert train["val_recall@10"] >= 2 * train["popularity_val_recall@10"]
    svc = load_recommender_service(head_artifacts)
    df = svc.recommend_for_user(int(svc.user_ids[0]), 10, 0.3)
    assert len(df) == 10 and df["reason"].str.len().gt(0).all()


def test_lazy_id_update_is_sparse_adam_and_the_other_parameters_adam():
    """The training optimiser: the id table moves exactly as torch's SparseAdam would move it (only the rows a step
    touched), every other parameter as Adam; three steps on a tiny model give the same weights."""
    from recsys.model.towers import TwoTowerModel
    from recsys.model.train import _Optimizer

    cfg = TwoTowerConfig(vocab={"id_slot": 12, "cat1": 3, "cat2": 4, "cat3": 5, "cat_id": 5, "brand": 4, "price": 6},
                         lr=0.01)

    def model() -> TwoTowerModel:
        torch.manual_seed(3)
        m = TwoTowerModel(cfg)
        m.set_item_features(type("F", (), {f: np.arange(12) % cfg.vocab[f] for f in
                                           ("id_slot", "cat1", "cat2", "cat3", "cat_id", "brand", "price")})())
        return m

    ours, ref = model(), model()
    opt = _Optimizer(ours, cfg)
    named = dict(ref.named_parameters())
    ref_opts = [torch.optim.SparseAdam([named["emb.id_slot.weight"]], lr=cfg.lr),
                torch.optim.Adam([p for n, p in named.items() if n != "emb.id_slot.weight"], lr=cfg.lr)]
    for codes in ([1, 2, 3], [3, 4], [7, 1, 1]):
        for m, zero, step in ((ours, opt.zero_grad, opt.step),
                              (ref, lambda: [o.zero_grad() for o in ref_opts], lambda: [o.step() for o in ref_opts])):
            zero()
            m.item_vectors(torch.tensor(codes)).sum().backward()
            step()
    for name, p in ours.named_parameters():
        assert torch.allclose(p, dict(ref.named_parameters())[name], atol=1e-5), name  # a step moves 0.01
    untouched = [c for c in range(12) if c not in (1, 2, 3, 4, 7)]
    assert torch.equal(ours.emb["id_slot"].weight[untouched], model().emb["id_slot"].weight[untouched])


def test_service_cache_reloads_after_a_rebuild_and_only_then(tmp_path, monkeypatch):
    """One loaded service per build: the same object while the model and index manifests are unchanged, a new one
    once a stage rewrites its manifest (temporary file, then rename), and one entry per directory."""
    from types import SimpleNamespace

    from recsys.serving import service as sv
    loads = []
    monkeypatch.setattr(sv, "RecommenderService", lambda root, prefetch_state=True: loads.append(root)
                        or SimpleNamespace(_prefetch_asked=True))
    monkeypatch.setattr(sv, "_SERVICES", {})
    for stage in ("model", "index"):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "manifest.json").write_text('{"built_at": "2026-01-01T00:00:00Z"}')
    first = sv.load_recommender_service(tmp_path)
    assert sv.load_recommender_service(tmp_path) is first and len(loads) == 1
    tmp = tmp_path / "index" / "manifest.json.tmp"
    tmp.write_text('{"built_at": "2026-01-01T00:00:00Z"}')  # same text, as a second build in the same second
    tmp.replace(tmp_path / "index" / "manifest.json")
    second = sv.load_recommender_service(tmp_path)
    assert second is not first and len(loads) == 2 and len(sv._SERVICES) == 1
    assert sv.load_recommender_service(tmp_path) is second
