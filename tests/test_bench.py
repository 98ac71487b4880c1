"""``bench/run_all.py`` on fabricated figures: ``make bench`` fails on a missed target and leaves the
tracked BENCHMARKS.md alone; ``make bench-record`` (``--record``) writes it.

The benchmarks themselves take minutes and are not run here: ``measure`` hands over the rows.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run_all.py"
MET = {"figure": "plan", "ours": "0.5 s", "target": "<= 1 s", "pass": True}
MISSED = {"figure": "cold start", "ours": "475 ms", "target": "<= 350 ms", "pass": False}


@pytest.fixture
def run_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, its record redirected to ``tmp_path`` (the tracked file is never touched)."""
    spec = importlib.util.spec_from_file_location("esa_bench_run_all", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RECORD", tmp_path / "BENCHMARKS.md")
    return module


def run(module: ModuleType, argv: list[str], rows: list[dict[str, Any]]) -> int:
    code: int = module.main(argv, measure=lambda: rows)
    return code


@pytest.mark.parametrize(("rows", "code"), [([MET], 0), ([MET, MISSED], 1)], ids=["all-met", "one-missed"])
def test_bench_prints_the_table_fails_on_a_miss_and_records_nothing(
    run_all: ModuleType, capsys: pytest.CaptureFixture[str], rows: list[dict[str, Any]], code: int
) -> None:
    assert run(run_all, [], rows) == code
    out = capsys.readouterr().out
    assert "| plan | 0.5 s |  |  | <= 1 s | pass |" in out
    assert out.splitlines()[-1] == ("targets not met: cold start" if code else "all 1 targets met")
    assert not run_all.RECORD.exists()


def test_bench_record_writes_the_table_and_still_reports_a_miss(
    run_all: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(run_all, ["--record"], [MET, MISSED]) == 1
    recorded = run_all.RECORD.read_text()
    assert recorded.startswith("# Benchmarks\n\nMeasured ") and "by `make bench-record` on " in recorded
    assert "| cold start | 475 ms |  |  | <= 350 ms | FAIL |" in recorded
    assert capsys.readouterr().out.splitlines()[-1] == "targets not met: cold start"

    elsewhere = tmp_path / "elsewhere.md"
    assert run(run_all, ["--record", str(elsewhere)], [MET]) == 0
    assert "| plan | 0.5 s |" in elsewhere.read_text()


def test_the_makefile_records_only_in_bench_record() -> None:
    makefile = (BENCH.parents[1] / "Makefile").read_text()
    recipes = {
        target: makefile.split(f"\n{target}: install\n\t", 1)[1].split("\n", 1)[0]
        for target in ("bench", "bench-record")
    }
    assert recipes == {"bench": "$(PY) bench/run_all.py", "bench-record": "$(PY) bench/run_all.py --record"}
