"""NCF: the original analysis's MLP over concatenated user and item embeddings, BCE with negative sampling.

logit(u, i) = MLP([e_u ; e_i]). Scoring the full catalog splits the first layer, W [e_u ; e_i] = W_u e_u + W_i e_i,
so the item half is computed once and each user costs one broadcast add plus the small remaining layers.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recsys.ingest.interactions import Interactions
from recsys.recommenders.base import Recommendations
from recsys.recommenders.scoring import item_vector_neighbours
from recsys.recommenders._torch import PairsRecommender, positive_pairs, single_thread

USER_CHUNK = 8  # (chunk, n_items, hidden) stays in cache: 2-3x faster than 64 users at once


class NCFNet(nn.Module):
    """Embeddings -> concat -> Linear/ReLU stack -> one logit."""

    def __init__(self, n_users: int, n_items: int, dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim, sparse=True)
        self.item = nn.Embedding(n_items, dim, sparse=True)
        nn.init.normal_(self.user.weight, std=0.05)
        nn.init.normal_(self.item.weight, std=0.05)
        sizes = (2 * dim, *hidden)
        self.first = nn.Linear(sizes[0], sizes[1])
        rest: list[nn.Module] = []
        for a, b in zip(sizes[1:-1], sizes[2:]):
            rest += [nn.ReLU(), nn.Linear(a, b)]
        self.rest = nn.Sequential(*rest, nn.ReLU(), nn.Linear(sizes[-1], 1))

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:  # (B,), (B,) -> (B,)
        return self.rest(self.first(torch.cat([self.user(u), self.item(i)], 1))).squeeze(1)

    @torch.no_grad()
    def score_all(self, u: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, n_items)
        d = self.user.embedding_dim
        w_u, w_i = self.first.weight[:, :d], self.first.weight[:, d:]
        hu = self.user(u) @ w_u.T + self.first.bias  # (B, h)
        hi = self.item.weight @ w_i.T                 # (I, h)
        return self.rest(hu[:, None, :] + hi[None, :, :]).squeeze(2)


class NCFRecommender(PairsRecommender):
    """MLP recommender trained with binary cross-entropy on observed pairs vs sampled items (at most
    ``max_positives`` pairs an epoch; sparse Adam for the embeddings)."""

    name = "ncf"

    def __init__(self, dim: int = 32, hidden: tuple[int, ...] = (32, 16), negatives: int = 4, epochs: int = 2,
                 batch_size: int = 16384, lr: float = 0.01, max_positives: int = 1_000_000, seed: int = 0) -> None:
        self.dim, self.hidden, self.negatives, self.epochs = dim, tuple(hidden), negatives, epochs
        self.batch_size, self.lr, self.max_positives, self.seed = batch_size, lr, max_positives, seed

    def _make_net(self, train: Interactions) -> nn.Module:
        return NCFNet(train.n_users, train.n_items, self.dim, self.hidden)

    def _targets(self, train: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every observed pair, target 1 (sampled items get 0)."""
        u_pos, i_pos = positive_pairs(self._seen)
        return u_pos, i_pos, np.ones(len(u_pos), np.float32)

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(pred, target)

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        out = np.empty((len(user_codes), self.n_items), np.float32)
        with single_thread():
            for s in range(0, len(user_codes), USER_CHUNK):
                chunk = torch.from_numpy(np.asarray(user_codes[s:s + USER_CHUNK], np.int64))
                out[s:s + USER_CHUNK] = self.net.score_all(chunk).numpy()
        known = np.diff(self._seen.indptr)[user_codes] > 0
        out[~known] = -np.inf
        return out

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """Nearest items by cosine of their embeddings."""
        return item_vector_neighbours(self.net.item.weight.detach().numpy(), int(item_code), k)
