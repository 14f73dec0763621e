"""Marginal statistics of the synthetic demo store next to the real REES46 head, as a table.

    python benchmarks/demo_vs_real.py                       # real head vs a fresh 400k demo (seed 7)
    python benchmarks/demo_vs_real.py --big benchmarks/data/oct-42.4M.csv   # + the big file's first 3 hours

The real head covers only the first ~3 hours of 2019-10-01 (night in the store's UTC+3 time zone), so
statistics that grow with the time span (sessions per user, products, category ids, brands) are only comparable
with a demo window of the same length: ``--big`` adds the demo's own 2019-10-01 00:00-02:50 UTC window.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys import schema as S  # noqa: E402
from recsys.ingest.demo import write_demo_csv  # noqa: E402

REAL_HEAD = REPO.parent / "shared" / "data" / "rees46-2019-Oct-head.csv"
HEAD_END = "2019-10-01 02:50:00"


def load(con: duckdb.DuckDBPyConnection, name: str, path: Path, until: str | None = None) -> None:
    """A table of one CSV with the contract's types; unparsable lines (the head's cut last line) are skipped."""
    cols = "{" + ", ".join(f"'{c}': '{S.DUCKDB_TYPES[c]}'" for c in S.EVENT_COLUMNS) + "}"
    where = f"WHERE event_time < TIMESTAMPTZ '{until}+00'" if until else ""
    con.execute(f"""CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', header = true, columns = {cols},
                    auto_detect = false, ignore_errors = true) {where}""")


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchall()[0]


def marginals(con: duckdb.DuckDBPyConnection, t: str) -> dict[str, str]:
    """Named statistics of table ``t``, formatted for the table."""
    out: dict[str, str] = {}
    n, users, sessions, products, cats, codes, brands, hours = one(con, f"""
        SELECT count(*), count(DISTINCT user_id), count(DISTINCT user_session), count(DISTINCT product_id),
               count(DISTINCT category_id), count(DISTINCT category_code), count(DISTINCT brand),
               date_diff('minute', min(event_time), max(event_time)) / 60.0 FROM {t}""")
    out["rows"] = f"{n:,}"
    out["time span (hours)"] = f"{hours:,.1f}"
    out["users / sessions / products"] = f"{users:,} / {sessions:,} / {products:,}"
    out["category ids / codes / brands"] = f"{cats:,} / {codes:,} / {brands:,}"
    shares = dict(con.execute(f"SELECT event_type, count(*) / {n} FROM {t} GROUP BY 1").fetchall())
    out["view / cart / purchase / remove %"] = " / ".join(f"{100 * shares.get(e, 0):.2f}" for e in S.EVENT_TYPES)
    mb, mc, ns = one(con, f"""SELECT avg((brand IS NULL)::INT), avg((category_code IS NULL)::INT),
                             sum((user_session IS NULL)::INT) FROM {t}""")
    out["missing brand % / category_code %"] = f"{100 * mb:.1f} / {100 * mc:.1f}"
    dups = one(con, f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM {t})) FROM {t}")[0]
    out["duplicate rows / no-session rows"] = f"{dups:,} / {ns:,}"
    mixed_code, mixed_brand = one(con, f"""SELECT
        (SELECT count(*) FROM (SELECT category_id FROM {t} GROUP BY 1
                               HAVING count(category_code) BETWEEN 1 AND count(*) - 1)),
        (SELECT count(*) FROM (SELECT product_id FROM {t} GROUP BY 1 HAVING count(brand) BETWEEN 1 AND count(*) - 1))
        """)
    out["category ids with code only sometimes / products with brand only sometimes"] = \
        f"{mixed_code} / {mixed_brand}"
    q = one(con, f"SELECT quantile_cont(price, [0.05, 0.25, 0.5, 0.75, 0.95, 0.99]) FROM {t}")[0]
    out["price p5 / p25 / p50 / p75 / p95 / p99"] = " / ".join(f"{x:,.0f}" if x >= 100 else f"{x:.1f}" for x in q)
    mean, med, p90, mx = one(con, f"""SELECT avg(c), median(c), quantile_disc(c, 0.9), max(c) FROM (
        SELECT count(*) c FROM {t} WHERE user_session IS NOT NULL GROUP BY user_session)""")
    out["events per session: mean / median / p90 / max"] = f"{mean:.2f} / {med:.0f} / {p90} / {mx}"
    mean, multi, days3 = one(con, f"""SELECT avg(s), avg((s > 1)::INT), avg((d >= 3)::INT) FROM (
        SELECT count(DISTINCT user_session) s, count(DISTINCT event_time::DATE) d FROM {t} GROUP BY user_id)""")
    out["sessions per user: mean / share >1 / share active >=3 days"] = \
        f"{mean:.2f} / {100 * multi:.1f}% / {100 * days3:.1f}%"
    buy_sess, cart_first = one(con, f"""SELECT
        (SELECT avg(b) FROM (SELECT max((event_type = 'purchase')::INT) b FROM {t} GROUP BY user_session)),
        (SELECT avg(c) FROM (
            SELECT p.user_session, p.product_id, max((c.user_session IS NOT NULL)::INT) c
            FROM {t} p LEFT JOIN {t} c ON c.user_session = p.user_session AND c.product_id = p.product_id
                 AND c.event_type = 'cart' AND c.event_time <= p.event_time
            WHERE p.event_type = 'purchase' GROUP BY 1, 2))""")
    out["sessions with a purchase % / purchases carted first in session %"] = \
        f"{100 * buy_sess:.2f} / {100 * cart_first:.0f}"
    med_pc, max_pc = one(con, f"""SELECT median(c), max(c) FROM (
        SELECT count(DISTINCT product_id) c FROM {t} GROUP BY category_id)""")
    out["products per category id: median / max"] = f"{med_pc:.0f} / {max_pc:,}"
    top1 = one(con, f"""SELECT sum(c) FILTER (WHERE r <= greatest(1, n // 100)) / sum(c) FROM (
        SELECT count(*) c, row_number() OVER (ORDER BY count(*) DESC) r, count(*) OVER () n
        FROM {t} GROUP BY product_id)""")[0]
    out["share of events on the top 1% products"] = f"{100 * top1:.1f}%"
    tops = con.execute(f"""SELECT coalesce(split_part(category_code, '.', 1), '(none)') k, count(*) / {n}
                           FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 6""").fetchall()
    out["top departments %"] = ", ".join(f"{k} {100 * v:.1f}" for k, v in tops)
    tops = con.execute(f"""SELECT category_code, count(*) / {n} FROM {t} WHERE category_code IS NOT NULL
                           GROUP BY 1 ORDER BY 2 DESC LIMIT 4""").fetchall()
    out["top codes %"] = ", ".join(f"{k} {100 * v:.1f}" for k, v in tops)
    b1, b10, top_b = one(con, f"""SELECT max(c) / sum(c), sum(c) FILTER (WHERE r <= 10) / sum(c),
                                        string_agg(brand, ', ' ORDER BY r) FILTER (WHERE r <= 4) FROM (
        SELECT brand, count(*) c, row_number() OVER (ORDER BY count(*) DESC, brand) r FROM {t}
        WHERE brand IS NOT NULL GROUP BY 1)""")
    out["brand share of branded rows: top-1 / top-10"] = f"{100 * b1:.1f}% / {100 * b10:.1f}%"
    out["top brands"] = top_b
    same_cat = one(con, f"""SELECT avg((category_id = prev)::INT) FROM (
        SELECT category_id, lag(category_id) OVER (PARTITION BY user_session ORDER BY event_time) prev
        FROM {t} WHERE event_type = 'view' AND user_session IS NOT NULL) WHERE prev IS NOT NULL""")[0]
    out["consecutive views in the same category %"] = f"{100 * same_cat:.0f}"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", type=Path, default=REAL_HEAD)
    p.add_argument("--demo", type=Path, default=None, help="a demo CSV (default: write one to a temp dir)")
    p.add_argument("--events", type=int, default=400_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--big", type=Path, default=None, help="a big demo CSV: compare its first ~3 hours too")
    args = p.parse_args(argv)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns: dict[str, dict[str, str]] = {}
    load(con, "real", args.real)
    columns["real head (Oct 1, 00:00-02:50)"] = marginals(con, "real")
    with tempfile.TemporaryDirectory() as tmp:
        demo = args.demo
        if demo is None:
            demo = Path(tmp) / "demo.csv"
            t0 = time.perf_counter()
            write_demo_csv(demo, events=args.events, seed=args.seed)
            print(f"wrote {args.events:,}-event demo (seed {args.seed}) in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)
        load(con, "demo", demo)
        columns[f"demo {demo.name} (2 months)"] = marginals(con, "demo")
    if args.big:
        load(con, "big", args.big, until=HEAD_END)
        columns[f"{args.big.name}, same 3 hours"] = marginals(con, "big")
    names = list(columns)
    print("| statistic | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key in columns[names[0]]:
        print(f"| {key} | " + " | ".join(columns[c][key] for c in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
