"""The benchmarks' smoke table (bench/_smoke.py, run by ./scripts/check-benchmarks in CI): every benchmark has an
entry, every entry fits its script, and the runner fails what does not exit 0 or print its figures. Fast: no
benchmark runs here."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psutil
import pytest

from bench._smoke import ROOT, SMOKES, Smoke, benchmark_scripts, run_one, skip_reason

BENCH = ROOT / "bench"
SERVERS = {"LUKAS_TEST_POSTGRES_URL": "postgresql://pg.example/test", "LUKAS_TEST_REDIS_URL": "redis://r.example/9"}


def test_every_benchmark_under_bench_has_a_smoke_entry() -> None:
    listed = {smoke.script for smoke in SMOKES}
    unlisted = [script for script in benchmark_scripts() if script not in listed]
    assert unlisted == [], f"add these to SMOKES in bench/_smoke.py (tiny arguments, figure patterns): {unlisted}"


def test_benchmarks_are_the_scripts_not_the_underscore_helpers(tmp_path: Path) -> None:
    for name in ("new_bench.py", "_helper.py", "notes.md"):
        (tmp_path / name).write_text("")
    assert benchmark_scripts(tmp_path) == ["new_bench.py"]
    assert "burst.py" in benchmark_scripts() and "_common.py" not in benchmark_scripts()


def test_every_entry_runs_a_script_that_exists_and_checks_figures() -> None:
    for smoke in SMOKES:
        assert (BENCH / smoke.script).is_file(), smoke.script
        assert smoke.figures, f"{smoke.command}: no figure pattern"
        for pattern in smoke.figures:
            re.compile(pattern)


def test_every_option_an_entry_passes_is_one_its_script_defines() -> None:
    """A renamed option fails here, in the suite, rather than in CI's smoke run."""
    for smoke in SMOKES:
        source = (BENCH / smoke.script).read_text()
        own = smoke.args[: smoke.args.index("--")] if "--" in smoke.args else smoke.args
        for option in (arg for arg in own if arg.startswith("--")):
            assert f'"{option}"' in source, f"{smoke.script} takes no {option}"


@pytest.mark.parametrize(
    ("script", "env", "reason"),
    [
        ("failover.py", {}, "LUKAS_TEST_POSTGRES_URL"),
        ("failover.py", {"LUKAS_TEST_POSTGRES_URL": "postgresql://pg.example/test"}, "LUKAS_TEST_REDIS_URL"),
        ("failover.py", SERVERS, None),
        ("trim_bench.py", {}, None),
    ],
)
def test_entries_needing_servers_are_skipped_saying_which(script: str, env: dict[str, str], reason: str | None) -> None:
    (smoke,) = [s for s in SMOKES if s.script == script]
    found = skip_reason(smoke, env)
    assert found is None if reason is None else reason in str(found)


def test_the_replicas_burst_needs_postgresql() -> None:
    replicas = [s for s in SMOKES if s.script == "burst.py" and "--replicas" in s.args]
    assert replicas and all("LUKAS_TEST_POSTGRES_URL" in str(skip_reason(s, {})) for s in replicas)


FAKE = """
import os, subprocess, sys, time
mode = sys.argv[1]
if mode == "figures":
    print(f"fit: n=3 p50=1.25 ms at {sys.argv[2]} with {os.environ.get('REDIS_URL')}")
elif mode == "wrong":
    print("fit: n=3 (no percentiles)")
elif mode == "exit":
    print("fit: n=3 p50=1.25 ms")
    sys.exit(3)
elif mode == "hang":  # and its own child (as a benchmark's `lukas run`) with it
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # not holding the output pipe open
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **quiet)
    open(sys.argv[2], "w").write(str(child.pid))
    time.sleep(60)
"""


def _run(tmp_path: Path, *args: str, timeout: float = 30) -> tuple[str, str, str]:
    (tmp_path / "fake_bench.py").write_text(FAKE)
    smoke = Smoke("fake_bench.py", args, (r"p50=\d+(\.\d+)? ms",), env={"REDIS_URL": "{redis}"}, timeout=timeout)
    outcome = run_one(smoke, SERVERS, folder=tmp_path)
    return outcome.status, outcome.why, outcome.output


def test_an_entry_passes_when_it_exits_0_and_prints_its_figures_with_the_servers_filled_in(tmp_path: Path) -> None:
    status, why, output = _run(tmp_path, "figures", "{postgres}")
    assert (status, why) == ("ok", "")
    assert "at postgresql://pg.example/test with redis://r.example/9" in output


@pytest.mark.parametrize(("mode", "why"), [("wrong", "figures not printed: 'p50="), ("exit", "exit 3")])
def test_an_entry_fails_on_missing_figures_or_a_bad_exit(tmp_path: Path, mode: str, why: str) -> None:
    status, found, _output = _run(tmp_path, mode)
    assert status == "FAIL" and found.startswith(why)


def test_a_hung_entry_fails_at_its_timeout_and_takes_its_children_with_it(tmp_path: Path) -> None:
    status, why, _output = _run(tmp_path, "hang", str(tmp_path / "child.pid"), timeout=3)
    assert (status, why) == ("FAIL", "no exit after 3 s")
    child = int((tmp_path / "child.pid").read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
