"""The two-tower retrieval model: an item tower over product features and a user tower over recent history.

Both towers end in an L2-normalised vector of size ``dim``; relevance is their inner product. The user tower
shares the item tower's embedding tables, so a user is literally made of the items they touched.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys.model.features import N_BEHAVIOUR, ItemFeatures


@dataclass
class TwoTowerConfig:
    """Every knob of the model and its training; saved inside the checkpoint."""
    dim: int = 64                 # output vector size of both towers
    hidden: int = 128             # MLP hidden width
    history_len: int = 50         # user history items pooled by the user tower
    history_mode: str = "mixed"   # "session": earlier visits -> this visit's items; "next": the events just
                                  # before; "mixed": half of each (returning users and new visitors alike)
    id_dim: int = 32
    feat_dim: int = 16            # embedding size of category / brand features
    price_dim: int = 8
    n_price_buckets: int = 16
    temperature: float = 0.07
    batch_size: int = 1024
    uniform_negatives: int = 256  # extra uniformly sampled negatives per batch (mixed negative sampling)
    lr: float = 3e-3
    weight_decay: float = 0.0
    id_dropout: float = 0.1       # share of training items shown without their id, to teach cold start
    max_epochs: int = 6           # validation checkpoints; training may stop earlier (``patience``)
    epoch_examples: int = 60_000  # at least this many targets per epoch, more on a big store (see below)
    min_steps_per_epoch: int = 20
    # Training length is counted in examples (deterministic): ``budget_factor`` passes over the window's
    # targets, clipped to [min_total_examples, max_total_examples], split into at most ``max_epochs`` epochs;
    # early stopping on validation ends it sooner. max_seconds is only a safety net.
    budget_factor: float = 1.0
    min_total_examples: int = 10_000
    max_total_examples: int = 4_000_000  # was 240k: large stores train longer
    max_seconds: float = 300.0
    patience: int = 2             # epochs without validation improvement before stopping
    min_improvement: float = 0.02  # relative gain in validation recall that counts as improving
    val_fraction: float = 0.1     # last share of the window's time span used for early stopping
    val_users: int = 2000
    refit_epochs: int = 1         # epochs over all targets (validation period included) after early stopping
    seed: int = 42
    threads: int = 1              # torch threads while training: 2 threads on a busy 2-core box ran 8x slower
    vocab: dict[str, int] = field(default_factory=dict)  # feature vocabulary sizes, set from the catalog

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TwoTowerConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


FEATURES = ("id_slot", "cat1", "cat2", "cat3", "cat_id", "brand", "price")
SPARSE_FEATURE = "id_slot"


class TwoTowerModel(nn.Module):
    """Item tower + user tower with shared item embedding tables."""

    def __init__(self, config: TwoTowerConfig):
        super().__init__()
        if not config.vocab:
            raise ValueError("TwoTowerConfig.vocab is empty: set it from ItemFeatures.sizes()")
        self.config = config
        dims = {"id_slot": config.id_dim, "price": config.price_dim}
        # the id table grows with the catalog: sparse gradients keep a step's cost independent of its size
        self.emb = nn.ModuleDict({f: nn.Embedding(config.vocab[f], dims.get(f, config.feat_dim),
                                                  sparse=f == SPARSE_FEATURE) for f in FEATURES})
        self.in_dim = sum(e.embedding_dim for e in self.emb.values())
        self.item_mlp = nn.Sequential(nn.Linear(self.in_dim, config.hidden), nn.ReLU(),
                                      nn.Linear(config.hidden, config.dim))
        self.user_mlp = nn.Sequential(nn.Linear(2 * self.in_dim + N_BEHAVIOUR, config.hidden), nn.ReLU(),
                                      nn.Linear(config.hidden, config.dim))
        self.event_logit = nn.Parameter(torch.tensor([0.0, 0.5, 1.0]))  # view, cart, purchase pooling weights
        self.decay = nn.Parameter(torch.tensor(-2.0))                     # softplus -> per-step recency decay
        for e in self.emb.values():
            nn.init.normal_(e.weight, std=0.05)
        self.register_buffer("features", torch.zeros((7, 0), dtype=torch.long), persistent=False)

    def set_item_features(self, feats: ItemFeatures) -> None:
        """Attach the catalog's feature codes (rows = FEATURES) so towers take item codes."""
        arr = np.stack([getattr(feats, f) for f in FEATURES]).astype(np.int64)
        self.features = torch.from_numpy(arr)

    def embed_items(self, codes: torch.Tensor) -> torch.Tensor:
        """Concatenated feature embeddings of item codes: (...,) -> (..., in_dim); the id part comes first."""
        f = self.features[:, codes]  # (7, ...)
        return torch.cat([self.emb[name](f[i]) for i, name in enumerate(FEATURES)], dim=-1)

    def _drop_ids(self, rows: torch.Tensor, id_dropout: float) -> torch.Tensor:
        """While training, show a share of items without their id (the id part becomes the unknown id's)."""
        if id_dropout <= 0 or not self.training:
            return rows
        drop = torch.rand(rows.shape[:-1]) < id_dropout
        unknown = self.emb["id_slot"](torch.zeros(1, dtype=torch.long))[0]  # a lookup keeps the gradient sparse
        ids = torch.where(drop.unsqueeze(-1), unknown, rows[..., :unknown.shape[0]])
        return torch.cat([ids, rows[..., unknown.shape[0]:]], dim=-1)

    def _item_head(self, rows: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.item_mlp(rows), dim=-1)

    def item_vectors(self, codes: torch.Tensor, id_dropout: float = 0.0) -> torch.Tensor:
        """Item tower: (B,) item codes -> (B, dim) unit vectors."""
        return self._item_head(self._drop_ids(self.embed_items(codes), id_dropout))

    def _user_head(self, table: torch.Tensor, inv: torch.Tensor, events: torch.Tensor, mask: torch.Tensor,
                   behaviour: torch.Tensor) -> torch.Tensor:
        """User tower over histories given as rows ``inv`` (B, L) of an embedded item table (U, in_dim)."""
        length = inv.shape[1]
        steps_back = torch.arange(length - 1, -1, -1, dtype=torch.float32)  # (L,) 0 = most recent
        logw = self.event_logit[events.clamp(max=2).long()] - F.softplus(self.decay) * steps_back
        logw = logw.masked_fill(~mask, -1e9)
        w = torch.softmax(logw, dim=1)  # (B, L)
        # embedding_bag sums the weighted rows without materialising a (B, L, in_dim) history tensor
        pooled = F.embedding_bag(inv, table, per_sample_weights=w, mode="sum") * mask.any(1, keepdim=True)
        last = F.embedding(inv[:, -1], table) * mask[:, -1:].float()  # (B, in_dim) histories are right-aligned
        return F.normalize(self.user_mlp(torch.cat([pooled, last, behaviour], dim=-1)), dim=-1)

    def user_vectors(self, items: torch.Tensor, events: torch.Tensor, mask: torch.Tensor,
                     behaviour: torch.Tensor) -> torch.Tensor:
        """User tower: histories (B, L) oldest first + behaviour (B, 8) -> (B, dim) unit vectors."""
        uniq, inv = torch.unique(items, return_inverse=True)  # embed each distinct history item once
        return self._user_head(self.embed_items(uniq), inv, events, mask, behaviour)

    def training_vectors(self, items: torch.Tensor, events: torch.Tensor, mask: torch.Tensor,
                         behaviour: torch.Tensor, candidates: torch.Tensor,
                         id_dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors of a batch and item vectors of its candidate items, embedding every distinct item of
        the step once (one lookup and one gradient per feature table instead of one per use)."""
        codes = torch.cat([items.reshape(-1), candidates])
        uniq, inv = torch.unique(codes, return_inverse=True)
        table = self.embed_items(uniq)
        n = items.numel()
        users = self._user_head(table, inv[:n].view(items.shape), events, mask, behaviour)
        return users, self._item_head(self._drop_ids(table[inv[n:]], id_dropout))

    @torch.no_grad()
    def all_item_vectors(self, chunk: int = 65536) -> np.ndarray:
        """Item tower over the whole catalog: (I, dim) float32, aligned to item codes."""
        was = self.training
        self.eval()
        n = self.features.shape[1]
        out = [self.item_vectors(torch.arange(s, min(s + chunk, n))).numpy() for s in range(0, n, chunk)]
        self.train(was)
        return np.concatenate(out) if out else np.zeros((0, self.config.dim), np.float32)


@dataclass
class NumpyUserTower:
    """The user tower as plain numpy arrays, for serving single users in microseconds without torch overhead."""
    item_inputs: np.ndarray  # (I, in_dim) each item's concatenated feature embeddings
    event_logit: np.ndarray  # (3,)
    decay: float             # softplus(decay): per-step recency decay
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def __call__(self, items: np.ndarray, events: np.ndarray, mask: np.ndarray, behaviour: np.ndarray) -> np.ndarray:
        """Same maths as ``TwoTowerModel.user_vectors``: (B, L) histories -> (B, dim) unit vectors."""
        length = items.shape[1]
        steps_back = np.arange(length - 1, -1, -1, dtype=np.float32)
        logw = self.event_logit[np.minimum(events, 2)] - self.decay * steps_back
        logw = np.where(mask, logw, -1e9)
        w = np.exp(logw - logw.max(1, keepdims=True)) * mask
        w = w / np.maximum(w.sum(1, keepdims=True), 1e-30)
        e = self.item_inputs[items]  # (B, L, in_dim)
        pooled = np.einsum("bl,bld->bd", w, e)
        last = e[:, -1] * mask[:, -1:]
        x = np.concatenate([pooled, last, behaviour], axis=1).astype(np.float32)
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        out = h @ self.w2 + self.b2
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@torch.no_grad()
def numpy_user_tower(model: TwoTowerModel) -> NumpyUserTower:
    """Export a trained model's user tower (and every item's feature embeddings) to numpy."""
    n = model.features.shape[1]
    inputs = np.concatenate([model.embed_items(torch.arange(s, min(s + 65536, n))).numpy()
                             for s in range(0, n, 65536)]) if n else np.zeros((0, model.in_dim), np.float32)
    lin1, lin2 = model.user_mlp[0], model.user_mlp[2]
    return NumpyUserTower(np.ascontiguousarray(inputs, np.float32), model.event_logit.numpy().copy(),
                          float(F.softplus(model.decay)), lin1.weight.numpy().T.copy(), lin1.bias.numpy().copy(),
                          lin2.weight.numpy().T.copy(), lin2.bias.numpy().copy())


def save_checkpoint(model: TwoTowerModel, path: Path) -> None:
    """state_dict + config dict (plain types only, so ``torch.load(weights_only=True)`` reads it)."""
    torch.save({"state_dict": model.state_dict(), "config": model.config.to_dict()}, path)


def load_checkpoint(path: Path, features: ItemFeatures) -> TwoTowerModel:
    """Rebuild the model from a checkpoint and attach the catalog's item features (eval mode)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = TwoTowerModel(TwoTowerConfig.from_dict(blob["config"]))
    model.load_state_dict(blob["state_dict"])
    model.set_item_features(features)
    model.eval()
    return model
