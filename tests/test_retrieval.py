"""The ranker's two-tower candidates through a FAISS index: known answers on tiny hand-made vectors."""
import faiss
import numpy as np
import scipy.sparse as sp

from recsys.model.retrieval import retrieval_index, retrieve
from recsys.model.retrieval import IndexParams, build_index

# four items on a line of scores for the query (1, 0): item 2 > item 0 > item 3 > item 1
ITEMS = np.array([[0.8, 0.6], [-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)


def _flat(vecs):
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    return index


def test_each_row_gets_its_best_items_best_first():
    q = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    r, items = retrieve(_flat(ITEMS), ITEMS, q, 2)
    assert r.tolist() == [0, 0, 1, 1]
    assert items.tolist() == [2, 0, 3, 0]


def test_seen_items_are_skipped_and_the_row_still_gets_k_unseen_items():
    q = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    seen = sp.csr_matrix(np.array([[0, 0, 5, 0], [0, 0, 0, 0]]))  # row 0 touched item 2, its best
    r, items = retrieve(_flat(ITEMS), ITEMS, q, 2, seen)
    assert r.tolist() == [0, 0, 1, 1]
    assert items.tolist() == [0, 3, 2, 0]


def test_a_row_that_touched_most_of_the_catalog_is_scanned_exactly_and_may_get_fewer():
    q = np.array([[1.0, 0.0]], np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 1, 1]]))
    r, items = retrieve(_flat(ITEMS), ITEMS, q, 2, seen)
    assert r.tolist() == [0] and items.tolist() == [1]  # only item 1 is unseen


def test_hnsw_retrieval_matches_its_own_deeper_search_and_not_the_batch():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(3000, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index, facts = build_index(vecs, IndexParams(exact_max_items=100))
    assert facts["kind"] == "hnsw_ip"
    q = vecs[:40] + 0.1 * vecs[40:80]
    seen = sp.random(40, 3000, density=0.005, format="csr", random_state=1, data_rvs=lambda n: np.ones(n))
    r, items = retrieve(index, vecs, q, 10, seen)
    assert np.bincount(r, minlength=40).tolist() == [10] * 40
    for row in (0, 7, 39):
        touched = set(seen[row].indices)
        assert not touched & set(items[r == row])
        _, deep = index.search(np.ascontiguousarray(q[row:row + 1], dtype=np.float32), 32)
        assert items[r == row].tolist() == [i for i in deep[0] if i not in touched][:10]
        r1, alone = retrieve(index, vecs, q[row:row + 1], 10, seen[row])
        assert alone.tolist() == items[r == row].tolist()


def test_the_retrieval_index_is_the_index_stage_s_for_the_same_vectors():
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(500, 8)).astype(np.float32)
    a, b = retrieval_index(vecs), build_index(vecs)[0]
    assert faiss.serialize_index(a).tobytes() == faiss.serialize_index(b).tobytes()


def test_an_exact_index_breaks_ties_to_the_lower_item_whatever_faiss_would_do():
    vecs = np.array([[0.5, 0.0], [1.0, 0.0], [0.5, 0.0], [0.5, 0.0], [-1.0, 0.0]], np.float32)  # 0, 2, 3 tie
    q = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    seen = sp.csr_matrix(np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    r, items = retrieve(_flat(vecs), vecs, q, 3, seen)
    assert r.tolist() == [0, 0, 0, 1, 1, 1]
    assert items.tolist() == [1, 0, 3, 1, 0, 2]
