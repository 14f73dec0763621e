"""App-side helpers shared by the pages: where the artifacts are, cached loaders, the demo-build fallback.

Every Streamlit-aware helper lives in this package (``ui/``), beside the page scripts in ``pages/``; the library
(``recsys``) never imports streamlit.
Loaders take a path plus a version string (the manifests' build times), never frames, so a rebuild
invalidates the cache.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from recsys.artifacts import ArtifactError, artifacts_root, read_manifest
from recsys.journal import recover_interrupted_builds
from recsys.errors import USER_ERRORS

log = logging.getLogger(__name__)

ACTIVE_SET = "artifacts_set"  # session key: the path of the set this browser session serves (the Data page)


def root() -> Path:
    """The artifacts directory the app serves to this session: the set chosen on the Data page while it still
    holds built events, else ``$RECSYS_ARTIFACTS`` or ``artifacts/``."""
    chosen = st.session_state.get(ACTIVE_SET)
    if chosen:
        if (Path(chosen) / "events" / "manifest.json").is_file():
            return Path(chosen)
        del st.session_state[ACTIVE_SET]  # deleted or emptied meanwhile: never build the demo store into it
    return artifacts_root(os.environ.get("RECSYS_ARTIFACTS"))


def use_set(path: Path | None) -> None:
    """Serve another artifact set to this session (None: the default one). Every other page's widget state and
    the URL's filters belong to the previous store, so they are dropped (the Data page's own ``data_*`` keys
    stay); cached loaders are keyed by path, so nothing else needs clearing."""
    for key in [k for k in st.session_state if not str(k).startswith("data_")]:
        del st.session_state[key]
    st.query_params.clear()
    if path is not None:
        st.session_state[ACTIVE_SET] = str(path)


def version(*stages: str) -> str:
    """A cache key that changes whenever one of the stages is rebuilt."""
    parts = []
    for s in stages or ("events",):
        m = read_manifest(root(), s)
        parts.append(f"{s}={m.get('built_at') if m else None}:{m.get('input_fingerprint') if m else None}")
    return "|".join(parts)


# What the Affinity and model pages import, cheapest first: pyvis (1 s, most of it IPython) with networkx, then about
# 4.5 s of torch, FAISS and LightGBM on 2 cores. Third-party packages only: they never import this project, so this
# thread never holds the import lock of a project module that a page's own import of torch or LightGBM waits
# behind. With recsys.serving.service in the list, a Recommender deep link opened at the same moment as other
# pages' first runs showed an exception once in CI; such a lock cycle is the likely cause (the test does not
# print the exception, so this is not confirmed).
HEAVY_MODULES = ("networkx", "pyvis.network", "torch", "faiss", "lightgbm")
_warm_lock = threading.Lock()
_warm_started = False


def warm_imports() -> None:
    """Start importing ``HEAVY_MODULES`` in a background thread, once per server process; app.py calls it as its
    first page run ends: the first visit of the Recommender or Evaluation page then finds them imported (or waits
    only for the rest: Python's import lock makes the page's own import wait for a half-done one, never run it
    twice). Not while the first page draws: imports hold the GIL, and a thread importing alongside the opening run
    made it about twice as slow (2.2 s against 4.5-5.3 s on the demo store, ``benchmarks/pages_first_visit.py``).
    The imports take about 4.5 s on their own (torch 2.2 s; LightGBM 1.4 s, most of it scikit-learn), so a
    Recommender visit within seconds of the opening still waits for part of them."""
    global _warm_started
    with _warm_lock:
        if _warm_started:
            return
        _warm_started = True
    threading.Thread(target=_import_heavy, name="warm-imports", daemon=True).start()


def _import_heavy() -> None:
    for name in HEAVY_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the page that needs it reports the problem when it imports it itself
            log.warning("warm-up import of %s failed: %s", name, exc)


def ensure_artifacts() -> None:
    """Build the demo store (with visible progress) when no events are built; stop with a message if broken."""
    try:
        if recover_interrupted_builds(root()):  # a killed build's half set: the previous complete set comes back
            st.cache_data.clear()
            st.cache_resource.clear()
        manifest = read_manifest(root(), "events")
    except (ArtifactError, OSError) as exc:
        st.error(f"The artifacts directory {md(root())} is broken: {md(exc)}")
        st.stop()
    if manifest is not None:
        return
    from recsys.build import DEMO_EVENTS, build
    events = int(os.environ.get("RECSYS_DEMO_EVENTS", DEMO_EVENTS))
    with st.status(f"No artifacts in {md(root())} yet: building the demo store (first start only)...",
                   expanded=True) as status:
        bar = st.progress(0.0)
        try:
            build(root(), demo_events=events,
                  progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=msg))
        except Exception as exc:  # the app shows a message, never a traceback
            status.update(label="Building the demo store failed", state="error")
            st.error(f"Could not build the demo store in {md(root())}: {md(exc)}")
            st.stop()
        status.update(label="Demo store built", state="complete", expanded=False)
    st.cache_data.clear()
    st.cache_resource.clear()


def show_error(exc: BaseException) -> None:
    """Explain an error in one plain message (the page stops)."""
    if isinstance(exc, USER_ERRORS):
        st.error(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
    else:
        st.error(f"Something went wrong while drawing this page ({type(exc).__name__}: {exc}). "
                 f"Rebuilding the artifacts (`python -m recsys build --force`) usually fixes it.")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&^=\"'])")


def md(value: object) -> str:
    """Store data (a brand, a category, a search query) as literal text inside Streamlit Markdown: every ASCII
    punctuation character that Markdown, Streamlit's colour/icon directives or LaTeX would read is backslash-
    escaped, and line breaks become spaces. ``![t](http://x/p.png)`` stays text, never an image request."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).splitlines()))


def download_csv(df: Any, name: str, key: str | None = None) -> None:
    """A CSV download button for a table (text cells escaped against spreadsheet formula injection)."""
    from recsys.export import safe_csv
    st.download_button(f"Download {name}.csv", safe_csv(df), file_name=f"{name}.csv",
                       mime="text/csv", key=key or f"dl-{name}")


@st.cache_data(show_spinner=False)
def store_kpis(root_dir: str, ver: str) -> dict[str, Any]:
    from recsys.aggregates.stage import store_kpis as kpis
    return kpis(root_dir)


@st.cache_data(show_spinner=False)
def quality_report(root_dir: str, ver: str) -> dict[str, Any]:
    from recsys.ingest.stage import load_quality
    return load_quality(root_dir)


PLOTLY_CONFIG = {"displaylogo": False}


def show_quality(q: dict[str, Any], key: str) -> None:
    """What cleaning did, as pictures (rows read -> dropped by reason -> kept; fills), the tables in an expander,
    then the first unparsable lines and the rules."""
    from recsys.aggregates import overview as oc
    rows, fills = oc.quality_rows(q), oc.quality_fills(q)
    left, right = st.columns(2)
    left.plotly_chart(oc.quality_figure(rows), width="stretch", key=f"{key}-rows-chart", config=PLOTLY_CONFIG)
    if fills["rows"].sum() > 0:
        right.plotly_chart(oc.fills_figure(fills), width="stretch", key=f"{key}-filled-chart", config=PLOTLY_CONFIG)
    else:
        right.info("No brand or category_code had to be filled.")
    st.caption(f"Prices of exactly 0 kept as real behaviour (excluded from price statistics): "
               f"{int(q.get('price_zero_kept', 0)):,} rows.")
    for note in q.get("notes") or []:
        st.info(md(note))
    with st.expander("Quality tables (rows read = rows kept + every drop)"):
        left, right = st.columns(2)
        left.dataframe(rows, hide_index=True, width="stretch", key=f"{key}-rows")
        right.dataframe(fills, hide_index=True, width="stretch", key=f"{key}-filled")
    if q.get("unparsable_samples"):
        st.markdown("**First unparsable lines (skipped)**")
        st.dataframe(pd.DataFrame(q["unparsable_samples"]), hide_index=True, width="stretch", key=f"{key}-bad")
    with st.expander("Cleaning rules"):
        st.markdown(q.get("rules", ""))  # the ingest's own docstring, not store data
