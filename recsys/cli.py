"""``python -m recsys <command>``: a thin CLI over the library, with progress bars.

Each command is one library call; errors the user can fix (``recsys.errors``: bad input, a stage not built or
damaged) print one line and exit 2; anything else prints one line too and exits 1 (``-v`` logs the traceback).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recsys.artifacts import BUILD_COMMAND, ArtifactError, Progress, artifacts_root, diagnose
from recsys.errors import USER_ERRORS, one_line

MAX_ID = 2**63 - 1  # ids are int64 in the column contract

log = logging.getLogger(__name__)


def store_id(text: str) -> int:
    """An argparse type: a store id (int64)."""
    value = int(text)
    if not -MAX_ID - 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text} is not an id of this store (ids are 64-bit integers)")
    return value


def loaded(root: str | None, stages: tuple[str, ...], load: Callable[[], object]) -> object:
    """``load()``; when it fails on damaged or missing artifacts, an ArtifactError that names the file instead."""
    try:
        return load()
    except Exception as exc:
        why = diagnose(root, stages, exc)
        if why is None or why is exc:
            raise
        log.debug("loading %s failed", stages, exc_info=True)
        raise why from exc


@contextmanager
def progress_bar(desc: str) -> Iterator[Progress]:
    """A tqdm bar on stderr driven by a (fraction, message) progress callback."""
    from tqdm import tqdm
    with tqdm(total=1000, desc=desc, unit="‰", file=sys.stderr, leave=True,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}") as bar:
        def update(fraction: float, message: str) -> None:
            bar.n = int(max(0.0, min(1.0, fraction)) * 1000)
            bar.set_postfix_str(message[:60], refresh=False)
            bar.refresh()
        yield update


def cmd_demo(args: argparse.Namespace) -> int:
    if args.profile == "store":
        if args.format == "uci":
            args.demo_parser.error("--format uci is only written for --profile wholesale")
        from recsys.build import DEMO_EVENTS
        from recsys.ingest.demo import write_demo_csv
        events = DEMO_EVENTS if args.events is None else args.events
        with progress_bar("demo") as prog:
            stats = write_demo_csv(Path(args.out), events=events, seed=args.seed, progress=prog)
    else:
        from recsys.ingest.demo_wholesale import DEFAULT_LINES, write_wholesale_rees46, write_wholesale_uci
        write = write_wholesale_rees46 if args.format == "rees46" else write_wholesale_uci
        lines = DEFAULT_LINES if args.events is None else args.events
        with progress_bar("demo") as prog:
            stats = write(Path(args.out), lines=lines, seed=args.seed, progress=prog)
    print(json.dumps(stats, indent=2, default=str))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events, load_quality
    params = IngestParams(max_bad_fraction=args.max_bad_fraction, memory_limit=args.memory_limit)
    with progress_bar("ingest") as prog:
        manifest, built = build_events(args.artifacts, [Path(p) for p in args.paths], params,
                                       force=args.force, progress=prog)
    report = load_quality(args.artifacts)
    print(json.dumps({k: report[k] for k in ("rows_read", "rows_kept", "dropped", "filled")}, indent=2))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from recsys.build import build
    spark = None
    if args.engine == "spark":
        from recsys.spark_engine import SparkSpec
        spark = SparkSpec.parse(args.master, args.spark_conf)
    elif args.master or args.spark_conf:
        raise ValueError("--master and --spark-conf go with --engine spark")
    inputs = [p if "://" in p else Path(p) for p in args.input] if args.input else None  # URIs: Spark only
    with progress_bar("build") as prog:
        summary = build(args.artifacts, inputs, demo_events=args.events, seed=args.seed, force=args.force,
                        progress=prog, spark=spark)
    for stage, info in summary.items():
        print(f"{stage:12s} {'built' if info['built'] else 'up to date':10s} {info['duration_s']:8.1f} s")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from recsys.serving.api import serve
    from recsys.serving.loaders import SERVED_STAGES
    root = artifacts_root(args.artifacts)
    if not any((root / s).is_dir() for s in SERVED_STAGES):  # a wrong --artifacts: fail fast, not serve nothing
        raise ArtifactError(f"nothing is built in {root}; run `{BUILD_COMMAND}`")
    serve(args.artifacts, host=args.host, port=args.port, workers=args.workers)  # damaged stages: 503, not a crash
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from recsys.evaluation.stage import STAGE, evaluation_records, format_evaluation, load_evaluation
    res = loaded(args.artifacts, (STAGE,), lambda: load_evaluation(args.artifacts))
    if args.json:
        print(json.dumps(evaluation_records(res.results, targets=args.targets, exclude_seen=args.exclude_seen,
                                            every_setting=args.all)))
    else:
        print(format_evaluation(res, targets=None if args.all else args.targets,
                                exclude_seen=None if args.all else args.exclude_seen))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from recsys.serving.service import load_recommender_service
    svc = loaded(args.artifacts, ("model", "index"), lambda: load_recommender_service(args.artifacts))
    if args.user is not None:
        df = svc.recommend_for_user(args.user, args.top_n, args.diversity, exclude_purchased=args.exclude_purchased)
    else:
        df = svc.recommend_for_products(args.products, args.top_n, args.diversity)
    print(df.to_json(orient="records", indent=2) if args.json else df.to_string(index=False))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": cmd_demo, "ingest": cmd_ingest, "build": cmd_build, "serve": cmd_serve, "evaluate": cmd_evaluate,
    "recommend": cmd_recommend,
}


ARTIFACTS_HELP = "artifacts directory (default $RECSYS_ARTIFACTS or artifacts/)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recsys", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_ingest, _add_build, _add_serve, _add_evaluate, _add_recommend):
        add(sub)
    return p


# one function per subcommand: its arguments (``sub`` is the parser's subparsers action)

def _add_demo(sub: Any) -> None:
    from recsys.build import DEMO_EVENTS, DEMO_SEED
    d = sub.add_parser("demo", help="write a deterministic synthetic demo store as a CSV")
    d.add_argument("--profile", choices=("store", "wholesale"), default="store",
                   help="store: the browsing shop (views, carts, purchases); wholesale: invoices of re-bought "
                        "staples, purchases only")
    d.add_argument("--format", choices=("rees46", "uci"), default=None,
                   help="file format (default rees46 for store, uci = UCI Online Retail for wholesale)")
    d.add_argument("--events", type=int, default=None,
                   help=f"number of event rows (store, default {DEMO_EVENTS:,}) or invoice lines (wholesale, "
                        f"default 300,000)")
    d.add_argument("--seed", type=int, default=DEMO_SEED)
    d.add_argument("--out", default="demo.csv", help="output CSV path (.csv or .csv.gz)")
    d.set_defaults(demo_parser=d)


def _add_ingest(sub: Any) -> None:
    from recsys.ingest.reader import DEFAULT_MAX_BAD_FRACTION
    i = sub.add_parser("ingest", help="clean REES46 CSV files (plain, .gz, .zip) into the events stage")
    i.add_argument("paths", nargs="+", help="one or more CSV files with the same header")
    i.add_argument("--artifacts", default=None, help=ARTIFACTS_HELP)
    i.add_argument("--max-bad-fraction", type=float, default=DEFAULT_MAX_BAD_FRACTION,
                   help="fail when more than this share of rows cannot be parsed")
    i.add_argument("--memory-limit", default="3GB", help="DuckDB memory limit (spills to disk past it)")
    i.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")


def _add_build(sub: Any) -> None:
    from recsys.build import DEMO_EVENTS, DEMO_SEED
    b = sub.add_parser("build", help="run every stage (the demo store without --input)")
    b.add_argument("--input", nargs="+", default=None, help="REES46 CSV files; omit to build the demo store")
    b.add_argument("--artifacts", default=None, help=ARTIFACTS_HELP)
    b.add_argument("--events", type=int, default=DEMO_EVENTS, help="demo store size (without --input)")
    b.add_argument("--seed", type=int, default=DEMO_SEED, help="demo store seed (without --input)")
    b.add_argument("--force", action="store_true", help="rebuild every stage")
    b.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="where the events, aggregates and rules stages run (default duckdb, on this machine)")
    b.add_argument("--master", default=None,
                   help="Spark master with --engine spark: local[2] (default), spark://HOST:7077, yarn")
    b.add_argument("--spark-conf", action="append", default=None, metavar="KEY=VALUE",
                   help="a spark.* setting with --engine spark (repeatable), e.g. spark.executor.memory=8g")


def _add_serve(sub: Any) -> None:
    v = sub.add_parser("serve", help="serve the REST API (FastAPI + uvicorn) over the built artifacts")
    v.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--artifacts", default=None, help=ARTIFACTS_HELP)
    v.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")


def _add_evaluate(sub: Any) -> None:
    e = sub.add_parser("evaluate", help="print the offline evaluation of every recommender (built by `build`)")
    e.add_argument("--artifacts", default=None, help=ARTIFACTS_HELP)
    e.add_argument("--json", action="store_true",
                   help='print one JSON list of {"model","metric","k","value","ci_low","ci_high"} records')
    e.add_argument("--targets", choices=("buy", "view"), default="buy",
                   help="targets: carts + purchases (buy, default) or views + carts + purchases (view)")
    e.add_argument("--exclude-seen", action="store_true",
                   help="the setting where items seen in training are neither recommended nor targets")
    e.add_argument("--all", action="store_true",
                   help="every setting (JSON records then also carry 'targets' and 'exclude_seen')")


def _add_recommend(sub: Any) -> None:
    r = sub.add_parser("recommend", help="two-tower recommendations for a user id or a new visitor's products")
    who = r.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", type=store_id, help="a known user id")
    who.add_argument("--products", type=store_id, nargs="+", help="product ids a new visitor viewed")
    r.add_argument("--top-n", type=int, default=10)
    r.add_argument("--diversity", type=float, default=0.3, help="0 = pure relevance, 1 = most categories")
    r.add_argument("--exclude-purchased", action=argparse.BooleanOptionalAction, default=None,
                   help="hide bought items (default: follow the store's measured repurchase rate)")
    r.add_argument("--artifacts", default=None, help=ARTIFACTS_HELP)
    r.add_argument("--json", action="store_true", help="print JSON records")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {one_line(msg, args)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or an unforeseen failure: still one line; -v logs the traceback
        if args.verbose:
            log.exception("%s failed", args.command)
        print(f"error: unexpected {type(exc).__name__} in `{args.command}`: {one_line(exc, args)}"
              f"{'' if args.verbose else ' (-v shows the traceback)'}", file=sys.stderr)
        return 1
