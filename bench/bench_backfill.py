"""Years of history on one machine (issue 12): single-run backfills of the sample market the way
``python -m tft_pipeline run`` and a Dagster backfill do them (the daily job over the range as ONE
run, against a real Dagster instance on the shipped SQLite config, into a real DuckDB file), and a
daily run after short and long histories.

Each backfill runs in a child process (``python -m bench.bench_backfill child FIRST LAST``) on a
fresh ``DAGSTER_HOME`` and warehouse; the parent measures its wall time, its CPU time (user +
system of the process tree, from ``wait4``) and its peak memory (the largest sum of RSS over the
child and its descendants, sampled every 0.1 s from /proc, and the child's own ``ru_maxrss``).

Figures:
- 50 tickers: backfills of 60, 250 and 1,250 sessions (the cost per session as the range grows),
  then the daily run of the next session on each (after 60 sessions, 1 year and 5 years; the
  median of three runs, wall and CPU);
- 500 tickers (the default universe): the same three ranges and daily runs.
Every timing records the machine's load average (``uptime``): other work may share the 2 cores.
``--quick`` runs 10/20 sessions of 10 tickers.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The last session of every backfill is fixed, so the figures do not move with the calendar. The
# daily run materializes the session after it.
LAST_SESSION = "2024-12-30"
DAILY_SESSION = "2024-12-31"
DAILY_REPEATS = 3
# 50 tickers over 60 sessions, 1 and 5 years (the cost-per-session and daily-run figures),
# and the same for the default universe of 500 (1 year is a target; 5 years is the title).
FULL_SIZES = ((50, (60, 250, 1250)), (500, (60, 250, 1250)))
QUICK_SIZES = ((10, (10, 20)),)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _tree_rss_bytes(root: int) -> int:
    """The RSS of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as handle:
                resident = int(handle.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        pid, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(pid)
        rss[pid] = resident
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total


def _environment(root: Path, tickers: int, first_session: str) -> dict[str, str]:
    from tft_pipeline.universe import DEFAULT_UNIVERSE

    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "deploy/sqlite/dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFT_", "REDDIT_", "DAGSTER_"))}
    env.update(
        TFT_DATA_SOURCE="sample",
        TFT_WAREHOUSE_PATH=str(root / "warehouse.duckdb"),
        TFT_TICKERS=",".join(DEFAULT_UNIVERSE[:tickers]),
        TFT_START_DATE=first_session,
        DAGSTER_HOME=str(home),
        PYTHONHASHSEED="0",
    )
    return env


def _measured_child(env: dict[str, str], first: str, last: str) -> dict[str, float]:
    """Run the range as one run in a child process; wall, CPU, peak memory and load."""
    load_before = _load()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_backfill", "child", first, last],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_bytes(process.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # wait4 gives the child's own rusage (its children's included once it has reaped them).
    stdout_chunks: list[str] = []
    reader = threading.Thread(
        target=lambda: stdout_chunks.append(process.stdout.read()), daemon=True
    )
    stderr_chunks: list[str] = []
    error_reader = threading.Thread(
        target=lambda: stderr_chunks.append(process.stderr.read()), daemon=True
    )
    reader.start()
    error_reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    reader.join()
    error_reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(
            f"backfill {first}..{last} failed ({process.returncode}):\n{''.join(stderr_chunks)[-4000:]}"
        )
    inner = json.loads("".join(stdout_chunks).strip().splitlines()[-1])
    return {
        "wall_s": round(wall, 2),
        "run_s": inner["run_s"],  # the run itself, without the interpreter's start and imports
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(max(peak[0], usage.ru_maxrss * 1024) / 2**20, 1),
        "load_1min_before": load_before,
        "load_1min_after": _load(),
    }


def backfill_and_daily(
    tickers: int, sessions: int, repeats: int = DAILY_REPEATS
) -> dict[str, dict[str, float] | int | str]:
    """A fresh backfill of ``sessions`` sessions ending on LAST_SESSION, then the daily run of
    the next session on the same instance and warehouse."""
    from tft_pipeline.trading_calendar import nyse_calendar

    calendar = nyse_calendar().sessions
    end = int(calendar.searchsorted(LAST_SESSION))
    first = f"{calendar[end - sessions + 1]:%Y-%m-%d}"
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as scratch:
        env = _environment(Path(scratch), tickers, first)
        backfill = _measured_child(env, first, LAST_SESSION)
        # The daily run three times (each re-books the same session from the state before it):
        # its median, since a few seconds on a shared machine move with the neighbours' load.
        repeats = [_measured_child(env, DAILY_SESSION, DAILY_SESSION) for _ in range(repeats)]
        daily = {
            key: statistics.median(run[key] for run in repeats)
            for key in ("wall_s", "run_s", "cpu_s", "peak_rss_mib")
        }
        daily["run_s_each"] = [run["run_s"] for run in repeats]
        daily["cpu_s_each"] = [run["cpu_s"] for run in repeats]
        daily["load_1min_each"] = [run["load_1min_before"] for run in repeats]
    backfill["s_per_session"] = round(backfill["run_s"] / sessions, 3)
    return {
        "tickers": tickers,
        "sessions": sessions,
        "first": first,
        "backfill": backfill,
        "daily": daily,
    }


def run(quick: bool = False) -> dict[str, object]:
    figures: dict[str, object] = {"last_session": LAST_SESSION, "cpus": os.cpu_count()}
    for tickers, lengths in QUICK_SIZES if quick else FULL_SIZES:
        for sessions in lengths:
            result = backfill_and_daily(tickers, sessions, 1 if quick else DAILY_REPEATS)
            key = f"{tickers}t_{sessions}s"
            figures[key] = result
            print(f"bench backfill {key}: {json.dumps(result)}", file=sys.stderr, flush=True)
        runs = {s: figures[f"{tickers}t_{s}s"] for s in lengths}
        shortest, longest = min(lengths), max(lengths)
        figures[f"{tickers}t_s_per_session_by_range"] = {
            str(s): r["backfill"]["s_per_session"] for s, r in runs.items()
        }
        figures[f"{tickers}t_daily_run_s_by_history"] = {
            str(s): r["daily"]["run_s"] for s, r in runs.items()
        }
        figures[f"{tickers}t_daily_cpu_s_by_history"] = {
            str(s): r["daily"]["cpu_s"] for s, r in runs.items()
        }
        # What each further session of range costs: the slope between consecutive ranges.
        ordered = sorted(lengths)
        figures[f"{tickers}t_marginal_s_per_session"] = {
            f"{a}->{b}": round(
                (runs[b]["backfill"]["run_s"] - runs[a]["backfill"]["run_s"]) / (b - a), 3
            )
            for a, b in itertools.pairwise(ordered)
        }
        if longest != shortest:
            figures[f"{tickers}t_daily_after_{longest}_vs_{shortest}"] = round(
                runs[longest]["daily"]["run_s"] / runs[shortest]["daily"]["run_s"], 2
            )
            figures[f"{tickers}t_daily_cpu_after_{longest}_vs_{shortest}"] = round(
                runs[longest]["daily"]["cpu_s"] / runs[shortest]["daily"]["cpu_s"], 2
            )
    if not quick:
        five_years, one_year = figures["50t_1250s"], figures["500t_250s"]
        figures["targets"] = {
            "5y_x_50_under_180s": five_years["backfill"]["wall_s"] < 180,
            "1y_x_500_under_300s": one_year["backfill"]["wall_s"] < 300,
            "peak_under_4GiB": max(
                r["backfill"]["peak_rss_mib"]
                for r in figures.values()
                if isinstance(r, dict) and "backfill" in r
            )
            < 4096,
            "daily_after_5y_within_1.5x_of_60": figures["50t_daily_after_1250_vs_60"] <= 1.5,
            "daily_after_5y_within_1.5x_of_60_500_tickers": (
                figures["500t_daily_after_1250_vs_60"] <= 1.5
            ),
        }
    return figures


def _child(first: str, last: str) -> None:
    """One single-run backfill of first..last, as ``python -m tft_pipeline run`` does it."""
    import io

    import pandas as pd
    from rich.console import Console

    from tft_pipeline.cli import _materialize_range
    from tft_pipeline.trading_calendar import sessions_between

    sessions = pd.DatetimeIndex(sessions_between(first, last))
    started = time.perf_counter()
    _materialize_range(sessions, Console(file=io.StringIO()))
    print(json.dumps({"run_s": round(time.perf_counter() - started, 2)}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        _child(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
