"""Benchmark of RateLimiter: the rate it achieves against the one configured, fake and real clocks."""

from __future__ import annotations

import itertools
import threading
import time

from tft_pipeline.retry import RateLimiter

FAKE_CLOCK_RATE = 5.0  # Reddit-like: a few calls per second
REAL_CLOCK_RATE = 100.0
THREADS = 4
# The time each call itself takes on the fake clock, cycled, all under the 0.2 s interval: the
# limiter's job is to hold callers faster than the rate down to it (a slower caller sets its own).
FAKE_WORK_SECONDS = (0.0, 0.05, 0.19, 0.01, 0.12)


def _achieved_rate(call_times: list[float]) -> float:
    """Calls per second between the first and the last call."""
    ordered = sorted(call_times)
    return (len(ordered) - 1) / (ordered[-1] - ordered[0])


def _error_pct(achieved: float, configured: float) -> float:
    return abs(achieved - configured) / configured * 100.0


def _fake_clock_run(calls: int) -> dict[str, float | int]:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(FAKE_CLOCK_RATE, clock=clock, sleep=sleep)
    call_times = []
    for n in range(calls):
        limiter.wait_if_needed()
        call_times.append(clock())
        now[0] += FAKE_WORK_SECONDS[n % len(FAKE_WORK_SECONDS)]
    achieved = _achieved_rate(call_times)
    return {
        "fake_clock_calls": calls,
        "fake_clock_configured_per_s": FAKE_CLOCK_RATE,
        "fake_clock_rate_per_s": round(achieved, 4),
        "fake_clock_rate_error_pct": round(_error_pct(achieved, FAKE_CLOCK_RATE), 4),
    }


def _real_clock_run(calls: int) -> dict[str, float | int]:
    limiter = RateLimiter(REAL_CLOCK_RATE)
    call_times: list[float] = []
    lateness: list[float] = []
    record_lock = threading.Lock()
    start = threading.Barrier(THREADS)
    per_thread = [calls // THREADS + (1 if i < calls % THREADS else 0) for i in range(THREADS)]

    def caller(count: int) -> None:
        start.wait()
        for _ in range(count):
            asked = time.monotonic()
            slept = limiter.wait_if_needed()
            woke = time.monotonic()
            with record_lock:
                call_times.append(woke)
                lateness.append(max(woke - asked - slept, 0.0))

    threads = [threading.Thread(target=caller, args=(count,)) for count in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    achieved = _achieved_rate(call_times)
    ordered = sorted(call_times)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
    return {
        "real_clock_calls": calls,
        "real_clock_threads": THREADS,
        "real_clock_configured_per_s": REAL_CLOCK_RATE,
        "real_clock_rate_per_s": round(achieved, 3),
        "real_clock_rate_error_pct": round(_error_pct(achieved, REAL_CLOCK_RATE), 3),
        "real_clock_mean_gap_ms": round(sum(gaps) / len(gaps) * 1000, 3),
        "real_clock_mean_oversleep_ms": round(sum(lateness) / len(lateness) * 1000, 3),
    }


def _reserve_overhead_us(calls: int) -> float:
    """Microseconds per uncontended ``wait_if_needed`` when no wait is due (the lock and the maths)."""
    limiter = RateLimiter(1e12)  # an interval far below the clock's resolution: never sleeps
    started = time.perf_counter()
    for _ in range(calls):
        limiter.wait_if_needed()
    return (time.perf_counter() - started) / calls * 1e6


def run(quick: bool = False) -> dict[str, float | int | str]:
    """Achieved vs configured rate: 1,000 calls on a fake clock, 200 calls by 4 threads on the real one."""
    figures: dict[str, float | int | str] = {}
    figures.update(_fake_clock_run(200 if quick else 1_000))
    figures.update(_real_clock_run(50 if quick else 200))
    figures["reserve_overhead_us"] = round(_reserve_overhead_us(10_000 if quick else 200_000), 3)
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
