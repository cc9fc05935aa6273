"""The ``[judges.NAME]`` tables of distilled judges and cascades (see :mod:`judges.distilled`, :mod:`judges.cascade`).

Their registry entries are :mod:`judges.types.distilled` and :mod:`judges.types.cascade`.

``type = "distilled"``: ``artifact``, the path of a file ``judgeq distill``
wrote. Resolution fills ``sha256`` (the file's) and makes the path absolute.

``type = "cascade"``: ``first`` (a distilled judge), ``then`` (the LLM judge
it was trained on), ``threshold`` (the confidence at which the first verdict
stands; default: the one ``distill`` proposed) and ``audit`` (the share of
confident items that also go to ``then``). Resolution inlines both judges'
resolved messages (``stages``), so a worker needs nothing but the message and
the artifact file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from .spec import Spec


class DistilledJudgeSpec(Spec):
    """A local judge running a distilled model from an artifact file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["distilled"]
    artifact: Annotated[str, Field(min_length=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class CascadeJudgeSpec(Spec):
    """A distilled judge first, an LLM judge for what it is unsure of (and an audit sample)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cascade"]
    first: Annotated[str, Field(min_length=1)]
    then: Annotated[str, Field(min_length=1)]
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    audit: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    #: After resolution: {"first": message, "then": message} (``ResolvedJudge.to_message``).
    stages: dict[str, dict[str, Any]] | None = None
