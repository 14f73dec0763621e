"""Helpers shared by the PyTorch baselines: training pairs with sampled negatives, seeded and bounded."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from recsys.ingest.interactions import Interactions
from recsys.recommenders.scoring import ScoringRecommender


def positive_pairs(seen: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) codes of every observed pair of a CSR matrix."""
    coo = seen.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64)


def sample_negatives(users: np.ndarray, n_items: int, per_positive: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniformly drawn items for each positive's user (an accidental positive is rare and left as noise)."""
    u = np.repeat(users, per_positive)
    return u, rng.integers(0, n_items, size=len(u))


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: small models gain nothing from two, and a busy machine makes them 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def optimizers(net: torch.nn.Module, lr: float) -> list[torch.optim.Optimizer]:
    """Lazy (sparse) Adam for the embedding tables, Adam for the rest. A dense Adam step touches every row of
    every table: at October size (3M users) that was 1.5 s a step against 0.06 s for the touched rows only."""
    sparse = [p for m in net.modules() if isinstance(m, torch.nn.Embedding) and m.sparse for p in m.parameters()]
    ids = {id(p) for p in sparse}
    dense = [p for p in net.parameters() if id(p) not in ids]
    return [torch.optim.SparseAdam(sparse, lr=lr)] + ([torch.optim.Adam(dense, lr=lr)] if dense else [])


def train_on_pairs(net: torch.nn.Module, opts: list[torch.optim.Optimizer], loss_fn, u_pos: np.ndarray,
                   i_pos: np.ndarray, y_pos: np.ndarray, *, n_items: int, negatives: int, epochs: int,
                   batch_size: int, max_positives: int, rng: np.random.Generator) -> None:
    """Epochs over the positives plus ``negatives`` fresh uniform items each (target 0), shuffled minibatches.

    An epoch sees at most ``max_positives`` positives (a fresh sample each epoch), which bounds training time on
    any store; below the cap every positive is seen every epoch."""
    for _ in range(epochs if len(u_pos) else 0):
        take = rng.choice(len(u_pos), max_positives, replace=False) if len(u_pos) > max_positives else slice(None)
        up, ip, yp = u_pos[take], i_pos[take], y_pos[take]
        u_neg, i_neg = sample_negatives(up, n_items, negatives, rng)
        u = np.concatenate([up, u_neg])
        i = np.concatenate([ip, i_neg])
        y = np.concatenate([yp, np.zeros(len(u_neg), np.float32)])
        order = rng.permutation(len(u))
        for s in range(0, len(order), batch_size):
            b = order[s:s + batch_size]
            loss = loss_fn(net(torch.from_numpy(u[b]), torch.from_numpy(i[b])), torch.from_numpy(y[b]))
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()


class PairsRecommender(ScoringRecommender):
    """A PyTorch baseline trained on (user, item, target) pairs plus sampled negatives. Subclasses give the
    network, the training targets and the loss; seeding, one torch thread, the optimisers and the bounded
    epochs are shared. Needs ``seed, lr, negatives, epochs, batch_size, max_positives`` attributes."""

    net: torch.nn.Module

    def _make_net(self, train: Interactions) -> torch.nn.Module:
        raise NotImplementedError

    def _targets(self, train: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user codes, item codes, float32 targets) of the observed pairs."""
        raise NotImplementedError

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _trained(self, train: Interactions) -> None:
        """Hook after training (e.g. export factors)."""

    def fit(self, train: Interactions) -> "PairsRecommender":
        """Train on the observed pairs and ``negatives`` sampled items each, seeded and bounded."""
        self._remember(train)
        with single_thread():
            torch.manual_seed(self.seed)
            rng = np.random.default_rng(self.seed)
            u_pos, i_pos, y_pos = self._targets(train)
            self.net = self._make_net(train)
            train_on_pairs(self.net, optimizers(self.net, self.lr), self._loss, u_pos, i_pos, y_pos,
                           n_items=train.n_items, negatives=self.negatives, epochs=self.epochs,
                           batch_size=self.batch_size, max_positives=self.max_positives, rng=rng)
            self.net.eval()
            self._trained(train)
        return self
