"""Category-aware MMR and list diversity metrics on hand-made pools with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.diversity import category_coverage, intra_list_diversity, rerank_mmr

SCORES = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6])
CATS = np.array(["A", "A", "A", "B", "B", "C"])


def test_weight_zero_is_the_pure_relevance_ranking():
    scores = np.array([0.2, 0.9, 0.5, 0.7, 0.1])
    order = rerank_mmr(np.arange(5), scores, ["x", "x", "y", "y", "z"], 5, 0.0)
    assert order.tolist() == [1, 3, 2, 0, 4]


def test_weight_one_spreads_over_every_category_first_then_by_relevance():
    order = rerank_mmr(np.arange(6), SCORES, CATS, 6, 1.0)
    # one per category in relevance order (A, B, C), then round-robin on the redundancy share
    assert order[:3].tolist() == [0, 3, 5]
    assert CATS[order[:3]].tolist() == ["A", "B", "C"]
    assert sorted(order.tolist()) == list(range(6))


def test_weight_one_raises_the_number_of_categories():
    k = 3
    plain = rerank_mmr(np.arange(6), SCORES, CATS, k, 0.0)
    diverse = rerank_mmr(np.arange(6), SCORES, CATS, k, 1.0)
    assert len(set(CATS[plain])) == 1
    assert len(set(CATS[diverse])) == 3


def test_intermediate_weights_trade_off_by_hand_computed_gains():
    scores = np.array([1.0, 0.9, 0.8, 0.5])
    cats = ["A", "A", "A", "B"]
    # relevance scaled to [1, .8, .6, 0]; after item 0, item 1 gains .7*.8 - .3*1 = .26 > item 3's 0
    assert rerank_mmr(np.arange(4), scores, cats, 2, 0.3).tolist() == [0, 1]
    # at 0.5: item 1 gains .5*.8 - .5 = -.1 < item 3's 0
    assert rerank_mmr(np.arange(4), scores, cats, 2, 0.5).tolist() == [0, 3]


def test_categories_grow_smoothly_with_the_weight():
    rng = np.random.default_rng(3)
    scores = np.sort(rng.random(60))[::-1]
    cats = np.where(np.arange(60) < 40, "big", rng.choice(list("abcdefgh"), 60))
    counts = [len(set(cats[rerank_mmr(np.arange(60), scores, cats, 10, w)])) for w in (0, 0.25, 0.5, 0.75, 1)]
    assert counts == sorted(counts)
    assert counts[0] == 1 and counts[-1] == 9


def test_k_larger_than_pool_and_empty_pool():
    assert rerank_mmr([7, 8], [0.1, 0.2], ["a", "b"], 5, 0.5).tolist() == [1, 0]
    assert rerank_mmr([], [], [], 5, 0.5).tolist() == []


def test_bad_inputs_say_what_to_fix():
    with pytest.raises(ValueError, match="between 0 and 1"):
        rerank_mmr([1], [0.1], ["a"], 1, 1.5)
    with pytest.raises(ValueError, match="same length"):
        rerank_mmr([1, 2], [0.1], ["a", "b"], 1, 0.5)


def test_intra_list_diversity_known_answers():
    assert intra_list_diversity(["A", "A", "B", "B"]) == pytest.approx(1 - 2 / 6)
    assert intra_list_diversity(["A", "B", "C"]) == 1.0
    assert intra_list_diversity(["A", "A"]) == 0.0
    assert intra_list_diversity(["A"]) == 0.0


def test_intra_list_diversity_of_a_list_is_the_evaluations_metric():
    """The served list's figure (counted per category) equals the evaluation's pairwise one on the same list."""
    from recsys.metrics import intra_list_diversity as pairwise
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 25):
        for _ in range(20):
            cats = rng.integers(0, 4, n)
            assert intra_list_diversity(cats) == pytest.approx(pairwise(np.arange(n)[None], cats, n)[0], abs=1e-12)
    assert intra_list_diversity(np.array([7, 7, 7])) == 0.0 and intra_list_diversity([None, "a", None]) == pytest.approx(2 / 3)


def test_category_coverage_known_answers():
    assert category_coverage(["A", "B"], ["A", "B", "C", "C"]) == pytest.approx(2 / 3)
    assert category_coverage(["A", "A", "B", "C"]) == pytest.approx(3 / 4)
    assert category_coverage([], ["A"]) == 0.0


def test_category_keys_split_unknown_codes_by_category_id():
    cat = pd.DataFrame({"category_code": ["a.b", "unknown_category", "unknown_category", "a.b"],
                        "category_id": [1, 2, 3, 1]})
    keys = S.category_keys(cat)
    assert keys[0] == keys[3] and len(set(keys.tolist())) == 3
