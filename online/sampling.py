"""Deterministic, stratified sampling of a window's traces, and why a trace was (not) judged.

Every trace gets a number u in [0, 1) from its *unit key* and the policy's salt:

    u = int.from_bytes(blake2b(f"{salt}\\x00{unit_key}".encode(), digest_size=8).digest(), "big") / 2**64

(Python's ``hashlib.blake2b``: the first 8 bytes of the digest of the UTF-8
text salt, NUL, unit key, read as a big-endian integer and divided by 2**64.)
The unit key is the trace id (``unit = "trace"``) or ``metadata.session_id``
(``unit = "session"``; a trace without one uses its own id). A trace is
sampled for a judge when ``u < p``, p being that judge's rate for the
trace's stratum (a rate of 1 takes every trace, even the one in 2**54 whose u
rounds to 1.0). So every judge, rerun and scheduler sees the same u; a lower
rate picks a subset of a higher one; a session shares one u, so a sampled
session is judged whole when its traces share a stratum; and anyone can
recompute why a trace was or was not judged (:func:`explain`).

The stratum is the value of the policy's ``strata`` field path, as text
(``"(none)"`` when the trace lacks it or it is null or empty; ``"all"`` without
strata). A sampled trace stands for 1/p traces of its stratum: that is its
weight in the estimates (ledger/stats.py). ``min_per_stratum`` raises the
rate of small strata so each window still sees some of them (:func:`plan_rates`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

from judges.record import CLUSTER_KEYS

from .errors import OnlineConfigError
from .fields import ALIASES, MISSING, Getter, canonical_path, compile_path, trace_id
from .filters import Filter, parse_where

Unit = Literal["trace", "session"]
ALL: Final = "all"
NONE: Final = "(none)"
KEYS: Final = ("salt", "unit", "sample_by", "strata", "rate", "rates", "min_per_stratum", "floor", "where")
_SCALE: Final = 2.0**-64
_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes
_new = tuple.__new__
_ID_KEYS: Final = ALIASES["id"]


def u_of(salt: str, unit_key: str) -> float:
    """The formula of the module docstring."""
    return _from_bytes(_blake2b(f"{salt}\x00{unit_key}".encode(), digest_size=8).digest(), "big") * _SCALE


def is_sampled(u: float, p: float) -> bool:
    """Whether a unit with ``u`` is sampled at rate ``p``."""
    return u < p or p >= 1.0


@dataclass(frozen=True)
class SamplingPolicy:
    """How the traces of an ``[online.NAME]`` schedule are sampled (the rates are its default; see :meth:`key`)."""

    salt: str = "judgeq"
    unit: Unit = "trace"
    strata: str | None = None
    rate: float = 1.0
    rates: Mapping[str, float] = field(default_factory=dict)
    min_per_stratum: int = 0
    floor: float = 0.0
    where: tuple[Filter, ...] = ()

    def base_rate(self, stratum: str) -> float:
        """The configured rate of ``stratum``: its own in ``rates``, else ``rate``."""
        return self.rates.get(stratum, self.rate)

    def key(self) -> str:
        """12 hex naming what decides u, the strata and the filters, but not the rates (nor the floor and
        ``min_per_stratum``, which only set rates).

        A window's run id is derived from it: changing the rates (which the
        budget controller does per window) keeps the runs, and sampling more
        later only adds traces to them; changing the salt, the unit, the
        strata or the filters samples other traces, so it makes new runs.
        """
        body = {"salt": self.salt, "unit": self.unit, "strata": self.strata,
                "where": sorted(f.spec() for f in self.where)}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        """The policy as JSON-safe values (stored in the run's meta)."""
        return {"salt": self.salt, "unit": self.unit, "strata": self.strata, "rate": self.rate,
                "rates": dict(self.rates), "min_per_stratum": self.min_per_stratum, "floor": self.floor,
                "where": [f.describe() for f in self.where], "key": self.key()}


class Decision(NamedTuple):
    """What sampling needs to know of one trace that passed the filters.

    The hot path builds it with ``tuple.__new__`` (half the cost of the
    generated constructor, which is a Python function).
    """

    trace_id: str
    u: float
    stratum: str
    cluster: str | None

    def sampled_at(self, p: float) -> bool:
        return self.u < p or p >= 1.0


def _share(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise OnlineConfigError(f"{where} {key}: {value!r} is not a rate; write a share from 0 to 1, "
                                "e.g. 0.02 for 2 %")
    return float(value)


def parse_policy(table: Mapping[str, Any], where: str) -> SamplingPolicy:
    """The policy of an ``[online.NAME.sampling]`` table; ``where`` (e.g. "judgeq.toml [online.prod.sampling]")
    starts every error message."""
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise OnlineConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    salt = table.get("salt", "judgeq")
    if not isinstance(salt, str) or not salt or "\x00" in salt:
        raise OnlineConfigError(f'{where} salt: {salt!r} cannot be a salt; write non-empty text, e.g. "judgeq"')
    if "unit" in table and "sample_by" in table:
        raise OnlineConfigError(f"{where}: unit and sample_by are one setting (two names); keep one")
    unit_key = "sample_by" if "sample_by" in table else "unit"
    unit = table.get(unit_key, "trace")
    if unit not in ("trace", "session"):
        raise OnlineConfigError(f'{where} {unit_key}: {unit!r} is not a sampling unit; write "trace" (each trace '
                                'on its own) or "session" (a sampled session is judged whole)')
    strata = table.get("strata")
    if strata is not None:
        strata = canonical_path(strata, f"{where} strata")
    rates = table.get("rates", {})
    if not isinstance(rates, Mapping):
        raise OnlineConfigError(f'{where} rates: write a table of rates by stratum, e.g. rates = {{ de = 0.05 }}')
    if rates and strata is None:
        raise OnlineConfigError(f'{where} rates: rates by stratum need strata; add e.g. strata = "metadata.locale"')
    minimum = table.get("min_per_stratum", 0)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise OnlineConfigError(f"{where} min_per_stratum: {minimum!r} is not a count; write a whole number "
                                "of traces, e.g. 30 (0 for none)")
    return SamplingPolicy(
        salt=salt,
        unit=unit,
        strata=strata,
        rate=_share(table.get("rate", 1.0), where, "rate"),
        rates=MappingProxyType({str(k): _share(v, where, f"rates.{k}") for k, v in rates.items()}),
        min_per_stratum=minimum,
        floor=_share(table.get("floor", 0.0), where, "floor"),
        where=parse_where(table.get("where", {}), f"{where} where"),
    )


def _stratum_of(get: Getter) -> Callable[[Mapping[str, Any]], str]:
    def stratum(raw: Mapping[str, Any]) -> str:
        value = get(raw)
        if value.__class__ is str:
            return value or NONE  # type: ignore[no-any-return]
        if value is MISSING:
            return NONE
        if value.__class__ is bool:
            return "true" if value else "false"
        return str(value) if value.__class__ in (int, float) else json.dumps(value, sort_keys=True)

    return stratum


def ident_of(raw: Mapping[str, Any]) -> str:
    """The trace's id, as :func:`online.fields.trace_id` gives it, with a fast path for a text id."""
    for key in _ID_KEYS:  # the first key present wins, as in the Record model
        ident = raw.get(key)
        if ident is not None:
            break
    if ident.__class__ is not str or not ident:  # a number, an empty id, no id: the general rule
        return trace_id(raw)
    return ident  # type: ignore[no-any-return]


class Decider:
    """Decides one raw trace at a time for a policy: about a microsecond per trace, no pydantic, no growing state."""

    def __init__(self, policy: SamplingPolicy) -> None:
        self.policy = policy
        self._prefix = policy.salt + "\x00"
        self._keeps = tuple(f.compile() for f in policy.where)
        self._stratum = _stratum_of(compile_path(policy.strata)) if policy.strata else None
        self._by_session = policy.unit == "session"

    def stratum(self, raw: Mapping[str, Any]) -> str:
        """The trace's stratum (whether or not the filters keep it)."""
        return self._stratum(raw) if self._stratum else ALL

    def filtered_by(self, raw: Mapping[str, Any]) -> Filter | None:
        """The first filter that leaves ``raw`` out, or None when it passes them all."""
        return next((f for f, keep in zip(self.policy.where, self._keeps, strict=True) if not keep(raw)), None)

    def unit_key(self, raw: Mapping[str, Any], ident: str) -> str:
        if self._by_session:
            meta = raw.get("metadata")
            session = meta.get("session_id") if meta.__class__ is dict else None
            if session is not None:
                return str(session)
        return ident

    def decide(self, raw: Mapping[str, Any]) -> Decision | None:
        """The trace's u, stratum and cluster; None when a ``where`` filter leaves it out."""
        for keep in self._keeps:
            if not keep(raw):
                return None
        ident = ident_of(raw)
        meta = raw.get("metadata")
        cluster = None
        if meta.__class__ is dict:
            for key in CLUSTER_KEYS:
                value = meta.get(key)  # type: ignore[union-attr]
                if value is not None:
                    cluster = value if value.__class__ is str else str(value)
                    break
        unit = self.unit_key(raw, ident) if self._by_session else ident
        u = _from_bytes(_blake2b((self._prefix + unit).encode(), digest_size=8).digest(), "big") * _SCALE
        return _new(Decision, (ident, u, self._stratum(raw) if self._stratum else ALL, cluster))


def plan_rates(counts: Mapping[str, int], base: Callable[[str], float], min_per_stratum: int = 0,
               floor: float = 0.0) -> dict[str, float]:
    """Each stratum's rate for one window and judge: ``clamp(max(base(s), min_per_stratum / count_s), floor, 1)``.

    ``counts`` are the traces per stratum that passed the filters. The
    expected sample of a stratum is then at least ``min_per_stratum`` (all
    of it when smaller) and at least ``floor`` of it. A stratum with no
    traces keeps its base rate.
    """
    rates = {}
    for stratum, count in counts.items():
        p = base(stratum)
        if count > 0:
            p = min(max(p, min_per_stratum / count, floor), 1.0)
        rates[stratum] = p
    return rates


@dataclass(frozen=True)
class Explanation:
    """Why one trace was or was not judged: ``outcome`` is "filtered", "not_sampled" or "sampled"."""

    trace_id: str
    outcome: Literal["filtered", "not_sampled", "sampled"]
    stratum: str | None = None
    unit_key: str | None = None
    u: float | None = None
    p: float | None = None
    filter: str | None = None
    value: str | None = None  # the field's value the filter saw

    @property
    def weight(self) -> float | None:
        """1/p for a sampled trace: how many traces of its stratum its verdict stands for."""
        return 1.0 / self.p if self.outcome == "sampled" and self.p else None

    def text(self) -> str:
        if self.outcome == "filtered":
            return f"{self.trace_id}: filtered out by where: {self.filter} (the trace has {self.value})"
        unit = "" if self.unit_key == self.trace_id else f", session {self.unit_key}"
        head = f"{self.trace_id} (stratum {self.stratum}{unit}): u = {self.u:.6f}"
        if self.outcome == "not_sampled":
            return f"{head} >= p = {self.p:.6g}: not sampled"
        return f"{head} < p = {self.p:.6g}: sampled, weight {self.weight:.6g}"


def explain(raw: Mapping[str, Any], policy: SamplingPolicy, rates: Mapping[str, float]) -> Explanation:
    """Recompute the decision for ``raw`` with the window's rates for one judge (a stratum not in ``rates``
    has its base rate)."""
    decider = Decider(policy)
    ident = ident_of(raw)
    stopped = decider.filtered_by(raw)
    if stopped is not None:
        seen = stopped.value_of(raw)
        return Explanation(ident, "filtered", filter=stopped.describe(),
                           value="no such field" if seen is MISSING else f"{stopped.path} = {json.dumps(seen)}")
    decision = decider.decide(raw)
    assert decision is not None
    p = rates.get(decision.stratum, policy.base_rate(decision.stratum))
    outcome: Literal["not_sampled", "sampled"] = "sampled" if decision.sampled_at(p) else "not_sampled"
    return Explanation(ident, outcome, decision.stratum, decider.unit_key(raw, ident), decision.u, p)
