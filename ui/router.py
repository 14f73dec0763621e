"""The one place that keeps a fresh server's first deep link inside app.py's router.

Streamlit has no supported switch for this (1.67): while no run has called ``st.navigation`` yet, a ``pages/``
folder beside the main script is a v1 multipage app, and a URL such as ``/funnel`` runs ``pages/funnel.py``
alone. app.py wraps each run in ``routed_run()``; every page calls ``require_router()`` first. The private
attribute used here is checked by tests/test_app_shell.py, which fails if Streamlit renames it.
"""
from __future__ import annotations

import contextlib
import threading

import streamlit as st

_RUN = threading.local()  # per script thread: whether this run entered through app.py's router


@contextlib.contextmanager
def routed_run():
    """app.py wraps every run in this; a page run outside it is a page running alone (see ``require_router``)."""
    _RUN.routed, _RUN.page = True, ""
    try:
        yield
    finally:
        _RUN.routed, _RUN.page = False, ""


def run_page(page: st.Page) -> None:
    """Run the page ``st.navigation`` chose, remembering which one it is for ``current_page``."""
    _RUN.page = page.url_path
    page.run()


def current_page() -> str:
    """The URL path of the page this run draws ("" for the default page or outside a routed run)."""
    return getattr(_RUN, "page", "")


def require_router() -> None:
    """Send a page run that did not come through app.py's ``st.navigation`` back through it. Every page calls this.

    Streamlit treats a ``pages/`` folder as a v1 multipage app until some run calls ``st.navigation``: on a fresh
    server, visitors who open deep links (shared ``/funnel?...`` URLs) at the same moment each run their page
    alone, without the router, the demo-build fallback or the sidebar sections. Switching v1 off (the one use of
    Streamlit's private API, ``PagesManager.uses_pages_directory``; tests/test_app_shell.py fails if it changes)
    and rerunning sends the run through app.py, which resolves the same URL. Checked per run, not once at import:
    a check at import time runs in the first session only, and raising inside an import made simultaneous
    sessions see a half-imported module.
    """
    if getattr(_RUN, "routed", False):
        return
    from streamlit.runtime.pages_manager import PagesManager
    PagesManager.uses_pages_directory = False
    st.rerun()
