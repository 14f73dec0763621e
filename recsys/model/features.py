"""Inputs of the two towers: item feature codes, per-user merged histories and behaviour features.

The same functions feed training and serving, so a user is represented identically in both.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.ingest.interactions import Interactions

VIEW_I, CART_I, PURCHASE_I, REMOVE_I = S.VIEW_CODE, S.CART_CODE, S.PURCHASE_CODE, S.REMOVE_CODE
N_BEHAVIOUR = 8  # length of the dense behaviour feature vector (see behaviour_features)


@dataclass
class ItemFeatures:
    """Integer feature codes of every catalog item (index 0 of every vocabulary = unknown / padding)."""
    id_slot: np.ndarray   # (I,) item code + 1 for items seen in training, 0 for cold-start items
    cat1: np.ndarray      # (I,) top category level ("electronics")
    cat2: np.ndarray      # (I,) first two levels ("electronics.audio")
    cat3: np.ndarray      # (I,) full category_code
    cat_id: np.ndarray    # (I,) raw category_id
    brand: np.ndarray     # (I,)
    price: np.ndarray     # (I,) log-price quantile bucket, 0 for a missing/zero price

    def sizes(self) -> dict[str, int]:
        """Vocabulary size of every feature (max code + 1, at least 1)."""
        return {f.name: int(getattr(self, f.name).max(initial=0)) + 1 for f in fields(self)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def save(self, path: Path) -> None:
        np.savez(path, **self.arrays())

    @classmethod
    def load(cls, path: Path) -> "ItemFeatures":
        with np.load(path) as z:
            return cls(**{f.name: z[f.name].astype(np.int64) for f in fields(cls)})


def _codes(values: pd.Series) -> np.ndarray:
    """Vocabulary codes starting at 1 (0 stays free for unknown / padding)."""
    codes, _ = pd.factorize(values.astype("string").fillna(""), sort=True)
    return codes.astype(np.int64) + 1


def encode_items(catalog: pd.DataFrame, trained: np.ndarray, n_price_buckets: int = 16) -> ItemFeatures:
    """Feature codes for each catalog row; ``trained`` marks items that get their own id embedding."""
    code = catalog[S.CATEGORY_CODE].astype("string").fillna(S.UNKNOWN_CATEGORY)
    parts = code.str.split(".")
    lvl1 = parts.str[0]
    lvl2 = parts.str[:2].str.join(".")
    price = catalog[S.PRICE].to_numpy(np.float64)
    logp = np.log1p(np.clip(np.nan_to_num(price), 0, None))
    pos = logp[price > 0]
    edges = np.quantile(pos, np.linspace(0, 1, n_price_buckets + 1)[1:-1]) if len(pos) else np.zeros(0)
    bucket = np.where(price > 0, np.searchsorted(edges, logp, "right") + 1, 0).astype(np.int64)
    ids = np.arange(len(catalog), dtype=np.int64) + 1
    return ItemFeatures(
        id_slot=np.where(np.asarray(trained, bool), ids, 0),
        cat1=_codes(lvl1), cat2=_codes(lvl2), cat3=_codes(code),
        cat_id=_codes(catalog[S.CATEGORY_ID]), brand=_codes(catalog[S.BRAND]), price=bucket)


@dataclass
class Sequences:
    """Each user's events in time order, consecutive repeats of one item merged, removes dropped (CSR)."""
    offsets: np.ndarray  # (U+1,) int64
    item: np.ndarray     # (M,) int64
    event: np.ndarray    # (M,) int8, strongest event of the run (view < cart < purchase)
    ts: np.ndarray       # (M,) int64 seconds, time of the run's last event
    session: np.ndarray  # (M,) int64 session code of the run's last event

    def user_of(self) -> np.ndarray:
        """User code of every position."""
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))

    def last(self, user: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The user's last ``length`` (item, event, ts), oldest first."""
        lo, hi = int(self.offsets[user]), int(self.offsets[user + 1])
        lo = max(lo, hi - length)
        return self.item[lo:hi], self.event[lo:hi], self.ts[lo:hi]

    def truncate(self, length: int) -> "Sequences":
        """Keep only each user's last ``length`` positions (what serving needs)."""
        user = self.user_of()
        keep = np.arange(len(self.item)) >= self.offsets[1:][user] - length
        counts = np.bincount(user[keep], minlength=len(self.offsets) - 1)
        return Sequences(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                         self.item[keep], self.event[keep], self.ts[keep], self.session[keep])

    def history_ends(self, mode: str) -> np.ndarray:
        """Exclusive end of each position's history: itself ("next": the events just before it) or the start of
        its session ("session": only earlier visits, i.e. what a returning user is shown)."""
        pos = np.arange(len(self.item))
        if mode == "next":
            return pos
        if mode != "session":
            raise ValueError(f"history_mode must be 'next' or 'session' (got {mode!r})")
        new = np.ones(len(pos), bool)
        new[1:] = (self.session[1:] != self.session[:-1])
        new[self.offsets[:-1][self.offsets[:-1] < len(pos)]] = True
        return np.maximum.accumulate(np.where(new, pos, 0)) if len(pos) else pos


def build_sequences(inter: Interactions) -> Sequences:
    """Merge the window's events into per-user sequences (every user code gets a possibly empty row).

    One permutation of the window's positions (by user; events are time-sorted, so a stable sort keeps time order
    per user), then each column gathered through it one at a time in its stored dtype (not int64 copies of every
    column, twice over: up to about 8 GB at 110M events, by arithmetic)."""
    keep = inter.event != REMOVE_I
    kept = None if keep.all() else np.flatnonzero(keep)
    order = np.argsort(inter.user if kept is None else inter.user[kept], kind="stable")
    if kept is not None:
        order = kept[order]
    del keep, kept
    user = inter.user[order]
    if len(user):
        item = inter.item[order]
        new_run = np.ones(len(user), bool)
        new_run[1:] = (user[1:] != user[:-1]) | (item[1:] != item[:-1])
        starts = np.flatnonzero(new_run)
        del new_run
        ends = np.append(starts[1:], len(user)) - 1
        user, item = user[starts], item[starts].astype(np.int64)
        event = np.maximum.reduceat(inter.event[order], starts)
        at_end = order[ends]
        del order, starts, ends
        ts, sess = inter.ts[at_end], inter.session[at_end].astype(np.int64)
    else:
        item, event, ts, sess = (np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int64),
                                 np.zeros(0, np.int64))
    counts = np.bincount(user, minlength=inter.n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Sequences(offsets, item, event.astype(np.int8, copy=False), ts.astype(np.int64, copy=False), sess)


def gather_history(seq: Sequences, pos: np.ndarray, length: int,
                   user: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """For positions ``pos`` (B,), the user's previous ``length`` positions: items, events, ts, mask (B, L).

    ``user`` names each row's user; needed when ``pos`` is one past a user's last position (history "as of now").
    """
    if user is None:
        user = np.searchsorted(seq.offsets, pos, "right") - 1
    start = seq.offsets[user]
    idx = pos[:, None] - length + np.arange(length)[None, :]  # (B, L) oldest first
    mask = idx >= start[:, None]
    idx = np.where(mask, idx, 0)
    return seq.item[idx], seq.event[idx], seq.ts[idx], mask


def pad_history(items: np.ndarray, events: np.ndarray, ts: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
    """One history (oldest first) as (1, L) arrays with a mask, keeping the most recent ``length``."""
    items, events, ts = items[-length:], events[-length:], ts[-length:]
    n = len(items)
    out_i = np.zeros((1, length), np.int64)
    out_e = np.zeros((1, length), np.int8)
    out_t = np.zeros((1, length), np.int64)
    mask = np.zeros((1, length), bool)
    if n:
        out_i[0, -n:], out_e[0, -n:], out_t[0, -n:], mask[0, -n:] = items, events, ts, True
    return out_i, out_e, out_t, mask


def behaviour_features(events: np.ndarray, ts: np.ndarray, mask: np.ndarray, ref_ts: np.ndarray,
                       length: int | None = None) -> np.ndarray:
    """(B, 8) dense features: event-type mix, history length, hour-of-day preference, weekend share, recency.

    ``length`` is the model's history length (the histories may be trimmed to fewer columns; default: all)."""
    m = mask.astype(np.float32)
    n = m.sum(1)
    denom = np.maximum(n, 1.0)
    mix = [((events == t) * m).sum(1) / denom for t in (VIEW_I, CART_I, PURCHASE_I)]
    hours = (ts % 86400) / 3600.0
    ang = hours * (2 * np.pi / 24)
    day = (ts // 86400 + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    weekend = ((day >= 5) * m).sum(1) / denom
    last = np.where(mask, ts, np.iinfo(np.int64).min).max(1)
    gap_h = np.where(n > 0, np.maximum(ref_ts - last, 0) / 3600.0, 24 * 90.0)
    feats = np.stack([
        *mix,
        np.log1p(n) / np.log1p(length or mask.shape[1]),
        (np.cos(ang) * m).sum(1) / denom,
        (np.sin(ang) * m).sum(1) / denom,
        weekend,
        np.log1p(gap_h) / np.log1p(24 * 90.0),
    ], axis=1)
    return feats.astype(np.float32)
