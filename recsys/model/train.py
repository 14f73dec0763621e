"""Training the two-tower model (in-batch sampled softmax) and the ``model`` build stage.

Loss: in-batch sampled softmax over the batch's target items plus uniformly drawn extra negatives (mixed
negative sampling), logits divided by a temperature, corrected by log of each column's expected sampling count
(logQ, so popular items are not over-penalised), accidental hits (the same item as another row's target)
masked. Targets are weighted by event type (purchase > cart > view). Early stopping on recall@10 of the last
``val_fraction`` of the window, then ``refit_epochs`` over every target so the freshest days are learnt too.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recsys import metrics as M
from recsys import schema as S
from recsys.artifacts import Progress, no_progress
from recsys.ingest.interactions import Interactions
from recsys.model.features import Sequences, behaviour_features, build_sequences, encode_items, gather_history
from recsys.model.towers import SPARSE_FEATURE, TwoTowerConfig, TwoTowerModel
from recsys.ranking import top_k

log = logging.getLogger(__name__)

EVAL_K = 10


def encode_users(model: TwoTowerModel, seq: Sequences, users: np.ndarray, now: int) -> np.ndarray:
    """User vectors from each user's whole history as of ``now`` (seconds): (B, dim)."""
    users = np.asarray(users, dtype=np.int64)
    return encode_positions(model, seq, seq.offsets[users + 1], np.full(len(users), now, np.int64), users)


@dataclass
class _Data:
    """Training examples: every position whose history (ending at ``ends``) is not empty."""
    seq: Sequences
    user: np.ndarray     # (M,) user code of each position
    ends: np.ndarray     # (M,) exclusive end of each position's history (redrawn per epoch in "mixed" mode)
    targets: np.ndarray  # positions used as targets
    mode: str

    @classmethod
    def of(cls, seq: Sequences, mode: str) -> "_Data":
        user = seq.user_of()
        ends = seq.history_ends("next" if mode == "mixed" else mode)
        return cls(seq, user, ends, np.flatnonzero(ends > seq.offsets[user]), mode)

    def redraw(self, rng: np.random.Generator, share: float = 0.5) -> None:
        """"mixed": each target's history ends before its session (prob. ``share``) or right before it."""
        if self.mode != "mixed":
            return
        pos = np.arange(len(self.seq.item))
        sess = self.seq.history_ends("session")
        use = (rng.random(len(pos)) < share) & (sess > self.seq.offsets[self.user])
        self.ends = np.where(use, sess, pos)

    def history(self, pos: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
        """Histories of target positions, trimmed to the longest in the batch; plus behaviour features."""
        user = self.user[pos]
        # histories are right-aligned: gather only as many columns as the batch's longest history
        width = int(np.clip((self.ends[pos] - self.seq.offsets[user]).max(initial=1), 1, length))
        items, events, ts, mask = gather_history(self.seq, self.ends[pos], width, user)
        return items, events, mask, behaviour_features(events, ts, mask, self.seq.ts[pos], length)


def encode_positions(model: TwoTowerModel, seq: Sequences, pos: np.ndarray, ref_ts: np.ndarray,
                     user: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
    """User vectors from the histories before positions ``pos`` (B,), as of times ``ref_ts``: (B, dim)."""
    out = []
    with torch.no_grad():
        for s in range(0, len(pos), chunk):
            p, r = pos[s:s + chunk], ref_ts[s:s + chunk]
            u = None if user is None else user[s:s + chunk]
            items, events, ts, mask = gather_history(seq, p, model.config.history_len, u)
            beh = behaviour_features(events, ts, mask, r)
            out.append(model.user_vectors(torch.from_numpy(items), torch.from_numpy(events.astype(np.int64)),
                                          torch.from_numpy(mask), torch.from_numpy(beh)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.dim), np.float32)


def top_k_by_inner_product(user_vecs: np.ndarray, item_vecs: np.ndarray, k: int, chunk: int = 512) -> np.ndarray:
    """The top-k item codes per user by inner product, best first (:func:`recsys.ranking.top_k`): (B, k)."""
    k = min(k, len(item_vecs))
    out = [top_k(user_vecs[s:s + chunk] @ item_vecs.T, k)[0] for s in range(0, len(user_vecs), chunk)]
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def _mean_recall(pred: np.ndarray, truth: list[np.ndarray], k: int) -> float:
    """Mean over users of |top-k ∩ truth| / min(k, |truth|) (:func:`recsys.metrics.recall_at_k`, capped): 1 is
    reachable by every user, so a validation of heavy buyers is not bounded by k / |truth|."""
    return float(M.recall_at_k(pred, truth, k, capped=True).mean()) if truth else float("nan")


class _Validation:
    """Users active both before and after the cut: histories before it, items after it."""

    def __init__(self, seq: Sequences, cut: int, max_users: int, rng: np.random.Generator):
        user = seq.user_of()
        after = seq.ts >= cut
        first_after = np.full(len(seq.offsets) - 1, -1, np.int64)
        idx = np.flatnonzero(after)[::-1]
        first_after[user[idx]] = idx  # reversed, so the earliest position wins
        ok = np.flatnonzero((first_after >= 0) & (first_after > seq.offsets[:-1]))
        if len(ok) > max_users:
            ok = np.sort(rng.choice(ok, max_users, replace=False))
        self.pos = first_after[ok]
        self.ref_ts = np.full(len(ok), cut, np.int64)
        self.truth = [np.unique(seq.item[self.pos[i]:seq.offsets[u + 1]]) for i, u in enumerate(ok)]

    def __len__(self) -> int:
        return len(self.pos)

    def recall(self, model: TwoTowerModel, seq: Sequences, k: int = EVAL_K) -> float:
        users = encode_positions(model, seq, self.pos, self.ref_ts)
        return _mean_recall(top_k_by_inner_product(users, model.all_item_vectors(), k), self.truth, k)


class _Optimizer:
    """Adam for the dense parameters; lazy Adam for the id table: only the rows a step touched move (the
    update of ``torch.optim.SparseAdam``, done with row gathers, which is several times faster on CPU)."""

    def __init__(self, model: TwoTowerModel, cfg: TwoTowerConfig, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        sparse_name = f"emb.{SPARSE_FEATURE}.weight"
        named = dict(model.named_parameters())
        self.dense = torch.optim.Adam([p for n, p in named.items() if n != sparse_name], lr=cfg.lr, betas=betas,
                                      eps=eps, weight_decay=cfg.weight_decay, foreach=True)
        self.table = named[sparse_name]
        self.m, self.v = torch.zeros_like(self.table), torch.zeros_like(self.table)
        self.lr, self.betas, self.eps, self.t = cfg.lr, betas, eps, 0

    def zero_grad(self) -> None:
        self.dense.zero_grad()
        self.table.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.dense.step()
        if self.table.grad is None:
            return
        g = self.table.grad.coalesce()
        idx, val = g.indices()[0], g.values()
        self.t += 1
        b1, b2 = self.betas
        m = self.m.index_select(0, idx).mul_(b1).add_(val, alpha=1 - b1)
        v = self.v.index_select(0, idx).mul_(b2).addcmul_(val, val, value=1 - b2)
        self.m.index_copy_(0, idx, m)
        self.v.index_copy_(0, idx, v)
        denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
        self.table.index_add_(0, idx, m.div_(denom), alpha=-self.lr / (1 - b1 ** self.t))


def _step(model: TwoTowerModel, opt: _Optimizer, data: _Data, pos: np.ndarray,
          logq: torch.Tensor, weights: np.ndarray, rng: np.random.Generator) -> float:
    """One optimiser step of the corrected, mixed-negative sampled softmax; returns the loss.

    Columns are the batch's distinct target items (so no row meets its own item as a negative) then the uniform
    negatives; a uniform negative that is a row's own target is masked for that row."""
    cfg = model.config
    items, events, mask, beh = data.history(pos, cfg.history_len)
    tgt = data.seq.item[pos]
    cols, label = np.unique(tgt, return_inverse=True)
    n_items = model.features.shape[1]
    m = min(cfg.uniform_negatives, n_items)
    neg = rng.integers(0, n_items, m)
    u, v = model.training_vectors(torch.from_numpy(items), torch.from_numpy(events.astype(np.int64)),
                                  torch.from_numpy(mask), torch.from_numpy(beh),
                                  torch.from_numpy(np.concatenate([cols, neg])), cfg.id_dropout)
    b = len(pos)
    # logQ: the log-probability that each column's item is in the batch at all (columns are distinct items)
    q = logq[torch.from_numpy(cols)].double().exp()
    in_batch = torch.log(-torch.expm1(b * torch.log1p(-q.clamp(max=1 - 1e-12)))).float()
    correction = torch.cat([in_batch, torch.full((m,), float(np.log(max(m, 1) / n_items)))])
    logits = (u / cfg.temperature) @ v.T - correction[None, :]  # (B, C + M)
    hit = neg[None, :] == tgt[:, None]
    if hit.any():  # in place on the negatives' block only (a finite fill keeps the softmax on its fast path)
        logits[:, len(cols):].masked_fill_(torch.from_numpy(hit), -1e9)
    w = torch.from_numpy(weights)
    loss = (F.cross_entropy(logits, torch.from_numpy(label), reduction="none") * w).sum() / w.sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def _batches(data: _Data, targets: np.ndarray, bs: int, length: int, cap: int, rng: np.random.Generator) -> list:
    """Random batches of targets with similar history lengths (most histories are far shorter than ``length``,
    so bucketing lets each batch trim its padding); the batch order is shuffled."""
    data.redraw(rng)
    order = rng.permutation(targets)
    order = order[:cap]  # an epoch is at most ``cap`` random targets: bounded time on any store
    hist = np.minimum(data.ends[order] - data.seq.offsets[data.user[order]], length)
    bucket = np.searchsorted(np.array([2, 4, 8, 16, 32]), hist, "right")
    order = order[np.argsort(bucket, kind="stable")]
    batches = [order[s:s + bs] for s in range(0, len(order), bs)]
    batches = [b for b in batches if len(b) >= 2]
    return [batches[i] for i in rng.permutation(len(batches))]


def _epoch(model, opt, data, targets, weights_table, rng, deadline, progress, label,
           epoch_size: int) -> tuple[float, int]:
    """One pass over ``targets`` in random order; stops early at ``deadline``. Returns (mean loss, steps)."""
    cfg = model.config
    seq = data.seq
    counts = np.bincount(seq.item[targets], minlength=model.features.shape[1]).astype(np.float64)
    logq = torch.from_numpy(np.log(np.maximum(counts, 1.0) / max(len(targets), 1))).float()
    n = min(len(targets), epoch_size)
    bs = max(2, min(cfg.batch_size, int(np.ceil(n / cfg.min_steps_per_epoch))))
    losses = []
    for s, pos in enumerate(_batches(data, targets, bs, cfg.history_len, n, rng)):
        losses.append(_step(model, opt, data, pos, logq, weights_table[seq.event[pos]], rng))
        if len(losses) % 20 == 0:
            progress(min(s * bs / n, 1.0), f"{label}: loss {np.mean(losses[-20:]):.3f}")
        if time.monotonic() > deadline:
            break
    return (float(np.mean(losses)) if losses else float("nan")), len(losses)


def train_two_tower(train: Interactions, config: TwoTowerConfig | None = None,
                    progress: Progress = no_progress) -> tuple[TwoTowerModel, dict[str, Any]]:
    """Train on one Interactions window; returns (model in eval mode with item features attached, report)."""
    cfg = replace(config or TwoTowerConfig())
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        return _train(train, cfg, progress)
    finally:
        torch.set_num_threads(threads)


def _train(train: Interactions, cfg: TwoTowerConfig, progress: Progress) -> tuple[TwoTowerModel, dict[str, Any]]:
    """One seeded run: the helpers draw from torch's generator and ``rng`` in this order, so keep it."""
    t_start = time.monotonic()
    seq, data = _training_data(train, cfg)
    targets = data.targets
    deadline = t_start + cfg.max_seconds
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    trained = np.bincount(seq.item, minlength=train.n_items) > 0
    model = _new_model(train, trained, cfg)
    opt = _Optimizer(model, cfg)
    wt = np.array([S.EVENT_WEIGHTS[t] for t in S.EVENT_TYPES], np.float32)
    wt = wt / wt[:3].mean()
    fit_targets, val = _validation_split(seq, targets, cfg, rng)
    epochs, epoch_size = _epoch_plan(cfg, len(targets), len(fit_targets))

    def run_epoch(epoch_targets: np.ndarray, frac: Progress, label: str) -> tuple[float, int]:
        return _epoch(model, opt, data, epoch_targets, wt, rng, deadline, frac, label, epoch_size)
    history, best, steps = _early_stopped_epochs(run_epoch, model, seq, fit_targets, val, epochs, deadline, progress)
    refits = cfg.refit_epochs if val is not None and time.monotonic() < deadline else 0
    steps += _refit_epochs(run_epoch, targets, refits, progress)
    model.eval()
    report = _report(train, seq, targets, fit_targets, val, history, best, steps, epochs, trained, t_start,
                     deadline)
    progress(1.0, f"trained: val recall@10 {report['val_recall@10']}")
    return model, report


def _training_data(train: Interactions, cfg: TwoTowerConfig) -> tuple[Sequences, _Data]:
    """The window's sequences and its training examples in ``cfg.history_mode`` ("next" when that mode has none)."""
    seq = build_sequences(train)
    data = _Data.of(seq, cfg.history_mode)
    if len(data.targets) == 0 and cfg.history_mode != "next":
        data = _Data.of(seq, "next")  # nobody came back for a second session: learn from within sessions
    if len(data.targets) == 0:
        raise ValueError("the training window has no user with two or more interactions; "
                         "the two-tower model needs histories (use a longer window)")
    return seq, data


def _new_model(train: Interactions, trained: np.ndarray, cfg: TwoTowerConfig) -> TwoTowerModel:
    """A freshly initialised model (from torch's seeded generator) in training mode, with the catalog's item
    features attached (``trained``: the items seen in training; the others are cold)."""
    feats = encode_items(train.catalog, trained, cfg.n_price_buckets)
    cfg.vocab = feats.sizes()
    model = TwoTowerModel(cfg)
    model.set_item_features(feats)
    model.train()
    return model


def _validation_split(seq: Sequences, targets: np.ndarray, cfg: TwoTowerConfig, rng: np.random.Generator
                      ) -> tuple[np.ndarray, _Validation | None]:
    """(the targets to fit, the validation users or None): the last ``val_fraction`` of the window validates when
    it and the rest each hold at least 10 users / targets; otherwise every target is fitted, without validation."""
    t0, t1 = int(seq.ts.min()), int(seq.ts.max())
    cut = int(t1 - cfg.val_fraction * (t1 - t0))
    fit_targets = targets[seq.ts[targets] < cut]
    val = _Validation(seq, cut, cfg.val_users, rng) if cfg.val_fraction > 0 else None
    use_val = val is not None and len(val) >= 10 and len(fit_targets) >= 10
    if not use_val:
        fit_targets = targets
    return fit_targets, val if use_val else None


def _epoch_plan(cfg: TwoTowerConfig, n_targets: int, n_fit: int) -> tuple[int, int]:
    """(epochs, examples per epoch): a budget of ``budget_factor`` passes over the targets, within the bounds."""
    total = np.clip(cfg.budget_factor * n_targets, cfg.min_total_examples, cfg.max_total_examples)
    epoch_size = int(min(n_fit, max(cfg.epoch_examples, np.ceil(total / cfg.max_epochs))))
    epochs = int(min(cfg.max_epochs, max(1, round(total / epoch_size))))
    return epochs, epoch_size


def _early_stopped_epochs(run_epoch, model: TwoTowerModel, seq: Sequences, fit_targets: np.ndarray,
                          val: _Validation | None, epochs: int, deadline: float, progress: Progress
                          ) -> tuple[list[dict[str, float]], float, int]:
    """Up to ``epochs`` epochs (``run_epoch``: ``_train``'s) over the fit targets, early-stopped on the
    validation users' recall (when there are any) and at the deadline; the model is left at its best epoch.
    Returns (history, best recall, steps)."""
    cfg = model.config
    history: list[dict[str, float]] = []
    best, best_state, bad, steps = -1.0, None, 0, 0
    for epoch in range(epochs):
        frac = lambda f, m, e=epoch: progress(min(0.95, (e + f) / (epochs + cfg.refit_epochs)), m)
        loss, n = run_epoch(fit_targets, frac, f"epoch {epoch + 1}")
        steps += n
        rec = val.recall(model, seq) if val is not None else float("nan")
        history.append({"epoch": epoch + 1, "loss": round(loss, 4), "val_recall@10": round(rec, 4)})
        log.info("epoch %d loss %.4f val recall@10 %.4f", epoch + 1, loss, rec)
        if val is not None:  # keep the best epoch; a plateau (gains under min_improvement) counts towards patience
            bad = 0 if rec > best * (1 + cfg.min_improvement) else bad + 1
            if rec > best:
                best, best_state = rec, copy.deepcopy(model.state_dict())
        if (val is not None and bad >= cfg.patience) or time.monotonic() > deadline:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, best, steps


def _refit_epochs(run_epoch, targets: np.ndarray, refits: int, progress: Progress) -> int:
    """``refits`` epochs over every target (the validated days too) after early stopping; returns the steps."""
    steps = 0
    for r in range(refits):
        frac = lambda f, m: progress(0.95, m)
        _, n = run_epoch(targets, frac, f"refit {r + 1}")
        steps += n
    return steps


def _report(train: Interactions, seq: Sequences, targets: np.ndarray, fit_targets: np.ndarray,
            val: _Validation | None, history: list, best: float, steps: int, epochs: int, trained: np.ndarray,
            t_start: float, deadline: float) -> dict[str, Any]:
    """The training report: examples, epochs, validation recall against popularity's, time and threads."""
    use_val = val is not None
    pop = np.argsort(-np.bincount(seq.item[fit_targets], minlength=train.n_items), kind="stable")[:EVAL_K]
    return {
        "examples": int(len(targets)), "fit_examples": int(len(fit_targets)), "steps": steps,
        "epochs": len(history), "history": history, "val_users": int(len(val)) if use_val else 0,
        "val_recall@10": round(best, 4) if use_val else None,
        "popularity_val_recall@10": round(_mean_recall(np.tile(pop, (len(val), 1)), val.truth, EVAL_K), 4)
        if use_val else None,
        "train_seconds": round(time.monotonic() - t_start, 2), "planned_epochs": epochs,
        "hit_time_limit": time.monotonic() > deadline,
        "cold_items": int((~trained).sum()), "threads": torch.get_num_threads(),
    }


def holdout_report(model: TwoTowerModel, inter: Interactions, cut: int, k: int = EVAL_K) -> dict[str, Any]:
    """Recall@k on the held-out days: users active before and after ``cut``, histories before it."""
    seq = build_sequences(inter)
    val = _Validation(seq, cut, 5000, np.random.default_rng(model.config.seed))
    if len(val) == 0:
        return {"users": 0, "note": "no user is active both before and after the cut"}
    before = seq.item[seq.ts < cut]
    pop = np.argsort(-np.bincount(before, minlength=inter.n_items), kind="stable")[:k]
    return {"users": len(val), "cut_ts": cut, f"recall@{k}": round(val.recall(model, seq, k), 4),
            f"popularity_recall@{k}": round(_mean_recall(np.tile(pop, (len(val), 1)), val.truth, k), 4)}
