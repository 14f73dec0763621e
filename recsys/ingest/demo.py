"""The deterministic synthetic demo store: REES46-format event logs from a small simulated shop.

A world (category tree, brands, products, users with latent tastes) is drawn once from the seed; users'
sessions are then simulated in chunks of users with vectorised numpy: a browsing walk over similar items, a
view -> cart -> purchase funnel, complementary purchases (phone -> case / headphones), repeat purchases of
consumables, day/hour seasonality with November sale spikes, missing brand / category_code the way the real
files have them, and a few planted dirty rows (duplicates, rows without a session).

The same (events, seed, chunk_events, config) always gives a byte-identical file.

Modules: ``demo_catalog`` (the category tree, seasonality, ``DemoConfig``), ``demo_world`` (``build_world``: the
catalog and the users drawn from the seed), ``demo_sessions`` (the sessions simulated chunk by chunk) and this one
(the rows as REES46 CSV text, the summary, the public writers).
"""
from __future__ import annotations

import contextlib
import gzip
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys import schema as S
from recsys.artifacts import Progress, no_progress
from recsys.ingest.demo_catalog import DAYS, START, DemoConfig
from recsys.ingest.demo_sessions import BRAND_BLANK, NO_SESSION, PURCHASE, ROW, Chunk, chunk_rows, plan_chunks
from recsys.ingest.demo_world import World, build_world

log = logging.getLogger(__name__)

HEADER = (",".join(S.EVENT_COLUMNS) + "\n").encode()
DEFAULT_CHUNK_EVENTS = 2_000_000

# ---- formatting: ROW arrays -> REES46 CSV text (Arrow, no Python loop over rows) ----------------------------

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_DATES = np.frombuffer("".join(f"{START.astype('datetime64[D]') + d} " for d in range(DAYS)).encode(),
                       np.uint8).reshape(DAYS, 11)
FORMAT_BATCH = 1_000_000


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast stable hash of uint64s."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _fixed_width(mat: np.ndarray) -> pa.Array:
    """A string array from an (n, width) uint8 matrix of ASCII."""
    n, width = mat.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(mat.tobytes())])


def _time_strings(t: np.ndarray) -> pa.Array:
    """'2019-10-01 00:00:00 UTC' for seconds since START."""
    day, sod = np.divmod(t.astype(np.int64), 86400)
    mat = np.empty((len(t), 23), np.uint8)
    mat[:, :11] = _DATES[day]
    for col, v in ((11, sod // 3600), (14, sod // 60 % 60), (17, sod % 60)):
        mat[:, col] = 48 + v // 10
        mat[:, col + 1] = 48 + v % 10
    mat[:, [13, 16]] = ord(":")
    mat[:, 19:] = np.frombuffer(b" UTC", np.uint8)
    return _fixed_width(mat)


def _uuid_strings(sid: np.ndarray, seed: int) -> pa.Array:
    """A version-4-looking UUID per session id, a hash of (seed, sid)."""
    key = _mix(np.array([seed], np.uint64))
    s2 = sid.astype(np.uint64) * np.uint64(2)
    b = np.stack([_mix(s2 ^ key), _mix((s2 + np.uint64(1)) ^ key)], axis=1).view(np.uint8)  # (n, 16)
    nib = np.empty((len(sid), 32), np.uint8)
    nib[:, 0::2], nib[:, 1::2] = b >> 4, b & 15
    nib[:, 12] = 4
    nib[:, 16] = 8 | (nib[:, 16] & 3)
    hexd = _HEX[nib]
    mat = np.full((len(sid), 36), ord("-"), np.uint8)
    for a, b_, src in ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20)):
        mat[:, a:b_] = hexd[:, src:src + b_ - a]
    return _fixed_width(mat)


@dataclass
class _Strings:
    """Per-product text columns, built once per world."""
    code: pa.Array    # (P,) category_code or null
    brand: pa.Array   # (P,) brand or null
    price: pa.Array   # (2P,) '%.2f' of the regular then the sale price
    types: pa.Array

    @classmethod
    def of(cls, w: World, seed: int) -> "_Strings":
        codes = [w.cat_code[c] for c in w.prod_cat]
        brands = [w.brands[b] if b >= 0 else None for b in w.prod_brand]
        sale = np.round(w.prod_price * np.random.default_rng([seed, 2]).uniform(.75, .92, len(w.prod_price)), 2)
        prices = [f"{p:.2f}" for p in np.concatenate([w.prod_price, np.maximum(sale, .5)])]
        return cls(pa.array(codes, pa.string()), pa.array(brands, pa.string()), pa.array(prices, pa.string()),
                   pa.array(S.EVENT_TYPES, pa.string()))


def _table(w: World, txt: _Strings, rows: np.ndarray, seed: int) -> pa.Table:
    """The REES46 columns of ``rows`` as strings and int64s, in contract order."""
    item = rows["item"]
    on_sale = w.prod_promo[item] & w.day_sale[rows["t"] // 86400]
    null = pa.scalar(None, pa.string())
    brand = pc.take(txt.brand, item)
    blank = (rows["flags"] & BRAND_BLANK) > 0
    if blank.any():
        brand = pc.if_else(pa.array(blank), null, brand)
    session = _uuid_strings(rows["sid"], seed)
    no_sess = (rows["flags"] & NO_SESSION) > 0
    if no_sess.any():
        session = pc.if_else(pa.array(no_sess), null, session)
    cols = [_time_strings(rows["t"]), pc.take(txt.types, rows["ev"]), pa.array(w.prod_id[item]),
            pa.array(w.cat_id[w.prod_cat[item]]), pc.take(txt.code, item), brand,
            pc.take(txt.price, item + len(w.prod_id) * on_sale), pa.array(w.user_id[rows["user"]]), session]
    return pa.Table.from_arrays(cols, names=list(S.EVENT_COLUMNS))


def _write_rows(f, w: World, txt: _Strings, rows: np.ndarray, seed: int) -> None:
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    for i in range(0, len(rows), FORMAT_BATCH):
        buf = pa.BufferOutputStream()
        pacsv.write_csv(_table(w, txt, rows[i:i + FORMAT_BATCH], seed), buf, opts)
        f.write(buf.getvalue())


@contextlib.contextmanager
def _open_sink(path: Path) -> Iterator[Any]:
    """A binary output file; gzip (mtime 0, no name: deterministic bytes) when the name ends in .gz."""
    with open(path, "wb") as raw:
        if not path.name.endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            yield gz


# ---- summary stats -----------------------------------------------------------------------------------------

class _Stats:
    """Counts accumulated chunk by chunk (users and sessions never span chunks)."""

    def __init__(self, w: World):
        self.w = w
        self.code_missing = np.array([c is None for c in w.cat_code])
        self.rows = self.users = self.sessions = self.brand_missing = self.code_missing_rows = 0
        self.brand_sometimes = self.duplicates = self.no_session = 0
        self.events = np.zeros(4, np.int64)
        self.purchases = np.zeros(4, np.int64)
        self.products = np.zeros(len(w.prod_id), bool)

    def add(self, rows: np.ndarray, chunk: Chunk) -> None:
        w, item = self.w, rows["item"]
        self.rows += len(rows)
        self.users += len(np.unique(rows["user"]))
        self.sessions += len(np.unique(rows["sid"]))
        self.products[item] = True
        self.events += np.bincount(rows["ev"], minlength=4)
        self.purchases += np.bincount(rows["kind"][rows["ev"] == PURCHASE], minlength=4)
        blank = (rows["flags"] & BRAND_BLANK) > 0
        self.brand_missing += int(((w.prod_brand[item] < 0) | blank).sum())
        self.brand_sometimes += int(blank.sum())
        self.code_missing_rows += int(self.code_missing[w.prod_cat[item]].sum())
        self.duplicates += chunk.duplicates
        self.no_session += chunk.no_session

    def summary(self, seed: int, seconds: float) -> dict[str, Any]:
        n = max(self.rows, 1)
        seen = self.products
        return {
            "rows": self.rows, "users": self.users, "sessions": self.sessions, "products": int(seen.sum()),
            "categories": len(np.unique(self.w.prod_cat[seen])), "brands": len(np.unique(
                self.w.prod_brand[seen & (self.w.prod_brand >= 0)])),
            "event_shares": {t: round(float(c) / n, 5) for t, c in zip(S.EVENT_TYPES, self.events)},
            "missing_shares": {"brand": round(self.brand_missing / n, 5),
                               "category_code": round(self.code_missing_rows / n, 5)},
            "brand_missing_sometimes_rows": self.brand_sometimes,
            "dirty_rows": {"duplicate": self.duplicates, "no_session": self.no_session},
            "purchases": dict(zip(("browse", "complement_same_session", "complement_follow_up", "repeat"),
                                  map(int, self.purchases))),
            "period": [str(START.astype("datetime64[D]")), str(START.astype("datetime64[D]") + DAYS - 1)],
            "seed": seed, "seconds": round(seconds, 2),
        }


# ---- public API -------------------------------------------------------------------------------------------

def write_big_csv(path: Path, events: int = 42_400_000, seed: int = 7, chunk_events: int = DEFAULT_CHUNK_EVENTS,
                  progress: Progress = no_progress, *, config: DemoConfig = DemoConfig(),
                  split_months: bool = False) -> dict[str, Any]:
    """Write the demo store in bounded memory: users simulated chunk by chunk, spilled, merged day by day.

    With ``split_months`` one store is written as one file per calendar month, as the Kaggle files come:
    ``oct-110M.csv`` -> ``oct-110M-2019-10.csv``, ``oct-110M-2019-11.csv`` (each with its header, written under a
    temporary name and renamed when all are complete); the summary lists them under ``files``.
    """
    if events < 1:
        raise ValueError(f"events must be >= 1 (got {events})")
    t0 = time.perf_counter()
    path = Path(path)
    w = build_world(events, seed, config)
    txt = _Strings.of(w, seed)
    plan = plan_chunks(w, events, chunk_events, config)
    stats = _Stats(w)
    progress(0.02, f"world: {len(w.prod_id):,} products, {len(w.user_id):,} users")
    with _Sinks(path, split_months) as sinks:
        if len(plan) == 1:
            rows = chunk_rows(w, plan[0], seed, config)
            stats.add(rows, plan[0])
            progress(0.6, f"simulated {len(rows):,} rows")
            sinks.write(w, txt, rows, seed)
        else:
            _write_chunked(sinks, w, txt, plan, stats, seed, config, path.parent, progress)
    progress(1.0, f"wrote {stats.rows:,} rows")
    summary = stats.summary(seed, time.perf_counter() - t0)
    summary["files"] = sinks.files
    log.info("demo store %s: %s rows in %.1f s", path, f"{stats.rows:,}", summary["seconds"])
    return summary


def _split_suffix(name: str) -> tuple[str, str]:
    """'oct-109.9M.csv.gz' -> ('oct-109.9M', '.csv.gz'): only the file type's suffixes, not every dot."""
    for ext in (".csv.gz", ".csv", ".gz"):
        if name.lower().endswith(ext) and len(name) > len(ext):
            return name[:-len(ext)], name[-len(ext):]
    return name, ""


class _Sinks:
    """The output file, or one per calendar month (rows arrive sorted by time); temporary names until closed."""

    def __init__(self, path: Path, split_months: bool):
        self.split = split_months
        months = np.unique((START.astype("datetime64[D]") + np.arange(DAYS)).astype("datetime64[M]"))
        # seconds since START at which each month after the first begins
        self.bounds = ((months[1:].astype("datetime64[s]") - START).astype(np.int64) if split_months
                       else np.zeros(0, np.int64))
        name, ext = _split_suffix(path.name)
        self.targets = ([path.with_name(f"{name}-{m}{ext}") for m in months.astype(str)] if split_months
                        else [path])
        self.files: list[str] = []
        self._open: dict[int, tuple[Any, Path, Path]] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "_Sinks":
        return self

    def _sink(self, i: int) -> Any:
        if i not in self._open:
            target = self.targets[i]
            tmp = target.with_name(".tmp-" + target.name) if self.split else target
            f = self._stack.enter_context(_open_sink(tmp))
            f.write(HEADER)
            self._open[i] = (f, tmp, target)
        return self._open[i][0]

    def write(self, w: World, txt: "_Strings", rows: np.ndarray, seed: int) -> None:
        """Append ``rows`` (sorted by time), each to its month's file."""
        cuts = np.searchsorted(rows["t"], self.bounds)
        for i, (a, b) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, len(rows)])):
            if b > a or (i == 0 and not self.split):
                _write_rows(self._sink(i), w, txt, rows[a:b], seed)

    def __exit__(self, kind, value, tb) -> None:
        if kind is None and not self._open:
            self._sink(0)  # an empty store still gets its header
        self._stack.close()
        opened = [self._open[i] for i in sorted(self._open)]
        for _f, tmp, target in opened:
            if kind is not None:
                if self.split:
                    tmp.unlink(missing_ok=True)
            else:
                if tmp != target:
                    tmp.replace(target)
                self.files.append(str(target))


def _write_chunked(sinks: _Sinks, w: World, txt: _Strings, plan: list[Chunk], stats: _Stats, seed: int,
                   cfg: DemoConfig, scratch: Path, progress: Progress) -> None:
    """Simulate every chunk to a scratch file (sorted by time), then merge them one day at a time."""
    with tempfile.TemporaryDirectory(prefix=".demo-chunks-", dir=scratch) as tmp:
        files, day_offsets = [Path(tmp) / f"{i}.rows" for i in range(len(plan))], []
        for i, chunk in enumerate(plan):
            rows = chunk_rows(w, chunk, seed, cfg)
            stats.add(rows, chunk)
            rows.tofile(files[i])
            day_offsets.append(np.searchsorted(rows["t"], np.arange(DAYS + 1) * 86400))
            progress(0.02 + 0.58 * (i + 1) / len(plan), f"simulated chunk {i + 1}/{len(plan)}")
            del rows
        for d in range(DAYS):
            # explicit slice reads, not mmap: mapped pages would count as resident memory
            day = np.concatenate([np.fromfile(p, dtype=ROW, count=int(o[d + 1] - o[d]),
                                              offset=int(o[d]) * ROW.itemsize)
                                  for p, o in zip(files, day_offsets)])
            sinks.write(w, txt, day[np.argsort(day["t"], kind="stable")], seed)
            progress(0.6 + 0.4 * (d + 1) / DAYS, f"wrote day {d + 1}/{DAYS}")


def write_demo_csv(path: Path, events: int = 400_000, seed: int = 7, progress: Progress = no_progress, *,
                   config: DemoConfig = DemoConfig()) -> dict[str, Any]:
    """Write the demo store as a REES46 CSV (.csv or .csv.gz); returns summary stats of what was written."""
    return write_big_csv(path, events, seed, chunk_events=max(events, DEFAULT_CHUNK_EVENTS), progress=progress,
                         config=config)
