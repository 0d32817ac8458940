"""Progress of a run over a range of sessions: steps done of the run's steps, sessions each step
wrote, and an ETA from the time the finished steps took (pure: no Dagster).

A single-run backfill processes every session of its range in each step, so a run's progress is
its steps: after each one, ``RunProgress.step_done`` returns the line the run's log shows, e.g.
``progress: step 5/17 clean/price_history wrote 1,250/1,250 sessions (2020-01-02..2024-12-31) in
3.1s; run 42s, ETA 1m05s``. Listeners in the same process (the CLI's progress bar) get every
update too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressUpdate:
    """One finished step of a run."""

    run_id: str
    step: str
    label: str
    steps_done: int
    steps_total: int
    sessions_done: int
    sessions_total: int
    first: str
    last: str
    step_seconds: float
    elapsed_seconds: float
    eta_seconds: float | None

    def line(self) -> str:
        eta = (
            "done"
            if self.eta_seconds == 0
            else (
                f"ETA {format_duration(self.eta_seconds)}"
                if self.eta_seconds is not None
                else "ETA unknown"
            )
        )
        span = f" ({self.first}..{self.last})" if self.first else ""
        wrote = (
            f"{self.sessions_done:,}/{self.sessions_total:,} sessions{span}"
            if self.sessions_total
            else "its table"
        )
        return (
            f"progress: step {self.steps_done}/{self.steps_total} {self.label} wrote {wrote} in "
            f"{format_duration(self.step_seconds)}; run {format_duration(self.elapsed_seconds)}, {eta}"
        )


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


Listener = Callable[[ProgressUpdate], None]


@dataclass
class _RunState:
    started: float
    steps_total: int
    done: dict[str, float] = field(default_factory=dict)  # step -> when it finished
    last_finish: float = 0.0


class RunProgress:
    """Progress of the runs executing in this process (one process may run several, in turn)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._runs: dict[str, _RunState] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every update; returns the function that unsubscribes it."""
        with self._lock:
            self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def step_done(
        self,
        run_id: str,
        step: str,
        label: str,
        *,
        steps_total: int,
        sessions: list[str],
        sessions_total: int | None = None,
        run_started: float | None = None,
    ) -> ProgressUpdate:
        """Record that ``step`` wrote ``sessions`` (it may write several tables: counted once).

        ``run_started``: when the run started on this process's clock (default: the first update).
        The ETA assumes the remaining steps take the mean time of the finished ones.
        """
        now = self._clock()
        with self._lock:
            state = self._runs.get(run_id)
            if state is None:
                started = run_started if run_started is not None else now
                state = self._runs[run_id] = _RunState(started, steps_total, last_finish=started)
            state.steps_total = max(steps_total, len(state.done) + 1)
            step_seconds = now - state.last_finish
            if step not in state.done:
                state.done[step] = now
                state.last_finish = now
            done = len(state.done)
            elapsed = now - state.started
            remaining = state.steps_total - done
            eta = 0.0 if remaining <= 0 else (elapsed / done * remaining if done else None)
            listeners = list(self._listeners)
        ordered = sorted(sessions)
        update = ProgressUpdate(
            run_id=run_id,
            step=step,
            label=label,
            steps_done=done,
            steps_total=state.steps_total,
            sessions_done=len(ordered),
            sessions_total=sessions_total if sessions_total is not None else len(ordered),
            first=ordered[0] if ordered else "",
            last=ordered[-1] if ordered else "",
            step_seconds=step_seconds,
            elapsed_seconds=elapsed,
            eta_seconds=eta,
        )
        for listener in listeners:
            listener(update)
        return update

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)


# The process's tracker: the IO manager reports to it, the CLI listens to it.
RUN_PROGRESS = RunProgress()
