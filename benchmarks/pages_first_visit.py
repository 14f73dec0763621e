"""First visit of every app page on a built store (AppTest, one process): the wall time of a fresh session's
first run of each page, then of a rerun, plus any exception or error shown. Pages are visited in menu order and
Streamlit's caches are per process, so a loader shared by several pages is paid on the first page that uses it
(each session starts on the Overview, which is cached after the first page).

    python benchmarks/pages_first_visit.py ARTIFACTS_DIR
"""
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ["RECSYS_ARTIFACTS"] = sys.argv[1]
sys.path.insert(0, str(REPO))
from streamlit.testing.v1 import AppTest
pages = ["pages/overview.py", "pages/funnel.py", "pages/temporal.py", "pages/brands_categories.py",
         "pages/users_sessions.py", "pages/affinity.py", "pages/product_explorer.py", "pages/recommender.py",
         "pages/evaluation.py"]
for p in pages:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    t = time.perf_counter()
    at.run()
    at.switch_page(p)
    at.run()
    t1 = time.perf_counter() - t
    t = time.perf_counter(); at.run(); t2 = time.perf_counter() - t
    errs = [e.value for e in at.exception] + [e.body for e in at.error]
    print(f"{p:32s} first {t1:6.1f} s  rerun {t2:5.2f} s  exceptions/errors: {errs[:2]}", flush=True)
