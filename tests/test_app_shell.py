"""The app shell: layering rule, Overview page, demo fallback, broken artifacts."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from recsys.aggregates.stage import store_kpis

REPO = Path(__file__).resolve().parents[1]


def test_library_never_imports_streamlit():
    offenders = []
    for path in (REPO / "recsys").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []


def test_no_package_of_the_app_imports_its_own_modules_in_its_init():
    """A package whose ``__init__`` imports its own modules deadlocks Python's per-module import locks when two
    threads enter it at once by different modules, and one of them gets a half-initialised module: how six
    simultaneous deep links on a fresh server failed in CI. The packages export lazily (``recsys.lazy_exports``)."""
    offenders = []
    for init in [*(REPO / "recsys").rglob("__init__.py"), REPO / "ui" / "__init__.py"]:
        package = ".".join(init.parent.relative_to(REPO).parts)
        offenders += [f"{init.relative_to(REPO)}: {n}" for n in _imports(init)
                      if n == package or n.startswith(package + ".")]
    assert offenders == []


# every page's module-level imports and the warm-up's, each in its own thread, all started at once in a fresh
# interpreter: what six deep links opened together on a fresh server do (the old package layout failed 2 runs of 3)
_IMPORTS_AT_ONCE = r"""
import ast, sys, threading
from pathlib import Path
repo = Path(sys.argv[1])
sys.path.insert(0, str(repo))
import pandas, plotly.express, streamlit  # a server has these before any page runs
from ui.common import HEAVY_MODULES
jobs = [compile(ast.Module([n for n in ast.parse(p.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))
                            and getattr(n, "module", "") != "__future__"], []), str(p), "exec")
        for p in sorted((repo / "pages").glob("*.py"))]
jobs += [compile(f"import {m}", f"warm-up {m}", "exec") for m in HEAVY_MODULES]
errors, start = [], threading.Barrier(len(jobs))
def run(code):
    start.wait()
    try:
        exec(code, {})
    except Exception as exc:
        errors.append(f"{code.co_filename}: {type(exc).__name__}: {exc}")
threads = [threading.Thread(target=run, args=(c,)) for c in jobs]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(jobs), "imported" if not errors else "failed", *errors, sep="\n")
"""


def test_every_page_imports_at_once_in_a_fresh_process():
    import subprocess
    import sys
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _IMPORTS_AT_ONCE, str(REPO)], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        lines = out.stdout.strip().splitlines()
        assert lines[1:] == ["imported"], lines
        assert int(lines[0]) >= 12  # the pages and the warm-up modules


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        out += [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
    return out


def test_pages_holds_the_pages_of_the_router_only():
    """Every file in pages/ is a page of app.py's st.navigation and nothing imports one (helpers live in ui/)."""
    import re
    listed = set(re.findall(r'st\.Page\("(pages/[a-z_]+\.py)"', (REPO / "app.py").read_text()))
    on_disk = {f"pages/{p.name}" for p in (REPO / "pages").iterdir() if p.name != "__pycache__"}
    assert on_disk == listed
    sources = [REPO / "app.py", *(REPO / "pages").glob("*.py"), *(REPO / "ui").glob("*.py"),
               *(REPO / "recsys").rglob("*.py")]
    assert [f"{p.relative_to(REPO)}: {n}" for p in sources for n in _imports(p) if n.split(".")[0] == "pages"] == []


def test_private_streamlit_api_is_used_in_ui_router_only():
    sources = [REPO / "app.py", *(REPO / "pages").glob("*.py"), *(REPO / "ui").glob("*.py")]
    private = [f"{p.relative_to(REPO)}: {n}" for p in sources for n in _imports(p)
               if n.startswith("streamlit.") and not n.startswith("streamlit.components.v1")]
    assert private == ["ui/router.py: streamlit.runtime.pages_manager"]


def test_overview_shows_kpis_and_quality(app_env, demo_artifacts):
    at = app_env().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    k = store_kpis(demo_artifacts)
    assert metrics["Events"] == f"{k['events']:,}" and metrics["Purchases"] == f"{k['purchases']:,}"
    assert "demo store" in at.caption[0].value
    quality = next(d.value for d in at.dataframe if "step" in d.value.columns)
    rows = quality.set_index("step")["rows"]
    assert rows["rows read"] == rows["rows kept"] + rows.drop(["rows read", "rows kept"]).sum()


@pytest.mark.slow  # builds the demo store (every stage) from nothing
def test_app_builds_demo_store_when_artifacts_missing(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path / "empty"))
    monkeypatch.setenv("RECSYS_DEMO_EVENTS", "6000")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240).run()
    assert not at.exception and not at.error
    assert (tmp_path / "empty" / "events" / "manifest.json").exists()
    assert any(m.label == "Events" for m in at.metric)


@pytest.mark.parametrize("manifest, message", [("{not json", "broken"), ("{}", "events.parquet is missing")])
def test_broken_artifacts_give_a_message_not_a_traceback(manifest, message, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "manifest.json").write_text(manifest)
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=30).run()
    assert not at.exception
    assert message in at.error[0].value


def test_kpis_stored_by_the_aggregates_stage_match_the_live_figures(demo_artifacts, tmp_path):
    import shutil
    from recsys.artifacts import connect, stage_dir
    from recsys.aggregates.kpis import KPIS_FILE, compute_kpis
    stored_file = stage_dir(demo_artifacts, "aggregates") / KPIS_FILE
    assert stored_file.exists()
    live = compute_kpis(connect(demo_artifacts))
    assert store_kpis(demo_artifacts) == live and live["events"] > 0
    # a stored file that cannot be read is not trusted: the figures are computed live
    copy = tmp_path / "art"
    for stage in ("events", "aggregates"):
        shutil.copytree(stage_dir(demo_artifacts, stage), copy / stage)
    (copy / "aggregates" / KPIS_FILE).write_text("{not json")
    assert store_kpis(copy) == live


def test_the_app_rolls_back_a_killed_build_before_it_reads(demo_artifacts, tmp_path, monkeypatch):
    """A build killed half-way left new aggregates beside a journal holding the previous ones: the first page run
    puts the previous complete set back (and the page draws from it) instead of serving the mix."""
    import shutil
    import subprocess
    import sys
    from streamlit.testing.v1 import AppTest
    root = tmp_path / "art"
    shutil.copytree(demo_artifacts, root)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    journal = root / f".build-{dead}-x"
    journal.mkdir()
    good = (root / "aggregates" / "manifest.json").read_bytes()
    (root / "aggregates").rename(journal / "aggregates")
    (root / "aggregates").mkdir()                      # the killed build's half-written replacement
    (root / "aggregates" / "manifest.json").write_text('{"stage": "aggr')
    (journal / "created-extra").touch()
    (root / "extra").mkdir()
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(root))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception and not at.error
    assert (root / "aggregates" / "manifest.json").read_bytes() == good
    assert not journal.exists() and not (root / "extra").exists()


def test_the_one_private_streamlit_attribute_still_exists():
    """ui.router.require_router switches Streamlit's v1 pages/ mode off through this class attribute; if a
    Streamlit upgrade renames it, this fails (and the simultaneous-first-visits browser test with it)."""
    from streamlit.runtime.pages_manager import PagesManager
    assert isinstance(PagesManager.uses_pages_directory, (bool, type(None)))


def test_warm_imports_runs_once_per_process_in_the_background(monkeypatch, caplog):
    import sys
    import threading

    import ui.common as common
    monkeypatch.setattr(common, "_warm_started", False)
    monkeypatch.setattr(common, "HEAVY_MODULES", ("colorsys", "no_such_module_for_warm_up"))
    sys.modules.pop("colorsys", None)
    before = {t.ident for t in threading.enumerate()}
    common.warm_imports()
    common.warm_imports()  # a second session: no second thread
    started = [t for t in threading.enumerate() if t.name == "warm-imports" and t.ident not in before]
    assert len(started) <= 1
    for t in started:
        t.join(10)
    assert "colorsys" in sys.modules
    assert "no_such_module_for_warm_up" in caplog.text


def test_heavy_imports_start_only_after_the_first_page_has_run(app_env, monkeypatch):
    """app.py starts the warm-up imports once the page has drawn: a thread importing torch alongside the opening
    run holds the GIL for most of it (the opening run was about twice as slow)."""
    import ui.common as common
    import ui.router as router
    calls: list[str] = []
    real_run_page = router.run_page

    def run_page(page):
        calls.append("page")
        real_run_page(page)

    monkeypatch.setattr(router, "run_page", run_page)
    monkeypatch.setattr(common, "warm_imports", lambda: calls.append("warm"))
    at = app_env().run()
    assert not at.exception and at.metric  # the Overview drew
    assert calls == ["page", "warm"]
