"""Tables as CSV files that are safe to open in a spreadsheet.

Store data is untrusted: a brand such as ``=HYPERLINK("http://x", "y")`` or ``@SUM(A1)`` is run as a formula
by Excel, LibreOffice and Google Sheets. Following the OWASP advice, text cells that start with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return are written with a leading single quote; numbers stay numbers.
"""
from __future__ import annotations

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: object) -> object:
    """One cell: text that a spreadsheet would run as a formula gets a leading quote; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_csv(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV of ``df`` (no index) with every text cell escaped against formula injection."""
    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])
                or pd.api.types.is_datetime64_any_dtype(out[col])):
            out[col] = out[col].map(escape_formula)
    out.columns = [escape_formula(str(c)) for c in out.columns]
    return out.to_csv(index=False).encode("utf-8")
