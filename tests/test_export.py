"""CSV downloads: store strings that a spreadsheet would run as formulas are escaped, everything else is kept."""
from __future__ import annotations

import io

import pandas as pd

from recsys.export import escape_formula, safe_csv


def test_escape_formula_known_answers():
    assert escape_formula("=HYPERLINK(\"http://x\",\"y\")") == "'=HYPERLINK(\"http://x\",\"y\")"
    for s in ("+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert escape_formula(s) == "'" + s
    for v in ("apple", "a=b", "", 5, -3.5, None):
        assert escape_formula(v) == v


def test_safe_csv_escapes_text_cells_and_keeps_numbers():
    df = pd.DataFrame({"brand": ["=cmd|' /C calc'!A0", "samsung", "@x"], "views": [-1, 2, 3],
                       "rate": [0.5, -0.25, 1.0], "code": pd.array(["-a", "b", None], dtype="string")})
    back = pd.read_csv(io.BytesIO(safe_csv(df)), keep_default_na=False)
    assert back["brand"].tolist() == ["'=cmd|' /C calc'!A0", "samsung", "'@x"]
    assert back["views"].tolist() == [-1, 2, 3] and back["rate"].tolist() == [0.5, -0.25, 1.0]
    assert back["code"].tolist() == ["'-a", "b", ""]
    assert list(back.columns) == ["brand", "views", "rate", "code"]


def test_md_shows_store_strings_as_text():
    """Streamlit Markdown must not turn a brand into an image request, a link, a colour directive or LaTeX."""
    from ui.common import md
    assert md("![t](http://127.0.0.1:9/track.png)") == r"\!\[t\]\(http\://127\.0\.0\.1\:9/track\.png\)"
    assert md("[x](javascript:alert(1))").startswith(r"\[x\]\(javascript\:")
    assert md(":red[big] $x$ <b>bold</b> *a* _b_") == r"\:red\[big\] \$x\$ \<b\>bold\</b\> \*a\* \_b\_"
    assert md("two\nlines") == "two lines" and md("samsung") == "samsung" and md(42) == "42"
