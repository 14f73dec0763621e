"""Matrix factorisation baselines on the implicit user-item matrix.

- :class:`SVDRecommender`: truncated SVD of the log-scaled event-weight matrix (PureSVD); score = u S V^T, numpy only.
- :class:`ALSRecommender`: implicit-feedback ALS (Hu, Koren, Volinsky 2008) with confidence
  c = 1 + alpha * log1p(event weight), fitted by the ``implicit`` package's CPU solver (conjugate-gradient
  half-steps, Takacs et al. 2011) on one thread, seeded, so the same inputs give the same factors.
Users with no training events get no recommendations (all -1).
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import threadpoolctl
from implicit.cpu.als import AlternatingLeastSquares

from recsys.ingest.interactions import Interactions
from recsys.recommenders.base import Recommendations
from recsys.recommenders.scoring import ScoringRecommender, item_vector_neighbours, user_item_matrix


class _FactorModel(ScoringRecommender):
    """Scores are user_factors @ item_factors.T; users without training events are left empty."""

    user_factors: np.ndarray
    item_factors: np.ndarray

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        s = self.user_factors[user_codes] @ self.item_factors.T
        known = np.diff(self._seen.indptr)[user_codes] > 0
        s[~known] = -np.inf
        return s.astype(np.float32)

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """Nearest items by cosine of their factors."""
        return item_vector_neighbours(self.item_factors, int(item_code), k)


SVD_BLOCK_ROWS = 262_144  # rows of the long side multiplied at a time


def randomized_svd(r: sp.csr_matrix, k: int, *, oversample: int = 10, power_iters: int = 2,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k singular triplets (u float32, s, vt) of a sparse matrix (Halko, Martinsson, Tropp 2011), seeded.

    The range finder works in the short dimension (the items of a user x item matrix): Q spans the top right
    singular vectors of A, found from (A'A)^(1 + power_iters) G, and the SVD of A Q comes from its small Gram
    matrix. The long side (millions of users) is only walked in row blocks, so no (users x width) matrix is ever
    orthonormalised: at Oct+Nov size (8.2M users) the former QR of A G and its power iterations took the
    evaluation past 24 GB. Memory: one block's product and u itself."""
    if r.shape[0] < r.shape[1]:
        v, s, ut = randomized_svd(r.T.tocsr(), k, oversample=oversample, power_iters=power_iters, seed=seed)
        return ut.T.astype(np.float32), s, v.T
    rng = np.random.default_rng(seed)
    m, n = r.shape
    width = min(k + oversample, min(r.shape))
    blocks = [(a, min(a + SVD_BLOCK_ROWS, m)) for a in range(0, m, SVD_BLOCK_ROWS)]

    def gram_times(q: np.ndarray) -> np.ndarray:  # A'A q, a block of rows at a time
        out = np.zeros((n, q.shape[1]))
        for a, b in blocks:
            rb = r[a:b]
            out += rb.T @ (rb @ q)
        return out

    q, _ = np.linalg.qr(gram_times(rng.standard_normal((n, width))))
    for _ in range(power_iters):  # each pass sharpens the spectrum; re-orthonormalised for stability
        q, _ = np.linalg.qr(gram_times(q))
    g = np.zeros((width, width))
    for a, b in blocks:
        c = r[a:b] @ q
        g += c.T @ c
    evals, evecs = np.linalg.eigh(g)  # (A Q)'(A Q) = W S^2 W': A ~ (A Q W / S) S (Q W)'
    top = np.argsort(-evals, kind="stable")[:k]
    s = np.sqrt(np.maximum(evals[top], 0.0))
    v = q @ evecs[:, top]
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    u = np.empty((m, len(top)), np.float32)
    for a, b in blocks:
        u[a:b] = (r[a:b] @ v) * inv
    return u, s, v.T


class SVDRecommender(_FactorModel):
    """Truncated SVD (``factors`` components, randomised) of log1p(event weights)."""

    name = "svd"

    def __init__(self, factors: int = 64, seed: int = 0) -> None:
        self.factors, self.seed = factors, seed

    def fit(self, train: Interactions) -> "SVDRecommender":
        """Factorise the training matrix."""
        self._remember(train)
        r = user_item_matrix(train)
        r.data = np.log1p(r.data)
        k = max(1, min(self.factors, min(r.shape) - 1))
        if r.nnz == 0 or min(r.shape) < 2:
            self.user_factors = np.zeros((r.shape[0], 1), np.float32)
            self.item_factors = np.zeros((r.shape[1], 1), np.float32)
            return self
        u, s, vt = randomized_svd(r, k, seed=self.seed)
        u *= s.astype(np.float32)  # in place: u is (users, k), gigabytes at full size
        self.user_factors = u
        self.item_factors = vt.T.astype(np.float32)
        return self


class ALSRecommender(_FactorModel):
    """Implicit ALS (``implicit``'s CPU conjugate-gradient solver, one thread)."""

    name = "als"

    def __init__(self, factors: int = 32, regularization: float = 0.1, alpha: float = 10.0,
                 iterations: int = 6, cg_steps: int = 3, seed: int = 0) -> None:
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.cg_steps, self.seed = iterations, cg_steps, seed

    def fit(self, train: Interactions) -> "ALSRecommender":
        """Alternate user and item solves starting from small random factors."""
        self._remember(train)
        c = user_item_matrix(train)
        c.data = (1.0 + self.alpha * np.log1p(c.data)).astype(np.float32)
        # implicit reads the matrix values as the confidences themselves (alpha=1 leaves them unscaled); it warns
        # when BLAS runs a thread pool, which also slows its solver, so BLAS gets one thread for the fit
        with threadpoolctl.threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*is configured to use \d+ threads", category=RuntimeWarning)
            als = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=1.0,
                                          iterations=self.iterations, use_cg=True, num_threads=1,
                                          random_state=self.seed)
            als.cg_steps = self.cg_steps
            als.fit(c, show_progress=False)
        self.user_factors = np.ascontiguousarray(als.user_factors, dtype=np.float32)  # (U, f)
        self.item_factors = np.ascontiguousarray(als.item_factors, dtype=np.float32)  # (I, f)
        return self
