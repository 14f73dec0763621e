"""Helpers shared by the PyTorch baselines: training pairs with sampled negatives, seeded and bounded."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch


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
