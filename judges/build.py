"""Building a judge object from a resolved judge (:class:`judges.resolved.ResolvedJudge`).

This is the top of the package's import order (docs/architecture.md, "The
parts and their layers"): nothing in ``judges/`` imports it. What a judge of
each type is made of is its type's entry (:mod:`judges.types`); the LLM
judge's module is imported only when an LLM judge is built, so building a
local judge stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Judge
from .resolved import ResolvedJudge
from .types import judge_type
from .types.entry import Building

if TYPE_CHECKING:
    from .egress import EgressPolicy
    from .limits import RateLimiter
    from .retry import RetryPolicy


def build(
    resolved: ResolvedJudge,
    *,
    retry: RetryPolicy | None = None,
    max_workers: int | None = None,
    limiter: RateLimiter | None = None,
    egress: EgressPolicy | None = None,
) -> Judge:
    """The judge object for a resolved judge.

    ``retry``, ``max_workers``, ``limiter`` and ``egress`` apply to remote
    (LLM) judges only, a cascade's LLM stage included: the retry policy of
    each record, the number of records judged at once, the rate limiter its
    calls share (default: one per process), and where its key may be sent
    (default: the built-in provider pairs of :mod:`judges.egress`).
    """

    def build_stage(message: dict[str, Any]) -> Judge:
        return build(ResolvedJudge.from_message(message), retry=retry, max_workers=max_workers, limiter=limiter,
                     egress=egress)

    building = Building(retry, max_workers, limiter, egress, build_stage)
    return judge_type(resolved.spec).build(resolved.name, resolved.version, resolved.spec, building)
