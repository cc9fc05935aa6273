"""The ``local`` judge type: a registered builtin and its parameters (:class:`judges.local.LocalJudge`).

The builtins themselves are registered with ``@builtin`` (:mod:`judges.registry`) and looked up in
:mod:`judges.catalog`; this entry says what a judge type needs of one. The version hashes the
builtin's name, its code version and its validated parameters (defaults filled in).
"""

from __future__ import annotations

from typing import Any

from ..base import Judge
from ..catalog import get_builtin
from ..local import LocalJudge
from ..spec import LocalJudgeSpec
from .entry import Building, Description, JudgeType, Resolving


def _build(name: str, version: str, spec: LocalJudgeSpec, building: Building) -> Judge:
    return LocalJudge(name, version, get_builtin(spec.builtin).make(spec.params))


def _describe(spec: LocalJudgeSpec) -> Description:
    definition = f"builtin {spec.builtin}"
    if spec.params:
        definition += " " + " ".join(f"{k}={v}" for k, v in sorted(spec.params.items()))
    return Description(definition)


def _resolve(name: str, spec: LocalJudgeSpec, resolving: Resolving) -> LocalJudgeSpec:
    return spec  # parsing checked the parameters: nothing is read from elsewhere


def _inputs(spec: LocalJudgeSpec) -> dict[str, Any]:
    return {"builtin": spec.builtin, "params": spec.params}


LOCAL: JudgeType[LocalJudgeSpec] = JudgeType(
    name="local",
    spec=LocalJudgeSpec,
    kind="local",
    code=lambda spec: {"builtin": get_builtin(spec.builtin).code_version},
    inputs=_inputs,
    resolve=_resolve,
    build=_build,
    describe=_describe,
    needs=lambda spec: get_builtin(spec.builtin).needs,
)
