"""MF on quantity with MSE: the original Flask project's PyTorch model (user and item embeddings, dot product).

The original trained on (customer, product, quantity) rows. The canonical event table has no quantity, so the
quantity of a (user, item) pair is its summed event weights (purchase 5, cart 3, view 1; on a purchases-only store
such as UCI Online Retail this is 5 x the number of invoice lines), regressed as log1p(quantity) with biases.
Only positives would teach the model that every pair scores high, so ``negatives`` uniformly sampled unseen
pairs per positive are added with quantity 0 (``negatives=0`` is the original behaviour). Epochs and the
positives each epoch sees are bounded (sparse Adam updates only the rows a batch touches).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recsys.ingest.interactions import Interactions
from recsys.recommenders.base import Recommendations
from recsys.recommenders.scoring import item_vector_neighbours, user_item_matrix
from recsys.recommenders._torch import PairsRecommender, positive_pairs


class MFNet(nn.Module):
    """pred(u, i) = <p_u, q_i> + b_u + b_i + mu."""

    def __init__(self, n_users: int, n_items: int, factors: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, factors, sparse=True)
        self.item = nn.Embedding(n_items, factors, sparse=True)
        self.user_bias = nn.Embedding(n_users, 1, sparse=True)
        self.item_bias = nn.Embedding(n_items, 1, sparse=True)
        self.mu = nn.Parameter(torch.zeros(1))
        for e in (self.user, self.item):
            nn.init.normal_(e.weight, std=0.05)
        for e in (self.user_bias, self.item_bias):
            nn.init.zeros_(e.weight)

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:  # (B,), (B,) -> (B,)
        return ((self.user(u) * self.item(i)).sum(1) + self.user_bias(u).squeeze(1)
                + self.item_bias(i).squeeze(1) + self.mu)


class MFMSERecommender(PairsRecommender):
    """Embeddings trained by MSE on log1p(quantity), sparse Adam, bounded epochs and positives per epoch."""

    name = "mf_mse"

    def __init__(self, factors: int = 32, epochs: int = 4, batch_size: int = 16384, lr: float = 0.03,
                 negatives: int = 1, max_positives: int = 2_000_000, seed: int = 0) -> None:
        self.factors, self.epochs, self.batch_size, self.lr = factors, epochs, batch_size, lr
        self.negatives, self.max_positives, self.seed = negatives, max_positives, seed

    def _make_net(self, train: Interactions) -> nn.Module:
        return MFNet(train.n_users, train.n_items, self.factors)

    def _targets(self, train: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observed quantities (summed event weights) as log1p targets."""
        q = user_item_matrix(train)
        u_pos, i_pos = positive_pairs(q)
        return u_pos, i_pos, np.log1p(np.asarray(q[u_pos, i_pos]).ravel()).astype(np.float32)

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(pred, target)

    def _trained(self, train: Interactions) -> None:
        with torch.no_grad():
            self.user_factors = torch.cat([self.net.user.weight, self.net.user_bias.weight], 1).numpy()
            self.item_factors = torch.cat([self.net.item.weight, torch.ones(train.n_items, 1)], 1).numpy()
            self.item_bias = self.net.item_bias.weight.squeeze(1).numpy()

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        s = self.user_factors[user_codes] @ self.item_factors.T + self.item_bias[None, :]
        known = np.diff(self._seen.indptr)[user_codes] > 0
        s[~known] = -np.inf
        return s.astype(np.float32)

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """Nearest items by cosine of their embeddings."""
        return item_vector_neighbours(self.item_factors[:, :-1], int(item_code), k)
