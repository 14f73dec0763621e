"""Every page of the app in a real browser (Playwright + Debian Chromium): visit it, move its main widgets, and
after each move check that its charts draw, that no exception or error box shows, and that no request leaves
127.0.0.1. The pages come from app.py's ``st.Page(...)`` calls, so a page added there is covered too (by its
first selectbox or slider when it has no scenario here). Each test leaves a full-page screenshot in
``$SCREENSHOT_DIR/<stem>.png`` (else in its tmp_path): ``SCREENSHOT_DIR=docs/screenshots python -m pytest
tests/test_browser_pages.py`` refreshes the ones in the repository.
"""
from __future__ import annotations

import ast
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import (REPO, error_boxes, network_frame, record_outside_requests, runs_done, settle,
                            settle_load, wait_drawn, watch_runs)

pytestmark = pytest.mark.browser
MAX_SCREENSHOT_BYTES = 600_000
VIEWPORT = {"width": 1400, "height": 1000}


@dataclass(frozen=True)
class AppPage:
    file: str  # "pages/funnel.py"
    title: str
    icon: str
    default: bool

    @property
    def stem(self) -> str:
        return Path(self.file).stem

    @property
    def path(self) -> str:
        """The URL path Streamlit serves the page at."""
        return "/" if self.default else f"/{self.stem}"

    @property
    def source(self) -> str:
        return (REPO / self.file).read_text()


def app_pages(app_py: Path = REPO / "app.py") -> list[AppPage]:
    """The pages of ``st.Page("pages/x.py", title=..., icon=..., default=...)`` calls in app.py, in menu order."""
    found = []
    for node in ast.walk(ast.parse(app_py.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page" and node.args \
                and isinstance(node.args[0], ast.Constant):
            kw = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            found.append((node.lineno, node.col_offset, AppPage(node.args[0].value, kw.get("title", ""),
                                                                kw.get("icon", ""), bool(kw.get("default")))))
    return [p for *_, p in sorted(found, key=lambda t: t[:2])]


PAGES = app_pages()


def test_pages_are_discovered():
    stems = [p.stem for p in PAGES]
    assert len(stems) == len(set(stems)) >= 9 and sum(p.default for p in PAGES) == 1
    assert {"overview", "funnel", "affinity", "recommender", "product_explorer", "evaluation"} <= set(stems)


# ---- helpers ----------------------------------------------------------------------------------------------

def main(page):
    return page.locator('[data-testid="stMain"]')


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def caption(page) -> str:
    return main(page).locator('[data-testid="stCaptionContainer"]').first.inner_text()


def move(page, action, until: str | None = None, arg=None):
    """Do ``action()`` (one widget move), then wait for the app's rerun to finish and for ``until`` (a JS
    predicate of ``arg``, or of the action's result when ``arg`` is None) to hold; returns the action's result.
    (A CI run once timed out waiting for the counted run with the search results on screen: when ``until`` holds
    and the app is idle, the move's run has drawn its result, so a run the counter missed does not fail the test.)"""
    before = runs_done(page)
    result = action()
    if not until:
        settle(page, before)
        return result
    value = result if arg is None else arg
    page.wait_for_function(until, arg=value, timeout=60_000)
    try:
        settle(page, before, timeout=30_000)
    except AssertionError:
        settle(page, -1)  # idle, with the move's result drawn
        assert page.evaluate(until, value)
    return result


def pick_option(page, selectbox, nth: int) -> str:
    """Open a selectbox and click its ``nth`` option; returns the option's text. (A click right after a run
    sometimes lands while the combobox re-mounts and opens nothing: then it is clicked again.)"""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    options = page.get_by_role("listbox").get_by_role("option")
    for attempt in range(3):
        selectbox.get_by_role("combobox").click()
        try:
            options.first.wait_for(timeout=5_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    option = options.nth(min(nth, options.count() - 1))
    text = option.inner_text()
    option.click()
    return text


def other_option(page, selectbox) -> int | None:
    """Index of the first option of a selectbox other than its current value (None when it has just one); the
    list is closed again."""
    selectbox.get_by_role("combobox").click()
    options = page.get_by_role("listbox").get_by_role("option")
    options.first.wait_for(timeout=10_000)
    current = selectbox.get_by_role("combobox").input_value()
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    page.get_by_role("listbox").wait_for(state="detached")
    return next((i for i, t in enumerate(texts) if t.strip() != current), None)


def slide_to(page, label: str, fraction: float) -> str:
    """Click a slider's track at ``fraction`` of its length (one value change, one rerun); returns the new value
    as the slider shows it."""
    slider = main(page).locator('[data-testid="stSlider"]').filter(has_text=label)
    track = slider.locator('[role="group"] > div').first
    track.wait_for(state="visible")
    before = slider.locator('input[type="range"]').get_attribute("aria-valuetext")
    box = track.bounding_box()  # Locator.click waits for the track to stand still (an expander opening)
    track.click(position={"x": box["width"] * fraction, "y": box["height"] / 2})
    value = slider.locator('input[type="range"]').get_attribute("aria-valuetext")
    assert value != before, f"clicking {label} at {fraction:.0%} of its track did not move it (the thumb is there)"
    return value


def plotly_charts_drawn(page) -> int:
    """Visible Plotly charts that hold traces and have drawn their SVG."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].filter(el =>
        el.offsetWidth > 0 && el.querySelector('.main-svg') && (el._fullData || []).length > 0).length""")


def check_page(page, charts: int = 0) -> None:
    """The page after a settled run: ``charts`` Plotly charts drawn (at least), no exception or error box."""
    if charts:
        page.wait_for_function(
            """n => [...document.querySelectorAll('.js-plotly-plot')].filter(el => el.offsetWidth > 0
                   && el.querySelector('.main-svg') && (el._fullData || []).length > 0).length >= n""",
            arg=charts, timeout=60_000)
    assert error_boxes(page) == []
    assert plotly_charts_drawn(page) >= charts


def save_screenshot(page, stem: str, out_dir: Path) -> Path:
    """The whole page (the viewport grown to the main column's and the sidebar's height) as a PNG; when that is
    bigger than MAX_SCREENSHOT_BYTES, the top 1400x1000 only."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}.png"
    height = page.evaluate("""() => Math.max(...['stMain', 'stSidebarContent', 'stAppViewContainer']
        .map(t => document.querySelector(`[data-testid=${t}]`)).filter(Boolean).map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(height, 8000))})
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.screenshot(path=path, full_page=True)
    if path.stat().st_size > MAX_SCREENSHOT_BYTES:
        page.set_viewport_size(VIEWPORT)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.screenshot(path=path, clip={"x": 0, "y": 0, **VIEWPORT})
    page.set_viewport_size(VIEWPORT)
    return path


# ---- what each page's main widgets are and what must follow a move --------------------------------------

# Plotly charts an Explore page draws with any filter that matches events (another Explore page: at least one)
EXPLORE_CHARTS = {"funnel": 5, "temporal": 5, "brands_categories": 4, "users_sessions": 4}


def chart_calls(source: str) -> int:
    """How many chart calls a page's source makes (``st.plotly_chart(`` or the EDA helper ``eda.chart(``)."""
    return len(re.findall(r"\bplotly_chart\(|\beda\.chart\(", source))


def explore_scenario(page, app_page: AppPage, ctx: dict) -> None:
    """The shared sidebar filters: a top-level category, a brand of it, then a date range on the calendar; the
    caption (the filter description) and the URL follow each move."""
    charts = EXPLORE_CHARTS.get(app_page.stem, 1 if chart_calls(app_page.source) else 0)
    check_page(page, charts)
    assert "all categories" in caption(page)
    box = sidebar(page).locator('[data-testid="stSelectbox"]').filter(has_text="Top-level category")
    cat = move(page, lambda: pick_option(page, box, 1),  # the biggest top-level category
               "c => new URLSearchParams(location.search).get('cat') === c")
    assert f" · {cat} · all brands" in caption(page)
    check_page(page, charts)

    box = sidebar(page).locator('[data-testid="stSelectbox"]').filter(has_text="Brand")
    brand = move(page, lambda: pick_option(page, box, 1),  # the category's biggest brand
                 "b => new URLSearchParams(location.search).get('brand') === b")
    assert f" · {cat} · {brand}" in caption(page)
    check_page(page, charts)

    sidebar(page).get_by_role("button", name="Choose date range").click()
    cal = page.locator('[data-testid="stDateInputCalendar"]')
    month = re.search(r"(\w+ \d{4})$", cal.get_by_role("application").get_attribute("aria-label")).group(1)
    days = cal.locator('[role="gridcell"] [role="button"]:not([data-outside-month]):not([data-disabled])')
    first = dt.datetime.strptime(f"5 {month}", "%d %B %Y").date()
    last = first + dt.timedelta(days=7)
    days.filter(has_text=re.compile(r"^5$")).click()
    move(page, lambda: days.filter(has_text=re.compile(rf"^{last.day}$")).click(),
         "d => new URLSearchParams(location.search).getAll('dates').join(',') === d",
         f"{first.isoformat()},{last.isoformat()}")
    assert caption(page).startswith(f"{first} → {last} · {cat} · {brand}")
    q = parse_qs(urlparse(page.url).query)
    assert q["cat"] == [cat] and q["brand"] == [brand] and q["dates"] == [first.isoformat(), last.isoformat()]
    check_page(page, charts)
    ctx["filters"] = (first, last, cat, brand)


def overview_scenario(page, app_page: AppPage, ctx: dict) -> None:
    """No widgets to move: the eight KPI tiles and the quality tables."""
    main(page).locator('[data-testid="stMetric"]').nth(7).wait_for(timeout=60_000)  # a fresh server's first page
    main(page).locator('[data-testid="stDataFrame"]').nth(1).wait_for(state="attached", timeout=60_000)  # in expanders
    check_page(page)
    assert main(page).locator('[data-testid="stMetric"]').count() == 8
    assert main(page).get_by_text("Events", exact=True).count() >= 1
    assert main(page).locator('[data-testid="stDataFrame"]').count() >= 2


def affinity_scenario(page, app_page: AppPage, ctx: dict) -> None:
    """Raise the mining thresholds one by one (support, confidence, lift): fewer or as many rules each time, and
    the network still draws."""
    from dataclasses import asdict

    from ui.affinity import SUPPORTS
    from recsys.rules.stage import requested_params

    def rules_now() -> int:
        return int(re.search(r"([\d,]+) rules", caption(page)).group(1).replace(",", ""))

    def network_draws() -> None:
        frame = network_frame(page)
        assert frame.evaluate("network.body.data.nodes.length") >= 2
        assert frame.evaluate("network.body.data.edges.length") >= 1
        wait_drawn(frame)
        check_page(page)

    network_draws()
    rules = first_rules = rules_now()
    main(page).get_by_text("Mining settings").click()
    built = asdict(requested_params(ctx["artifacts"]))["min_support"]
    supports = ["auto"] + sorted(set(SUPPORTS) | ({built} - {None}))
    target = supports.index(0.002)
    shown = {}
    move(page, lambda: shown.update(v=slide_to(page, "Min support", target / (len(supports) - 1))),
         "() => /min support 0\\.2000%/.test(document.querySelector('[data-testid=stMain] "
         "[data-testid=stCaptionContainer]').innerText)")
    assert shown["v"] == "0.200%" and 0 < rules_now() <= rules
    rules = rules_now()
    network_draws()
    for label, fraction in (("Min confidence", 0.15), ("Min lift", 0.40)):  # 0.15 and 8.0
        move(page, lambda: shown.update(v=slide_to(page, label, fraction)))
        assert 0 < rules_now() <= rules, (label, shown["v"])
        rules = rules_now()
        network_draws()
    assert rules < first_rules  # the thresholds acted


def recommender_scenario(page, app_page: AppPage, ctx: dict) -> None:
    """Pick another telling user (the profile follows), then move the diversity slider to 1 (the list
    re-ranks)."""
    charts = 3  # the user's timeline and the two category mixes
    check_page(page, charts)
    box = main(page).locator('[data-testid="stSelectbox"]').filter(has_text="Quick pick")
    first_user = main(page).locator('[data-testid="stExpander"] summary').first.inner_text().split()[-1]
    uid = move(page, lambda: pick_option(page, box, 2).split(" · ")[-1],
               "u => [...document.querySelectorAll('[data-testid=stExpander] summary')]"
               ".some(s => s.innerText.trim().endsWith('Profile of user ' + u))")
    assert uid != first_user
    check_page(page, charts)
    before = listed_products(page)
    assert len(before) == 10

    thumb = page.get_by_role("slider", name="Diversity weight")
    thumb.focus()
    move(page, lambda: thumb.press("End"), "() => [...document.querySelectorAll('h3')]"
                                           ".some(h => h.innerText.includes('diversity weight 1.00'))")
    after = wait_list_changes(page, before)
    assert len(after) == 10 and after != before
    assert main(page).get_by_text(f"Profile of user {uid}").count() == 1
    check_page(page, charts)


LISTED_JS = """() => {
  for (const grid of document.querySelectorAll('[data-testid=stDataFrame]')) {
    const heads = [...grid.querySelectorAll('[role=columnheader]')].map(h => h.innerText.trim());
    if (heads[0] === 'rank' && heads[1] === 'product_id' && heads[2] === 'reason')
      return [...grid.querySelectorAll('[role=gridcell]')].map(c => c.innerText)
        .filter((_, i) => i % heads.length === 1);
  }
  return []; }"""


def listed_products(page) -> list[str]:
    """Product ids of the served list: the first grid whose columns start rank, product_id, reason (the
    two-tower's own list has no reason column first). Cells are counted from the rendered headers."""
    page.wait_for_function(f"({LISTED_JS})().length > 0", timeout=30_000)
    return page.evaluate(LISTED_JS)


def wait_list_changes(page, before: list[str]) -> list[str]:
    """The served list once the grid shows another list than ``before`` (it repaints a moment after the run)."""
    page.wait_for_function(f"b => JSON.stringify(({LISTED_JS})()) !== JSON.stringify(b)", arg=before,
                           timeout=30_000)
    return page.evaluate(LISTED_JS)


def product_scenario(page, app_page: AppPage, ctx: dict) -> None:
    """Search for a product by text, then open the second result: its card, similar and complementary lists."""
    check_page(page)
    box = main(page).get_by_role("textbox", name="Search products", exact=True)
    move(page, lambda: (box.fill("kitchen mixer"), box.press("Enter")),
         "() => document.querySelector('[data-testid=stMain]').innerText"
         ".includes('Search results for “kitchen mixer”')")
    assert main(page).get_by_role("heading", name="mixer").count() >= 1
    check_page(page)
    opened = main(page).locator('[data-testid="stSelectbox"]').filter(has_text="Open a product")
    chosen = move(page, lambda: pick_option(page, opened, 1).split(" · ")[-1],  # "#1234567"
                  "c => [...document.querySelectorAll('[data-testid=stMain] h3')].some(h => h.innerText.includes(c))")
    for heading in ("Similar products", "Complementary products"):
        assert main(page).get_by_role("heading", name=heading).count() == 1
    assert main(page).get_by_text("Co-view substitutes").count() == 1
    assert main(page).get_by_text("Bought together").count() >= 1
    assert main(page).locator('[data-testid="stDataFrame"]').count() >= 3  # results + at least two lists
    check_page(page)


def evaluation_scenario(page, app_page: AppPage, ctx: dict) -> None:
    """Metric, K and the exclude-seen toggle: the CI bars (with error bars) and the curve draw each time."""
    from recsys.evaluation.stage import load_evaluation
    charts = 1 if load_evaluation(ctx["artifacts"]).curve.empty else 2

    def bars_title() -> str:
        return page.locator(".js-plotly-plot .gtitle").first.text_content()

    def check() -> None:
        check_page(page, charts)
        assert page.locator(".js-plotly-plot").count() == charts
        assert page.locator(".js-plotly-plot .errorbar").count() > 0  # the bars carry their intervals

    check()
    assert bars_title().startswith("NDCG@")
    metric = main(page).locator('[data-testid="stSelectbox"]').filter(has_text="Metric")
    name = move(page, lambda: pick_option(page, metric, 1),
                "m => document.querySelector('.js-plotly-plot .gtitle')?.textContent.startsWith(m + '@')")
    check()
    k = main(page).locator('[data-testid="stSelectbox"]').filter(has_text=re.compile(r"^K"))
    move(page, lambda: f"{name}@{pick_option(page, k, 0)} ",  # the default K is the second option
         "t => document.querySelector('.js-plotly-plot .gtitle')?.textContent.startsWith(t)")
    check()
    toggle = main(page).get_by_text("Exclude items seen in training")
    move(page, toggle.click)
    assert main(page).get_by_role("switch", name="Exclude items seen in training").is_checked()
    check_page(page)  # a setting without results says so in a warning; charts are checked when there are any
    if main(page).get_by_text("No results for this setting").count() == 0:
        check()


def generic_scenario(page, app_page: AppPage, ctx: dict) -> None:
    """A page without a scenario here: move its first selectbox, else its first slider."""
    charts = 1 if chart_calls(app_page.source) else 0
    check_page(page, charts)
    boxes = main(page).locator('[data-testid="stSelectbox"]')
    sliders = main(page).locator('[data-testid="stSlider"]')
    if boxes.count() and (other := other_option(page, boxes.first)) is not None:
        move(page, lambda: pick_option(page, boxes.first, other))
    elif sliders.count():
        label = sliders.first.locator('[data-testid="stWidgetLabel"]').inner_text()
        move(page, lambda: slide_to(page, label, 0.75))
    check_page(page, charts)


SCENARIOS = {"overview": overview_scenario, "affinity": affinity_scenario, "recommender": recommender_scenario,
             "product_explorer": product_scenario, "evaluation": evaluation_scenario}


def scenario_for(app_page: AppPage):
    if app_page.stem in SCENARIOS:
        return SCENARIOS[app_page.stem]
    if "sidebar_filters(" in app_page.source:  # an Explore page: the shared filters
        return explore_scenario
    return generic_scenario


@pytest.mark.parametrize("app_page", PAGES, ids=[p.stem for p in PAGES])
def test_page_in_browser(app_server, page, app_page, demo_artifacts, tmp_path):
    watch_runs(page.context)
    outside = record_outside_requests(page.context)
    page.set_default_timeout(60_000)
    page.goto(f"{app_server}{app_page.path}")
    settle_load(page)
    assert error_boxes(page) == []
    active = page.locator('[data-testid="stSidebarNav"] a[aria-current="page"]')
    assert active.inner_text().strip().endswith(app_page.title)  # the router resolved this page
    if app_page.icon:
        assert app_page.icon in main(page).locator("h1").first.inner_text() or app_page.icon in active.inner_text()
    scenario_for(app_page)(page, app_page, {"artifacts": demo_artifacts})
    settle(page, runs_done(page) - 1)
    assert error_boxes(page) == []
    save_screenshot(page, app_page.stem, Path(os.environ.get("SCREENSHOT_DIR") or tmp_path))
    assert outside == []
