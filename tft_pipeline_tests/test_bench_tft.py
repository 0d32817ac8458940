"""The TFT benchmark's own code paths (``python -m bench tft``), at tiny sizes.

Marked ``tft`` (needs torch, .venv-tft); the comparison with the stock TFT also needs
pytorch-forecasting (``make bench-tft``) and is skipped without it.
"""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.tft


def test_both_tfts_are_judged_on_the_same_samples():
    """The stock TFT's windows are aligned on ours: the same fitting and validation samples, one
    epoch each, a finite validation log loss, and ours deterministic across its two runs."""
    pytest.importorskip("pytorch_forecasting")
    from bench.bench_tft import speed_figures

    figures = speed_figures(10, 150)
    assert figures["ours_train_samples"] == figures["reference_train_samples"] > 0
    assert figures["ours_validation_samples"] == figures["reference_validation_samples"] > 0
    assert figures["ours_deterministic"] is True
    for key in ("ours_validation_log_loss", "reference_validation_log_loss"):
        assert 0.3 < figures[key] < 1.0
    assert figures["ours_time_share_of_reference"] > 0


def test_peak_memory_is_the_process_own():
    """A spawned child reports its own peak (VmHWM), not the parent's (ru_maxrss survives exec)."""
    import multiprocessing

    from bench.bench_tft import _peak_rss_mb

    ballast = bytearray(300 * 1024 * 1024)  # the parent's peak is at least 300 MB
    ballast[::4096] = b"x" * len(ballast[::4096])
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        child = pool.apply(_peak_rss_mb)
    assert _peak_rss_mb() > 300
    assert not math.isnan(child) and child < 200


def test_the_known_base_rate_of_a_version_is_its_training_windows():
    """The reference of the benchmark's point-in-time Brier skill: for each version, the share of
    target-first labels among its window's rows (from its train start) known before its as-of."""
    import pandas as pd

    from bench.bench_tft import _known_base_rates

    labels = pd.DataFrame(
        {
            "session_date": pd.to_datetime(
                ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
            ),
            "label_known_on": pd.to_datetime(
                ["2024-01-08", "2024-01-09", "2024-01-20", "2024-01-09"]
            ),
            "label": [1.0, 1.0, 0.0, None],
        }
    )
    versions = pd.DataFrame(
        {"model_version": ["20240102-20240110-pabc-dabc", "20240103-20240121-pabc-dabc"]}
    )
    rates = _known_base_rates(labels, versions)
    # Known before 01-10: the first two rows (the third resolves on 01-20, the fourth never).
    assert rates["20240102-20240110-pabc-dabc"] == pytest.approx(1.0)
    # From 01-03, known before 01-21: rows two and three.
    assert rates["20240103-20240121-pabc-dabc"] == pytest.approx(0.5)
    assert set(rates) == set(versions["model_version"])
