"""The budget simulation's world: its configuration, its traffic, its strata and what judging costs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

DAY = datetime(2026, 11, 22, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SimConfig:
    budget_usd: float = 50.0
    traces_per_hour: float = 40_000  # the day's mean: about a million traces a day
    window_minutes: int = 60
    strata: int = 20
    rare_share: float = 0.005
    min_items: int = 5
    cost_per_call: float = 0.004
    cost_noise: float = 0.5
    hit_rate_before: float = 0.2
    hit_rate_after: float = 0.6
    hit_jump_hour: float = 12.0
    spike_hour: int = 14
    spike_factor: float = 10.0
    lag_windows: float = 1.5
    history_days: int = 7
    day_noise: float = 0.1
    set_aside_minimums: bool = True  # pass the rest of the day's minimums to the plan (remaining_minimums_usd)
    outage: tuple[int, int] | None = None  # (from, to) hours: the windows closing then are planned at ``to``

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)


class SimClock:
    """The injectable clock: ``now()`` is wherever the simulation has moved it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def diurnal(hour: float) -> float:
    """Traffic relative to the day's mean per hour: 0.2 at 04:00, 1.8 at 16:00, mean 1."""
    return 0.2 + 1.6 * (1 - math.cos(2 * math.pi * (hour - 4) / 24)) / 2


@dataclass(frozen=True)
class World:
    """Who sends traces, how good the answers are, and what judging them costs."""

    cfg: SimConfig
    shares: np.ndarray
    quality: np.ndarray

    @classmethod
    def build(cls, cfg: SimConfig) -> World:
        k = np.arange(1, cfg.strata)
        common = k ** -0.8
        shares = np.append(common / common.sum() * (1 - cfg.rare_share), cfg.rare_share)
        quality = np.append(0.55 + 0.4 * (k - 1) / max(1, cfg.strata - 2), 0.5)
        return cls(cfg, shares, quality)

    def mean_count(self, start: datetime) -> float:
        mid = start + self.cfg.step / 2
        return self.cfg.traces_per_hour * diurnal(mid.hour + mid.minute / 60) * self.cfg.window_minutes / 60

    def window(self, rng: np.random.Generator, start: datetime, day_factor: float,
               spike: bool) -> tuple[np.ndarray, np.ndarray]:
        """(traces per stratum, passing traces per stratum) of one window."""
        counts = rng.multinomial(rng.poisson(self.mean_count(start) * day_factor), self.shares)
        passes = rng.binomial(counts, self.quality)
        if spike and start.hour == self.cfg.spike_hour:
            extra = rng.multinomial(rng.poisson(self.mean_count(start) * day_factor * (self.cfg.spike_factor - 1)),
                                    self.shares)
            counts, passes = counts + extra, passes + rng.binomial(extra, np.clip(self.quality - 0.35, 0.05, 1))
        return counts, passes

    def hit_rate(self, at: datetime) -> float:
        hours = (at - DAY).total_seconds() / 3600
        return self.cfg.hit_rate_before if hours < self.cfg.hit_jump_hour else self.cfg.hit_rate_after
