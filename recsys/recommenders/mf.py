"""Matrix factorisation baselines on the implicit user-item matrix, with numpy/scipy only.

- :class:`SVDRecommender`: truncated SVD of the log-scaled event-weight matrix (PureSVD); score = u S V^T.
- :class:`ALSRecommender`: implicit-feedback ALS (Hu, Koren, Volinsky 2008) with confidence
  c = 1 + alpha * log1p(event weight), each half-step solved by a few conjugate-gradient iterations vectorised
  over all users (or items) at once, as the ``implicit`` package does, but in numpy.
Users with no training events get no recommendations (all -1).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions
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


def randomized_svd(r: sp.csr_matrix, k: int, *, oversample: int = 10, power_iters: int = 2,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k singular triplets of a sparse matrix (Halko, Martinsson, Tropp 2011), seeded."""
    rng = np.random.default_rng(seed)
    width = min(k + oversample, min(r.shape))
    q, _ = np.linalg.qr(r @ rng.standard_normal((r.shape[1], width)).astype(np.float32))
    for _ in range(power_iters):  # power iterations sharpen the spectrum; re-orthonormalise for stability
        q, _ = np.linalg.qr(r.T @ q)
        q, _ = np.linalg.qr(r @ q)
    ub, s, vt = np.linalg.svd(np.asarray((r.T @ q).T), full_matrices=False)
    return (q @ ub)[:, :k], s[:k], vt[:k]


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
        self.user_factors = (u * s).astype(np.float32)
        self.item_factors = vt.T.astype(np.float32)
        return self


class ALSRecommender(_FactorModel):
    """Implicit ALS with conjugate-gradient half-steps."""

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
        rng = np.random.default_rng(self.seed)
        f = self.factors
        x = (rng.standard_normal((c.shape[0], f)) * 0.01).astype(np.float32)
        y = (rng.standard_normal((c.shape[1], f)) * 0.01).astype(np.float32)
        ct = c.T.tocsr()
        for _ in range(self.iterations):
            x = self._solve(c, y, x)
            y = self._solve(ct, x, y)
        self.user_factors, self.item_factors = x, y
        return self

    def _solve(self, c: sp.csr_matrix, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """A few CG steps on (Y'Y + Y'(C_u - I)Y + reg I) x_u = Y' C_u p_u for every row u at once."""
        yty = y.T @ y + self.regularization * np.eye(y.shape[1], dtype=np.float32)
        rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
        cols, conf = c.indices, c.data
        y_nz = y[cols]  # (nnz, f)

        def apply(v: np.ndarray) -> np.ndarray:
            d = (conf - 1.0) * np.einsum("nf,nf->n", y_nz, v[rows])
            return v @ yty + sp.csr_matrix((d, cols, c.indptr), shape=c.shape) @ y

        b = c @ y  # sum_i c_ui y_i (p_ui = 1 on observed pairs)
        r = b - apply(x)
        p = r.copy()
        rs = np.einsum("uf,uf->u", r, r)
        for _ in range(self.cg_steps):
            ap = apply(p)
            denom = np.einsum("uf,uf->u", p, ap)
            a = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 1e-20)
            x = x + a[:, None] * p
            r = r - a[:, None] * ap
            rs_new = np.einsum("uf,uf->u", r, r)
            beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-20)
            p = r + beta[:, None] * p
            rs = rs_new
        return x.astype(np.float32)
