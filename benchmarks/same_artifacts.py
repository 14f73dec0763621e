"""Are two artifact sets the same build? Every file compared byte for byte, JSON files (manifests, reports) with
their timings, build times and paths left out: what a refactor must leave unchanged.

    python -m recsys build --artifacts /tmp/before          # on the old commit
    python -m recsys build --artifacts /tmp/after           # on the new one
    python benchmarks/same_artifacts.py /tmp/before /tmp/after

Exit 0 when every file matches, 1 otherwise (the differing files are listed).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# keys whose values are times or places, not results
VOLATILE = ("duration", "seconds", "_s", "_ms", "built_at", "created", "time", "path", "root", "elapsed", "timings")


def _volatile(key: str) -> bool:
    k = key.lower()
    return any(k == v or k.endswith(v) or k.startswith(v) for v in VOLATILE)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not _volatile(str(k))}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return "<path>"
    return value


def files(root: Path) -> dict[str, Path]:
    skip = ("raw/", ".build-", ".tmp-")
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
            if p.is_file() and not str(p.relative_to(root)).startswith(skip)}


def _manifest(m: dict, stage: str) -> dict:
    """A manifest without what a rebuild changes by design: a derived stage's fingerprint (it hashes the upstream
    build times) and the hashes of its JSON reports (those hold timings; each is compared on its own)."""
    m = dict(m)
    if stage != "events":
        m.pop("input_fingerprint", None)
    m["files"] = {k: v for k, v in m.get("files", {}).items() if not k.endswith(".json")}
    return m


def same(a: Path, b: Path) -> bool:
    if a.suffix == ".json":
        try:
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
        except ValueError:
            return a.read_bytes() == b.read_bytes()
        if a.name == "manifest.json" and isinstance(ja, dict) and isinstance(jb, dict):
            ja, jb = _manifest(ja, a.parent.name), _manifest(jb, b.parent.name)
        return _strip(ja) == _strip(jb)
    return a.read_bytes() == b.read_bytes()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args(argv)
    fa, fb = files(args.before), files(args.after)
    only = sorted(set(fa) ^ set(fb))
    differ = [name for name in sorted(set(fa) & set(fb)) if not same(fa[name], fb[name])]
    for name in only:
        print(f"only in {'before' if name in fa else 'after'}: {name}")
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(set(fa) & set(fb)) - len(differ)} of {len(set(fa) | set(fb))} files the same")
    return 0 if not only and not differ else 1


if __name__ == "__main__":
    sys.exit(main())
