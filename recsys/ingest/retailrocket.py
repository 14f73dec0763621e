"""RetailRocket files (``events.csv``, ``item_properties*.csv``, ``category_tree.csv``) -> the events stage's
``events.parquet`` + ``quality.json``. The mapping rules are listed in ``recsys.ingest.formats``: events renamed,
sessions cut at 30-minute gaps, categories from each item's latest ``categoryid`` and the tree's id paths, no brands
and price 0 (the public files hash them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import EVENTS_FILE, Progress, no_progress, sql_literal
from recsys.ingest.formats import AdapterError, retailrocket_files, write_report

SESSION_GAP_S = 30 * 60
RR_EVENT_MAP = {"view": S.VIEW, "addtocart": S.CART, "transaction": S.PURCHASE}


def _category_paths(tree: pd.DataFrame) -> dict[int, str]:
    """categoryid -> dotted path of ids from its root (cycles and unknown parents end the walk)."""
    parent = {int(c): (None if pd.isna(p) else int(p)) for c, p in zip(tree["categoryid"], tree["parentid"])}
    out = {}
    for c in parent:
        path, seen, cur = [], set(), c
        while cur is not None and cur not in seen:
            seen.add(cur)
            path.append(str(cur))
            cur = parent.get(cur)
        out[c] = ".".join(reversed(path))
    return out


def ingest_retailrocket(paths: list[Path], out_dir: Path, source: str = "files",
                        progress: Progress = no_progress) -> dict[str, Any]:
    """RetailRocket files -> ``out_dir/events.parquet`` + ``quality.json``; returns the report."""
    events, props, tree = retailrocket_files(paths)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        n_bad, samples = _read_events(con, events)
        progress(0.3, "events parsed")
        parsed, invalid, kept = _valid_events(con)
        _item_categories(con, props, tree)
        progress(0.6, "categories joined")
        _write_sessions(con, out_dir / EVENTS_FILE)
        no_cat = con.execute("SELECT count(*) FROM valid v LEFT JOIN item_cat c USING (itemid) "
                             "WHERE c.category_id IS NULL").fetchall()[0][0]
    notes = ["RetailRocket has no brands and only hashed prices: brand is unknown_brand and price 0."]
    if not props:
        notes.append("No item_properties*.csv given or found next to events.csv: the store has no categories.")
    elif not tree:
        notes.append("No category_tree.csv: category_code is the bare categoryid, without its parents.")
    return write_report(out_dir, source=source, fmt="retailrocket", files=events + props + tree,
                        read=int(parsed) + int(n_bad), kept=int(kept),
                        dropped={"unparsable": int(n_bad), "invalid_value": int(invalid), "no_session": 0,
                                 "duplicate": int(parsed) - int(invalid) - int(kept)},
                        samples=samples, brand_unknown=int(kept), code_unknown=int(no_cat), zero_price=int(kept),
                        notes=notes, progress=progress)


def _read_events(con: duckdb.DuckDBPyConnection, events: list[Path]) -> tuple[int, list[dict]]:
    """Table ``raw`` from the events files; (lines that did not parse, the first five of them)."""
    files = "[" + ", ".join(sql_literal(p) for p in events) + "]"
    cols = "{'timestamp': 'BIGINT', 'visitorid': 'BIGINT', 'event': 'VARCHAR', 'itemid': 'BIGINT', " \
           "'transactionid': 'BIGINT'}"
    try:
        con.execute(f"""CREATE TABLE raw AS SELECT timestamp, visitorid, event, itemid, transactionid
                        FROM read_csv({files}, header = true, columns = {cols}, auto_detect = false,
                                      store_rejects = true, rejects_table = 'rej', rejects_scan = 'rej_scan')""")
    except duckdb.Error as exc:
        raise AdapterError(f"{events[0]}: cannot be read as a RetailRocket events.csv: "
                           f"{str(exc).splitlines()[0]}") from exc
    n_bad = con.execute("SELECT count(*) FROM (SELECT DISTINCT file_id, line FROM rej)").fetchall()[0][0]
    samples = [{"file": str(events[min(int(f), len(events) - 1)]), "line": int(line), "error": str(msg)[:200],
                "content": (c or "").strip()[:300]}
               for f, line, msg, c in con.execute("""SELECT file_id, line, min(error_message), min(csv_line)
                   FROM rej GROUP BY file_id, line ORDER BY file_id, line LIMIT 5""").fetchall()]
    return int(n_bad), samples


def _valid_events(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """Table ``valid`` (known event names, no missing id or time, no exact duplicate); (parsed, invalid, kept)."""
    mapped = ", ".join(f"('{k}', '{v}')" for k, v in RR_EVENT_MAP.items())
    con.execute(f"CREATE TABLE emap AS SELECT * FROM (VALUES {mapped}) t(event, event_type)")
    parsed, invalid = con.execute("""SELECT count(*), count(*) FILTER (WHERE timestamp IS NULL OR visitorid IS NULL
                                     OR itemid IS NULL OR event NOT IN (SELECT event FROM emap)) FROM raw""").fetchall()[0]
    con.execute("""CREATE TABLE valid AS SELECT DISTINCT r.timestamp, r.visitorid, m.event_type, r.itemid,
                   r.transactionid FROM raw r JOIN emap m USING (event)
                   WHERE r.timestamp IS NOT NULL AND r.visitorid IS NOT NULL AND r.itemid IS NOT NULL""")
    kept = con.execute("SELECT count(*) FROM valid").fetchall()[0][0]
    return int(parsed), int(invalid), int(kept)


def _item_categories(con: duckdb.DuckDBPyConnection, props: list[Path], tree: list[Path]) -> None:
    """Table ``item_cat`` (each item's latest categoryid property) and view ``cat_paths`` (id -> path of ids)."""
    con.execute("CREATE TABLE item_cat (itemid BIGINT, category_id BIGINT)")
    if props:
        plist = "[" + ", ".join(sql_literal(p) for p in props) + "]"
        con.execute(f"""INSERT INTO item_cat SELECT itemid, arg_max(TRY_CAST(value AS BIGINT), timestamp)
                        FROM read_csv({plist}, header = true, auto_detect = false, ignore_errors = true,
                             columns = {{'timestamp': 'BIGINT', 'itemid': 'BIGINT', 'property': 'VARCHAR',
                                        'value': 'VARCHAR'}})
                        WHERE property = 'categoryid' AND TRY_CAST(value AS BIGINT) IS NOT NULL
                        GROUP BY itemid""")
    paths_df = pd.DataFrame({"category_id": pd.Series([], dtype="int64"), "code": pd.Series([], dtype=object)})
    if tree:
        t = pd.concat([pd.read_csv(p, dtype={"categoryid": "Int64", "parentid": "Int64"}) for p in tree])
        t = t.dropna(subset=["categoryid"])
        cp = _category_paths(t)
        paths_df = pd.DataFrame({"category_id": np.array(list(cp), dtype=np.int64), "code": list(cp.values())})
    con.register("cat_paths", paths_df)


def _write_sessions(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """The canonical events to ``out``: a gap of more than 30 minutes between a visitor's consecutive events
    starts a new session (``<visitorid>-<n>``)."""
    con.execute(f"""CREATE TABLE sess AS SELECT *, visitorid::VARCHAR || '-' ||
                        sum(CASE WHEN prev IS NULL OR timestamp - prev > {SESSION_GAP_S * 1000} THEN 1 ELSE 0 END)
                        OVER (PARTITION BY visitorid ORDER BY timestamp, itemid, event_type
                              ROWS UNBOUNDED PRECEDING)::VARCHAR AS user_session
                    FROM (SELECT *, lag(timestamp) OVER (PARTITION BY visitorid ORDER BY timestamp, itemid,
                                                          event_type) AS prev FROM valid)""")
    con.execute(f"""COPY (SELECT make_timestamp(s.timestamp * 1000)::TIMESTAMPTZ AS event_time, s.event_type,
                                 s.itemid AS product_id, coalesce(c.category_id, 0) AS category_id,
                                 coalesce(p.code, c.category_id::VARCHAR, {sql_literal(S.UNKNOWN_CATEGORY)}) AS category_code,
                                 {sql_literal(S.UNKNOWN_BRAND)} AS brand, 0.0::DOUBLE AS price, s.visitorid AS user_id,
                                 s.user_session
                          FROM sess s LEFT JOIN item_cat c ON c.itemid = s.itemid
                          LEFT JOIN cat_paths p ON p.category_id = c.category_id
                          ORDER BY event_time, user_id, user_session, product_id, event_type)
                    TO {sql_literal(out)} (FORMAT PARQUET)""")
