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
