"""recsys: e-commerce behaviour analytics and recommendations over REES46-format event logs.

The library behind the Streamlit app, the CLI (``python -m recsys``) and the REST API. It never imports
streamlit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["recommend_products_for_user"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names live in its modules (PEP 562): ``exports`` maps each
    name to ``"module:attribute"`` (an attribute path such as ``Class.method`` too), imported on first use.

    Every package of the library exports this way, never by importing its own modules in ``__init__``: that
    pattern deadlocks Python's per-module import locks when two threads enter a package at once by different
    modules (one imports the package, whose ``__init__`` waits for a module the other thread holds while that
    thread waits for the package), and Python then hands one thread a half-initialised module ("cannot import
    name ... from partially initialized module"). Six deep links opened at once on a fresh app server did this
    (two threads importing ``ui.product`` and ``ui.affinity``, through ``recsys.rules``, failed 8 times of 8)."""
    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = exports[name].partition(":")
        value: object = importlib.import_module(module)
        for part in attr.split("."):
            value = getattr(value, part)
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


# ``import recsys`` stays cheap: no torch or FAISS until a recommendation is asked for
__getattr__, __dir__ = lazy_exports("recsys", {
    "recommend_products_for_user": "recsys.serving.service:recommend_products_for_user"})
