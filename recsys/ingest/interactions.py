"""Integer-encoded interactions and the product catalog: what every model trains on.

Built from the cleaned events with DuckDB; never the raw table in pandas at full size, only the columns a model
needs as compact numpy arrays.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import connect


@dataclass
class Interactions:
    """Events of one time window as parallel arrays, with the id maps shared by every model.

    ``user``/``item`` are codes into ``user_ids``/``item_ids`` (the raw ids); ``item_ids`` spans the whole
    catalog (items unseen in this window included) so that train and test windows share codes.
    """
    user: np.ndarray          # (N,) int32 user codes
    item: np.ndarray          # (N,) int32 item codes
    event: np.ndarray         # (N,) int8 index into schema.EVENT_TYPES
    ts: np.ndarray            # (N,) int64 seconds since epoch, UTC, sorted ascending
    session: np.ndarray       # (N,) int64 session codes
    user_ids: np.ndarray      # (U,) int64 raw user ids
    item_ids: np.ndarray      # (I,) int64 raw product ids
    catalog: pd.DataFrame = field(repr=False)  # one row per item code: product_id, category_id, category_code, brand, price

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def weights(self, event_weights: dict[str, float] | None = None) -> np.ndarray:
        """Per-event interaction weight (purchase > cart > view by default)."""
        w = event_weights or S.EVENT_WEIGHTS
        table = np.array([w.get(t, 0.0) for t in S.EVENT_TYPES], dtype=np.float32)
        return table[self.event]

    def window(self, start: int | None = None, end: int | None = None) -> "Interactions":
        """The events with start <= ts < end (seconds), sharing id maps and catalog."""
        lo = 0 if start is None else int(np.searchsorted(self.ts, start, "left"))
        hi = len(self.ts) if end is None else int(np.searchsorted(self.ts, end, "left"))
        sl = slice(lo, hi)
        return Interactions(self.user[sl], self.item[sl], self.event[sl], self.ts[sl], self.session[sl],
                            self.user_ids, self.item_ids, self.catalog)

    def of_users(self, users: np.ndarray) -> "Interactions":
        """The events of ``users`` (codes), in time order, sharing id maps and catalog: a user's own history is
        the same in both, so what is computed per user from either agrees for these users."""
        mine = np.zeros(self.n_users, bool)
        mine[np.asarray(users, np.int64)] = True
        keep = np.flatnonzero(mine[self.user])
        return Interactions(self.user[keep], self.item[keep], self.event[keep], self.ts[keep], self.session[keep],
                            self.user_ids, self.item_ids, self.catalog)

    def user_code(self, user_id: int) -> int:
        """Code of a raw user id; KeyError when the store has no such user."""
        i = int(np.searchsorted(self.user_ids, user_id))
        if i >= len(self.user_ids) or self.user_ids[i] != user_id:
            raise KeyError(f"unknown user_id {user_id}")
        return i

    def item_codes(self, product_ids) -> np.ndarray:
        """Codes of raw product ids (-1 for ids not in the catalog)."""
        pos, found = S.find_sorted(self.item_ids, np.asarray(product_ids, dtype=np.int64))
        return np.where(found, pos, -1).astype(np.int64)


def load_catalog(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per product: its category, brand and price (:func:`recsys.schema.catalog_sql`) and event counts."""
    with connect(root) as con:  # closed on the way out
        return con.execute(f"""
            WITH cat AS ({S.catalog_sql()}),
            n AS (SELECT product_id,
                         count(*) FILTER (WHERE event_type = '{S.VIEW}') AS views,
                         count(*) FILTER (WHERE event_type = '{S.CART}') AS carts,
                         count(*) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases
                  FROM events GROUP BY product_id)
            SELECT cat.*, views, carts, purchases FROM cat JOIN n USING (product_id) ORDER BY product_id
        """).df()


def load_interactions(root: str | os.PathLike | None = None) -> Interactions:
    """All cleaned events as integer-encoded arrays, sorted by time."""
    catalog = load_catalog(root)
    item_ids = catalog["product_id"].to_numpy(np.int64)
    with connect(root) as con:  # closed on the way out
        users = con.execute("SELECT DISTINCT user_id FROM events ORDER BY user_id").df()
        df = con.execute(f"""
            SELECT user_id, product_id, {S.event_code_sql()} AS ev,
                   epoch(event_time)::BIGINT AS ts, hash(user_session) AS sess
            FROM events ORDER BY event_time, user_id, product_id
        """).df()
    user_ids = users["user_id"].to_numpy(np.int64)
    user = np.searchsorted(user_ids, df["user_id"].to_numpy(np.int64)).astype(np.int32)
    item = np.searchsorted(item_ids, df["product_id"].to_numpy(np.int64)).astype(np.int32)
    sess_raw = df["sess"].to_numpy(np.uint64)
    _, session = np.unique(sess_raw, return_inverse=True)
    return Interactions(user, item, df["ev"].to_numpy(np.int8), df["ts"].to_numpy(np.int64),
                        session.astype(np.int64), user_ids, item_ids, catalog.reset_index(drop=True))
