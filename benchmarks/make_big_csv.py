"""Write October-size demo stores for benchmarks, in bounded memory (benchmarks/data/ is git-ignored).

    python benchmarks/make_big_csv.py 1M 10M 42.4M          # -> benchmarks/data/oct-1M.csv, oct-10M.csv, ...
    python benchmarks/make_big_csv.py 42.4M --gzip --seed 7 --chunk-events 2000000
    python benchmarks/make_big_csv.py 109.9M --split-months --traffic-growth 1.0   # Oct + Nov at the real files'
                                                        # sizes: oct-109.9M-2019-10.csv (42.4M), -2019-11.csv (67.5M)

Each file is the deterministic demo store (recsys.ingest.demo.write_big_csv) with that many rows; an existing file is
kept unless --force. Prints rows, seconds, rows/s, size and peak memory per file.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.ingest.demo import DEFAULT_CHUNK_EVENTS, write_big_csv  # noqa: E402
from recsys.ingest.demo_catalog import DemoConfig  # noqa: E402

DATA = REPO / "benchmarks" / "data"


def parse_size(text: str) -> int:
    """'42.4M' -> 42_400_000, '500k' -> 500_000, '1000' -> 1000."""
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(round(float(text[:-1] if mult > 1 else text) * mult))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sizes", nargs="+", help="row counts like 1M, 10M, 42.4M, 500k")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--chunk-events", type=int, default=DEFAULT_CHUNK_EVENTS, help="rows simulated at a time")
    p.add_argument("--out-dir", type=Path, default=DATA)
    p.add_argument("--gzip", action="store_true", help="write .csv.gz instead of .csv")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--split-months", action="store_true", help="one file per calendar month (NAME-2019-10.csv, ...)")
    p.add_argument("--traffic-growth", type=float, default=DemoConfig.traffic_growth,
                   help="linear traffic growth over the 61 days (1.0 gives the real files' Oct/Nov split)")
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        events = parse_size(size)
        path = args.out_dir / f"oct-{size}.csv{'.gz' if args.gzip else ''}"
        done = sorted(args.out_dir.glob(f"oct-{size}-*.csv*")) if args.split_months else [path] * path.exists()
        if done and not args.force:
            print(f"{', '.join(map(str, done))}: exists, kept (use --force to rewrite)")
            continue
        tmp = path if args.split_months else path.with_name(".tmp-" + path.name)
        t0 = time.perf_counter()
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            if fraction - last[0] >= 0.1 or fraction >= 1.0:
                last[0] = fraction
                print(f"  {fraction:4.0%} {message} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

        stats = write_big_csv(tmp, events=events, seed=args.seed, chunk_events=args.chunk_events, progress=progress,
                              config=DemoConfig(traffic_growth=args.traffic_growth), split_months=args.split_months)
        if not args.split_months:
            tmp.replace(path)
            stats["files"] = [str(path)]
        secs = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"files": stats["files"], "rows": stats["rows"], "seconds": round(secs, 1),
                          "rows_per_s": round(stats["rows"] / secs),
                          "bytes": [Path(f).stat().st_size for f in stats["files"]],
                          "peak_rss_mb": round(peak), "users": stats["users"], "sessions": stats["sessions"],
                          "products": stats["products"], "event_shares": stats["event_shares"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
