"""Remaining-time estimate of a progressive run (the ``eta=`` field of ``darkgan train``'s bar).

A step at the last scale of ``small`` costs ~20x a step at the first (``paper``: ~26x), so the
usual "remaining steps / current rate" ETA says minutes for a multi-hour run while scale 0 trains.
:class:`RemainingTime` instead measures seconds per unit of cost at the current scale and prices
the remaining steps of every scale with :func:`step_costs`, an analytic count of the
convolution work of one step. Within a scale the estimate follows the measured rate (the
shipped run's scale 5: within ~5 %); for the scales still to come it is only as good as the
cost model, which, against the measured ``small`` rates on 2 CPU cores (10 / 3.6 / 1.68 / 0.99 /
0.68 / 0.43 steps/s), prices scales 1-3 up to 50 % too high relative to scale 0 and scale 5
12 % too low (scale 0, the reference, is more overhead-bound than the model assumes).
"""
from __future__ import annotations

import time

from darkgan.models.config import Config


def step_costs(cfg: Config) -> list[float]:
    """Relative cost of one training step at each scale: the 3x3-convolution GMACs of the ~4
    generator and ~16 critic passes of a step (forward, backward, the penalty's double backward)
    for the scale's batch, plus one GMAC of fixed per-step overhead (kernel launches, data).

    Returns:
        ``[n_scales]`` positive floats (GMAC-equivalents per step).
    """
    m = cfg.model

    def cumulative_macs(ch: tuple[int, ...]) -> list[float]:
        out, total = [], 0.0
        for j in range(m.n_scales):
            h, w = m.scale_shape(j)
            c_in = ch[j - 1] if j else ch[0]
            total += h * w * 9 * (c_in * ch[j] + (m.convs_per_block - 1) * ch[j] ** 2)
            out.append(total)
        return out

    g, d = cumulative_macs(tuple(m.channels)), cumulative_macs(m.d_channels)
    return [int(cfg.train.batch_size[s]) * (4 * g[s] + 16 * d[s]) / 1e9 + 1.0 for s in range(m.n_scales)]


class RemainingTime:
    """Smoothed seconds-per-cost at each scale -> seconds left in the run.

    Args:
        starts: first step of each scale; iterations: steps of each scale; costs: :func:`step_costs`.
    """

    def __init__(self, starts: list[int], iterations: list[int], costs: list[float], smoothing: float = 0.1):
        self.starts, self.iters, self.costs, self.smoothing = starts, iterations, costs, smoothing
        self.sec_per_cost: dict[int, float] = {}
        self.latest: float | None = None
        self._t: float | None = None

    def _scale(self, step: int) -> int:
        for s in range(len(self.starts) - 1, -1, -1):
            if self.iters[s] and step >= self.starts[s]:
                return s
        return 0

    def tick(self, step: int, now: float | None = None) -> None:
        """Record that step ``step`` just finished (the first call only starts the clock)."""
        now = time.monotonic() if now is None else now
        if self._t is not None:
            s = self._scale(step)
            spc = (now - self._t) / self.costs[s]
            old = self.sec_per_cost.get(s)
            self.sec_per_cost[s] = spc if old is None else (1 - self.smoothing) * old + self.smoothing * spc
            self.latest = self.sec_per_cost[s]
        self._t = now

    def pause(self) -> None:
        """Forget the clock (after a checkpoint or sample write, so it is not priced as a step)."""
        self._t = None

    def seconds_left(self, next_step: int) -> float | None:
        """Estimated seconds from ``next_step`` to the end; ``None`` before the first measurement."""
        ref = self.sec_per_cost.get(self._scale(next_step), self.latest)
        if ref is None:
            return None
        left = 0.0
        for s, (start, n) in enumerate(zip(self.starts, self.iters)):
            left += max(0, start + n - max(next_step, start)) * self.costs[s]
        return left * ref


def format_seconds(seconds: float | None) -> str:
    """``H:MM:SS`` (``?`` for ``None``)."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
