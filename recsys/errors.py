"""The errors a person can fix (bad input, a stage not built or damaged, Spark missing), shown to them as one line
instead of a traceback: by the CLI (``recsys.cli``, exit 2), by the app's pages (``ui.common.show_error``) and in
the Data page's build messages (``recsys.datasets.explain``).

``USER_ERRORS`` lists their types (a ``KeyError``'s message is its first argument, an unknown id); ``one_line``
writes a message on one line with its build command pointed at the user's artifacts directory.
"""
from __future__ import annotations

import argparse

from recsys.artifacts import BUILD_COMMAND, ArtifactError
from recsys.schema import SchemaError
from recsys.spark_engine import SparkUnavailable

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, ArtifactError, SchemaError, OSError, KeyError,
                                                SparkUnavailable)


def one_line(msg: object, args: argparse.Namespace) -> str:
    """An error message on one line, its build command pointed at the user's artifacts directory."""
    text = " ".join(str(msg).split())
    artifacts = getattr(args, "artifacts", None)
    if artifacts and f"`{BUILD_COMMAND}" in text and "--artifacts" not in text:
        text = text.replace(f"`{BUILD_COMMAND}", f"`{BUILD_COMMAND} --artifacts {artifacts}")
    return text
