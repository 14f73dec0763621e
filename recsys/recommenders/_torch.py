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
