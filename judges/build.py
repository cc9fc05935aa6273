"""Building a judge object from a resolved judge (:class:`judges.resolved.ResolvedJudge`).

This is the top of the package's import order (docs/architecture.md, "The
parts and their layers"): it may import every judge type, and nothing in
``judges/`` imports it. The LLM judge's module is imported only when an LLM
judge is built, so building a local judge stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Judge
from .catalog import get_builtin
from .distilled_spec import CascadeJudgeSpec, DistilledJudgeSpec
from .local import LocalJudge
from .spec import LlmJudgeSpec

if TYPE_CHECKING:
    from .egress import EgressPolicy
    from .limits import RateLimiter
    from .resolved import ResolvedJudge
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
    (LLM) judges only: the retry policy of each record, the number of records
    judged at once, the rate limiter its calls share (default: one per
    process), and where its key may be sent (default: the built-in provider
    pairs of :mod:`judges.egress`).
    """
    spec = resolved.spec
    if isinstance(spec, LlmJudgeSpec):
        from .llm import LlmJudge

        return LlmJudge(resolved.name, resolved.version, spec, retry=retry, max_workers=max_workers, limiter=limiter,
                        egress=egress)
    if isinstance(spec, DistilledJudgeSpec | CascadeJudgeSpec):
        from .distilled_build import build_distilled

        return build_distilled(resolved, lambda stage: build(stage, retry=retry, max_workers=max_workers,
                                                             limiter=limiter, egress=egress))
    return LocalJudge(resolved.name, resolved.version, get_builtin(spec.builtin).make(spec.params))
