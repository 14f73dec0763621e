"""App-side helpers of the EDA pages: the aggregates stage loaded once, cached queries, the ONE shared sidebar
filter (kept in the session for every Explore page and written to the URL so a view can be shared and reloaded),
and the chart/table helpers with one theme.
"""
from __future__ import annotations

from typing import Any, Callable

import plotly.graph_objects as go
import streamlit as st

from ui.common import download_csv, md, root, version
from ui.router import current_page
from recsys.aggregates.query import EdaFilters, brands_for, filter_options, open_aggregates
from recsys.aggregates.stage import aggregates_up_to_date, build_aggregates_stage
from recsys.aggregates.filters import PARAMS, filters_from_params, filters_to_params, fit_filters

ALL_CATEGORIES, ALL_BRANDS = "All categories", "All brands"
# session keys shared by every Explore page: the filters, what a link's filters had changed, the page they were put on
FILTERS, NOTICES, SEEDED = "eda_filters", "eda_filter_notices", "eda_filters_page"


def ensure_aggregates() -> str:
    """Build the aggregates stage (with progress) when it is missing or stale; return the cache version."""
    if not aggregates_up_to_date(root()):
        with st.status("Computing the EDA aggregates (once per build)...", expanded=True) as status:
            bar = st.progress(0.0)
            build_aggregates_stage(root(), progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
            status.update(label="EDA aggregates ready", state="complete", expanded=False)
    return version("events", "aggregates")


@st.cache_resource(show_spinner=False)
def connection(root_dir: str, ver: str) -> Any:
    """The cubes in an in-memory DuckDB (read-only use; every query takes its own cursor)."""
    return open_aggregates(root_dir)


def query_name(fn: Callable[..., Any]) -> str:
    """The cache key of an aggregate query or chart function: ``module.name`` (a function itself is not hashed)."""
    return f"{fn.__module__}.{fn.__qualname__}"


def load(fn: Callable[..., Any], root_dir: str, ver: str, filters: tuple, **kwargs: Any) -> Any:
    """Run the aggregate query ``fn(connection, filters, **kwargs)`` (e.g. ``eda_funnel.funnel_steps``); cached
    per query, store version, filters and arguments."""
    return _load(fn, query_name(fn), root_dir, ver, filters, **kwargs)


@st.cache_data(show_spinner=False, max_entries=1024)
def _load(_fn: Callable[..., Any], name: str, root_dir: str, ver: str, filters: tuple, **kwargs: Any) -> Any:
    cur = connection(root_dir, ver).cursor()
    try:
        return _fn(cur, EdaFilters(*filters), **kwargs)
    finally:
        cur.close()


def derive(fn: Callable[..., Any], base: Callable[..., Any], root_dir: str, ver: str, filters: tuple,
           args: tuple) -> Any:
    """``fn(load(base, ...), *args)``: a figure computed from a cached query's frame, itself cached, so a rerun
    neither recomputes it nor copies the frame out of the cache (every buyer's RFM row: 0.86 s reruns at Oct+Nov)."""
    return _derive(fn, query_name(fn), base, query_name(base), root_dir, ver, filters, args)


@st.cache_data(show_spinner=False, max_entries=256)
def _derive(_fn: Callable[..., Any], name: str, _base: Callable[..., Any], base_name: str, root_dir: str, ver: str,
            filters: tuple, args: tuple) -> Any:
    return _fn(load(_base, root_dir, ver, filters), *args)


def _clear() -> None:
    _load.clear()
    _derive.clear()


load.clear = _clear  # type: ignore[attr-defined]  (benchmarks clear it and its derivations for uncached timings)


@st.cache_data(show_spinner=False)
def options(root_dir: str, ver: str) -> dict[str, Any]:
    cur = connection(root_dir, ver).cursor()
    try:
        return filter_options(cur)
    finally:
        cur.close()


class Eda:
    """What a page needs: the filters and a ``q(query, **kw)`` that runs one cached aggregate query."""

    def __init__(self, ver: str, filters: EdaFilters) -> None:
        self.ver, self.filters = ver, filters
        self.key = (filters.start, filters.end, filters.category, filters.brand)

    def q(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """The frame (or dict) of the aggregate query ``fn`` for these filters, cached."""
        return load(fn, str(root()), self.ver, self.key, **dict(sorted(kwargs.items())))

    def derive(self, fn: Callable[..., Any], base: Callable[..., Any], *args: Any) -> Any:
        """``fn(frame of the query base for these filters, *args)``, cached (see the module's ``derive``)."""
        return derive(fn, base, str(root()), self.ver, self.key, args)

    def chart(self, chart: Callable[..., go.Figure], fn: Callable[..., Any], *args: Any, key: str, height: int = 380,
              **kwargs: Any) -> None:
        """Draw ``chart(fn(filters, **kwargs), *args)``; the figure itself is cached per filter."""
        fig = figure(chart, fn, str(root()), self.ver, self.key, height, args, tuple(sorted(kwargs.items())))
        st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})


def figure(chart: Callable[..., go.Figure], fn: Callable[..., Any], root_dir: str, ver: str, filters: tuple,
           height: int, args: tuple, kwargs: tuple) -> go.Figure:
    """A styled, validated figure, shared read-only: building and validating Plotly objects is the slow part
    of a page, and a Figure (unlike a dict or a pickled copy) is not validated again when drawn."""
    return _figure(chart, fn, query_name(chart), query_name(fn), root_dir, ver, filters, height, args, kwargs)


@st.cache_resource(show_spinner=False, max_entries=512)
def _figure(_chart: Callable[..., go.Figure], _fn: Callable[..., Any], chart_name: str, fn_name: str, root_dir: str,
            ver: str, filters: tuple, height: int, args: tuple, kwargs: tuple) -> go.Figure:
    return style(_chart(load(_fn, root_dir, ver, filters, **dict(kwargs)), *args), height)


figure.clear = _figure.clear  # type: ignore[attr-defined]


def sidebar_filters() -> Eda:
    """The shared EDA filters in the sidebar: read once per session from the URL (?dates=..&dates=..&cat=..&brand=..,
    fitted to the data with a notice per change), kept across the Explore pages and written back to the URL."""
    ver = ensure_aggregates()
    opts = options(str(root()), ver)
    first, last = opts["first_day"], opts["last_day"]
    if first is None:
        st.info("The store has no events yet: ingest a file or build the demo store (`python -m recsys build`).")
        st.stop()
    seed_widgets(opts)
    with st.sidebar:
        st.header("🧭 Filters")
        dates = st.date_input("Date range (UTC)", min_value=first, max_value=last, key="dates",
                              help="Inclusive; days are UTC calendar days")
        cat = st.selectbox("Top-level category", [ALL_CATEGORIES, *opts["categories"]], key="cat")
        category = None if cat == ALL_CATEGORIES else cat
        brands = [ALL_BRANDS, *brands_for(opts, category)]
        if st.session_state.get("brand") not in brands:  # a brand of the previous category
            st.session_state["brand"] = ALL_BRANDS
        brand = st.selectbox("Brand", brands, key="brand", help="Brands of the chosen category, most events first")
        st.caption("The filters apply to every Explore page and live in the URL: copy it to share this view.")
    start, end = (tuple(dates) + (None, None))[:2] if isinstance(dates, (tuple, list)) else (dates, dates)
    if start and not end:  # the second click of a range is still to come
        end = start
    f = EdaFilters(start=start, end=end, category=category, brand=None if brand == ALL_BRANDS else brand)
    if f != st.session_state.get(FILTERS):  # the user chose other filters: the link's notices are done
        st.session_state.pop(NOTICES, None)
    st.session_state[FILTERS] = f
    write_url(f, opts)
    for note in st.session_state.get(NOTICES, []):
        st.warning(md(note), icon="🔗")
    return Eda(ver, f)


def seed_widgets(opts: dict[str, Any]) -> None:
    """Put the session's filters (at first the URL's) into the widgets when this page has not drawn them yet: a
    widget belongs to one page, so a page switch would otherwise reset it to all days and all categories."""
    page = current_page()
    if st.session_state.get(SEEDED) == page and "dates" in st.session_state:
        return  # a rerun of this page: the widgets hold the user's latest choice
    if FILTERS in st.session_state:
        f, notes = fit_filters(st.session_state[FILTERS], opts)  # a rebuilt store may cover other days
    else:
        f, notes = filters_from_params({k: st.query_params.get_all(k) for k in PARAMS}, opts)
    if notes:
        st.session_state[NOTICES] = notes
    st.session_state.update({FILTERS: f, SEEDED: page, "dates": (f.start, f.end),
                             "cat": f.category or ALL_CATEGORIES, "brand": f.brand or ALL_BRANDS})


def write_url(f: EdaFilters, opts: dict[str, Any]) -> None:
    """The filters as query parameters (default values left out), only where the URL differs."""
    for k, v in filters_to_params(f, opts).items():
        if st.query_params.get_all(k) == v:
            continue
        if v:
            st.query_params[k] = v if len(v) > 1 else v[0]
        elif k in st.query_params:
            del st.query_params[k]


def nothing_matches(eda: Eda, what: str = "events") -> None:
    """A plain message for a filter that matches nothing; stops the page."""
    st.info(f"No {what} match these filters ({md(eda.filters.describe())}). Widen the date range or choose "
            f"another category or brand in the sidebar.")
    st.stop()


def style(fig: go.Figure, height: int = 380) -> go.Figure:
    """The EDA look on top of Streamlit's chart theme: legend on top, full hover labels, compact margins."""
    return fig.update_layout(height=height, margin=dict(l=10, r=10, t=85, b=10),
                             title=dict(font_size=16, y=0.98, yanchor="top"),
                             legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0),
                             hoverlabel=dict(namelength=-1))


def table(df: Any, name: str, key: str, formats: dict[str, Any] | None = None, height: int | None = None) -> None:
    """A table plus its CSV download (the CSV holds the unformatted numbers)."""
    kwargs = {"height": height} if height else {}
    st.dataframe(df, hide_index=True, width="stretch", key=key, column_config=formats or None, **kwargs)
    download_csv(df, name, key=f"dl-{key}")


def pct(label: str) -> Any:
    return st.column_config.NumberColumn(label, format="percent")


def money(label: str) -> Any:
    return st.column_config.NumberColumn(label, format="dollar")


def compact(x: float, money: bool = False) -> str:
    """A short number for a metric tile: 12,345 / 384k / 4.56M / 1.20B (with $ for money)."""
    sign = "$" if money else ""
    if abs(x) >= 1e9:
        return f"{sign}{x / 1e9:,.2f}B"
    if abs(x) >= 1e6:
        return f"{sign}{x / 1e6:,.2f}M"
    if abs(x) >= 1e5:
        return f"{sign}{x / 1e3:,.0f}k"
    return f"{sign}{x:,.0f}"
