"""benchmarks/run_all.py's rewrite of RESULTS.md: its block is replaced in place, the dated history stays."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run_all():
    sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location("run_all_under_test", REPO / "benchmarks" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_rewrite_inserts_the_block_before_the_first_section_then_replaces_it():
    m = _run_all()
    text = "# Benchmark results\n\nIntro.\n\n## Ingest\n\nold figures\n"
    once = m.rewrite(text, f"{m.BEGIN}\nfirst\n{m.END}")
    assert once == f"# Benchmark results\n\nIntro.\n\n{m.BEGIN}\nfirst\n{m.END}\n\n## Ingest\n\nold figures\n"
    twice = m.rewrite(once, f"{m.BEGIN}\nsecond\n{m.END}")
    assert twice == once.replace("first", "second")
    assert m.rewrite("# Title only", f"{m.BEGIN}\nx\n{m.END}").endswith(f"{m.BEGIN}\nx\n{m.END}\n")


def test_the_plan_names_every_benchmark_script_that_exists():
    m = _run_all()
    benches = m.plan(Path("/tmp/art"), [Path("/tmp/a.csv")], quick=True)
    scripts = [Path(b.argv[0]) for b in benches]
    assert all(s.is_file() for s in scripts)
    assert {b.name for b in benches} >= {"ingest", "aggregates", "recommend", "api_load", "evaluation", "eda_pages"}
    assert [b.name for b in m.plan(Path("/tmp/art"), [], quick=False)][-1] == "evaluation"  # stage rebuilds last


def test_a_quick_run_writes_its_block_after_the_demo_store_is_gone(tmp_path, monkeypatch):
    """The quick mode builds the demo store in a temporary directory that is gone when the block is written: the
    block still names the input (a first end-to-end run failed there, after 15 minutes of benchmarks)."""
    m = _run_all()

    real_run = m.subprocess.run

    def fake_build(argv, **kw):  # `python -m recsys build --artifacts A`: a raw CSV where the demo build puts it
        if "build" not in argv:
            return real_run(argv, **kw)
        art = Path(argv[argv.index("--artifacts") + 1])
        (art / "raw").mkdir(parents=True)
        (art / "raw" / "demo-1000-seed7.csv").write_text("x" * 2_000_000)

    monkeypatch.setattr(m.subprocess, "run", fake_build)
    monkeypatch.setattr(m, "run", lambda b, env: {"bench": b, "code": 0, "seconds": 1.0, "load": 0.5,
                                                  "out": f"{b.name} figures", "err": ""})
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nIntro.\n\n## Older\n\nkept\n")
    assert m.main(["--quick", "--only", "rules", "search", "--results", str(results)]) == 0
    text = results.read_text()
    assert "- inputs: demo-1000-seed7.csv (0.00 GB)" in text and "rules figures" in text and "search figures" in text
    assert text.index(m.END) < text.index("## Older") and text.endswith("kept\n")
    assert "failed" not in text
