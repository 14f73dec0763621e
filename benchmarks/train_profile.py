"""Where a two-tower training step's CPU time goes, on a built store (default config, one torch thread).

Trains 10 warm-up steps, times 60 (examples per second of CPU time), then runs the torch profiler over 30 more
and prints its table by self CPU time.

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/train_profile.py --artifacts /tmp/b_demo
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import profile

import recsys.twotower.train as T
from recsys import schema as S
from recsys.interactions import load_interactions
from recsys.twotower.features import build_sequences, encode_items
from recsys.twotower.model import TwoTowerConfig, TwoTowerModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--rows", type=int, default=30, help="rows of the profiler table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    inter = load_interactions(args.artifacts)
    cfg = TwoTowerConfig()
    seq = build_sequences(inter)
    data = T._Data.of(seq, cfg.history_mode)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    feats = encode_items(inter.catalog, np.bincount(seq.item, minlength=inter.n_items) > 0, cfg.n_price_buckets)
    cfg.vocab = feats.sizes()
    model = TwoTowerModel(cfg)
    model.set_item_features(feats)
    model.train()
    opt = T._Optimizer(model, cfg)
    wt = np.array([S.EVENT_WEIGHTS[t] for t in S.EVENT_TYPES], np.float32)
    wt /= wt[:3].mean()
    counts = np.bincount(seq.item[data.targets], minlength=inter.n_items).astype(np.float64)
    logq = torch.from_numpy(np.log(np.maximum(counts, 1.0) / len(data.targets))).float()
    batches = T._batches(data, data.targets, cfg.batch_size, cfg.history_len, 100 * cfg.batch_size, rng)
    if len(batches) < 100:
        raise SystemExit(f"this store gives {len(batches)} batches of {cfg.batch_size}; the profile needs 100")

    def steps(part) -> int:
        for pos in part:
            T._step(model, opt, data, pos, logq, wt[seq.event[pos]], rng)
        return sum(len(pos) for pos in part)

    steps(batches[:10])
    c = time.process_time()
    n = steps(batches[10:70])
    dt = time.process_time() - c
    print(f"{len(seq.item):,} positions, {inter.n_items:,} items: {n / dt:,.0f} examples/s of CPU, "
          f"{dt / 60 * 1000:.1f} ms per step of {cfg.batch_size}")
    with profile() as prof:
        steps(batches[70:100])
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
