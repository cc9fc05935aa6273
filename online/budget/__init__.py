"""The cost-budget controller: a cost owner sets USD per day, and the controller sets the sampling rates.

``controller.plan`` is the arithmetic (pure: it is given the clock's reading
and every number it needs, reads nothing and writes nothing), ``traffic``
turns the ledger's recent windows and scored rows into its inputs
(expected traffic by hour of day, expected cost per sampled item). The task
around them (beat's tick, reservations, the ledger's tables) is thin.
"""

from __future__ import annotations

from .controller import (
    DEFAULT_COST_PER_ITEM_USD,
    PlanInput,
    RatePlan,
    StratumDecision,
    StratumPlanInput,
    plan,
)
from .traffic import CostEstimate, cost_estimate, expected_traffic, minimums_ahead

__all__ = [
    "DEFAULT_COST_PER_ITEM_USD",
    "CostEstimate",
    "PlanInput",
    "RatePlan",
    "StratumDecision",
    "StratumPlanInput",
    "cost_estimate",
    "expected_traffic",
    "minimums_ahead",
    "plan",
]
