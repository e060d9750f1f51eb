"""Where a batch runs: on the event loop itself, or handed to a worker thread.

Handing a batch to a worker thread and back (a future, a queue, two thread wake-ups, a wake-up of the loop)
costs more CPU than a small model's whole run: an MLP runs in about 30 us. Setting ``inline_run_us``: a
batch expected to take less than that runs on the event loop, which is held no longer than a request's own
parsing takes. Everything else, every batch until ``MEASURED_FIRST`` runs were measured in worker threads,
and every model whose runs wait rather than compute (a GPU, a sleeping test double), runs in the executor.
"""

from __future__ import annotations

MEASURED_FIRST = 8  # runs measured in the executor before any runs inline, and again after a slow inline run
WALL_FACTOR = 4  # a run's wall time may exceed the limit this much (the waits for a core on a busy machine)
SMOOTHING = 0.2  # weight of the newest run in the moving averages


class InlinePolicy:
    """Moving averages of recent runs' CPU time (on the running thread), wall time and rows."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s  # 0: never inline
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self.rows = 1.0
        self.measured = 0  # runs measured in the executor since the last reset
        self.inline_runs = 0

    def inline(self, rows: int) -> bool:
        """Run a batch of ``rows`` on the event loop? Only when recent runs of this size were cheap."""
        if not self.limit_s or self.measured < MEASURED_FIRST:
            return False
        scale = max(1.0, rows / max(1.0, self.rows))  # mostly a fixed cost per batch; more for larger ones
        return self.cpu_s * scale < self.limit_s and self.wall_s * scale < WALL_FACTOR * self.limit_s

    def record(self, rows: int, cpu_s: float, wall_s: float, *, inline: bool) -> None:
        if inline:
            self.inline_runs += 1
            if wall_s > WALL_FACTOR * self.limit_s:  # slower than promised: measure in the executor again
                self.measured = 0
        else:
            self.measured += 1
        self.cpu_s += SMOOTHING * (cpu_s - self.cpu_s)
        self.wall_s += SMOOTHING * (wall_s - self.wall_s)
        self.rows += SMOOTHING * (rows - self.rows)
