"""The backfill benchmark's quick run: every figure is there (no timing is asserted: timings
belong in bench/results.json, not in tests)."""

import pytest

pytestmark = pytest.mark.slow


def test_the_quick_backfill_benchmark_reports_its_figures():
    from bench.bench_backfill import run

    figures = run(quick=True)
    for key in ("10t_10s", "10t_20s"):
        backfill, daily = figures[key]["backfill"], figures[key]["daily"]
        assert {"wall_s", "run_s", "cpu_s", "peak_rss_mib", "load_1min_before"} <= set(backfill)
        assert {"wall_s", "run_s", "cpu_s", "peak_rss_mib", "load_1min_each"} <= set(daily)
        for measured in (backfill, daily):
            assert measured["peak_rss_mib"] > 0 and measured["cpu_s"] > 0
    assert set(figures["10t_s_per_session_by_range"]) == {"10", "20"}
    assert set(figures["10t_daily_run_s_by_history"]) == {"10", "20"}
    assert "10->20" in figures["10t_marginal_s_per_session"]
