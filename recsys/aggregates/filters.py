"""The shared EDA filters as URL query parameters: read from a shared link and fitted to the data, written back.

A link is untrusted input: a date range partly outside the data is clamped to the data's days, one entirely
outside it, an unparsable value, an unknown category or a brand the category does not have fall back to the
default; every change comes back as a plain-text notice naming what was asked and what is shown instead, so
nothing is dropped silently. Query parameters: ``dates`` (one or two ISO days, repeated or joined by ``,`` or
``..``), ``cat`` (a top-level category) and ``brand``.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from recsys.aggregates.query import EdaFilters, brands_for

PARAMS = ("dates", "cat", "brand")
_SHOWN_CHARS = 60


def _quote(value: str) -> str:
    """A URL value as a notice shows it: quoted, one line, capped."""
    s = " ".join(str(value).split())
    return f"“{s if len(s) <= _SHOWN_CHARS else s[:_SHOWN_CHARS - 1] + '…'}”"


def _values(params: Mapping[str, Any], key: str) -> list[str]:
    v = params.get(key)
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, Sequence) and not isinstance(v, str) else [str(v)]


def _parse_dates(raw: list[str]) -> tuple[dt.date, dt.date] | None:
    """Start and end of a ``dates`` parameter; ValueError when it is not one or two ISO days."""
    parts = [p.strip() for r in raw for p in re.split(r",|\.\.", r) if p.strip()]
    if not 1 <= len(parts) <= 2:
        raise ValueError
    days = [dt.date.fromisoformat(p) for p in parts]
    return min(days), max(days)


def fit_dates(start: dt.date | None, end: dt.date | None, first: dt.date, last: dt.date,
              asked: str | None = None) -> tuple[dt.date, dt.date, list[str]]:
    """``start``-``end`` clamped to the data's days ``first``-``last`` (all days when no overlap), with notices."""
    start, end = start or first, end or start or last
    asked = asked or f"{start} → {end}"
    if end < first or start > last:
        return first, last, [f"The date range {asked} lies outside the data ({first} → {last}): showing all days."]
    fitted = max(start, first), min(end, last)
    if fitted != (start, end):
        return (*fitted, [f"The date range {asked} reaches beyond the data ({first} → {last}): clamped to "
                          f"{fitted[0]} → {fitted[1]}."])
    return start, end, []


def fit_filters(f: EdaFilters, options: Mapping[str, Any]) -> tuple[EdaFilters, list[str]]:
    """``f`` made valid for the store described by ``options`` (``filter_options``), with a notice per change."""
    first, last = options["first_day"], options["last_day"]
    start, end, notes = fit_dates(f.start, f.end, first, last)
    category, brand = f.category, f.brand
    if category is not None and category not in options["categories"]:
        notes.append(f"The category {_quote(category)} is not in this store: showing all categories.")
        category = None
    if brand is not None and brand not in brands_for(options, category):
        where = f"in the category {_quote(category)}" if category else "in this store"
        notes.append(f"The brand {_quote(brand)} has no events {where}: showing all brands.")
        brand = None
    return EdaFilters(start, end, category, brand), notes


def filters_from_params(params: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[EdaFilters, list[str]]:
    """The filters a link's query parameters ask for, fitted to the data, and a notice per value changed."""
    first, last = options["first_day"], options["last_day"]
    notes: list[str] = []
    start = end = None
    raw = _values(params, "dates")
    if raw:
        asked = _quote(" → ".join(raw))
        try:
            start, end, notes = fit_dates(*_parse_dates(raw), first, last, asked=asked)
        except ValueError:
            notes.append(f"The date range {asked} is not one or two days like 2019-10-01: showing all days.")
    cat, brand = (_values(params, k) for k in ("cat", "brand"))
    f, more = fit_filters(EdaFilters(start, end, cat[-1] if cat else None, brand[-1] if brand else None), options)
    return f, notes + more


def filters_to_params(f: EdaFilters, options: Mapping[str, Any]) -> dict[str, list[str]]:
    """The query parameters of ``f`` (an empty list for a default value: remove the parameter)."""
    days = (f.start or options["first_day"], f.end or options["last_day"])
    dates = [d.isoformat() for d in days] if days != (options["first_day"], options["last_day"]) else []
    return {"dates": dates, "cat": [f.category] if f.category else [], "brand": [f.brand] if f.brand else []}
