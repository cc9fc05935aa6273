"""Where a window's sampling rates come from: the seam the budget controller steers.

A rate is looked up per (schedule, judge, stratum), first in the ledger's
``sampling_rates`` table (written by ``set_sampling_rate``: the budget
controller, or a person), for the stratum and then for ``*`` (every stratum
of that judge), then in the schedule's ``[online.NAME.sampling]`` table
(``rates.STRATUM``, else ``rate``). ``plan_rates`` then raises small strata to
``min_per_stratum``. A window keeps the rates it was first judged at: a
rescan (late traces) samples at those, so every row of a stratum has one weight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from .sampling import SamplingPolicy

#: The stratum key of a ledger rate that applies to every stratum of a judge.
EVERY_STRATUM: Final = "*"


@dataclass(frozen=True)
class RateBook:
    """The base rates of one schedule: the ledger's over the config's."""

    policy: SamplingPolicy
    overrides: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def base(self, judge: str) -> Callable[[str], float]:
        """The judge's base rate of a stratum, before ``min_per_stratum``."""
        def rate(stratum: str) -> float:
            found = self.overrides.get((judge, stratum))
            if found is None:
                found = self.overrides.get((judge, EVERY_STRATUM))
            return self.policy.base_rate(stratum) if found is None else found

        return rate

    def highest(self, judge: str) -> float:
        """The highest base rate the judge can have for any stratum, seen or not (at most 1)."""
        own = [rate for (name, _), rate in self.overrides.items() if name == judge]
        return min(1.0, max([self.policy.rate, *self.policy.rates.values(), *own]))

    def source_of(self, judge: str, stratum: str) -> str:
        """Where the judge's rate of ``stratum`` comes from, for explanations."""
        if (judge, stratum) in self.overrides or (judge, EVERY_STRATUM) in self.overrides:
            return "the ledger's sampling_rates (set by the budget controller or a person)"
        return "the config's sampling table"
