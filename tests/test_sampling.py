"""Deterministic stratified sampling (online/sampling.py): u, policies, filters, rates, explanations."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from judges.record import Record
from online.errors import OnlineConfigError
from online.fields import trace_id
from online.sampling import (
    Decider,
    Decision,
    SamplingPolicy,
    explain,
    is_sampled,
    parse_policy,
    plan_rates,
    u_of,
)

from .processes import REPO

WHERE = "judgeq.toml [online.prod.sampling]"


def trace(i: int, **meta: Any) -> dict[str, Any]:
    return {"id": f"t{i:07d}", "input": f"question {i}", "output": "answer", "ts": "2026-11-22T13:00:00Z",
            "metadata": meta}


def decided(policy: SamplingPolicy, raws: list[dict[str, Any]]) -> list[Decision]:
    decider = Decider(policy)
    out = [decider.decide(r) for r in raws]
    return [d for d in out if d is not None]


def test_u_is_the_documented_formula_and_the_same_in_another_process() -> None:
    def by_hand(salt: str, key: str) -> float:
        digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    keys = [f"t{i}" for i in range(200)] + ["é-ü-漢字", ""]
    assert [u_of("judgeq", k) for k in keys] == [by_hand("judgeq", k) for k in keys]
    here = [d.u for d in decided(SamplingPolicy(), [{"id": k, "output": "x"} for k in keys[:-1]])]
    assert here == [by_hand("judgeq", k) for k in keys[:-1]]
    script = ("import json, sys; from online.sampling import Decider, SamplingPolicy; d = Decider(SamplingPolicy()); "
              "print(json.dumps([d.decide({'id': k, 'output': 'x'}).u for k in json.loads(sys.argv[1])]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own str hash is salted per process; u is not
    res = subprocess.run([sys.executable, "-c", script, json.dumps(keys[:-1])], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(res.stdout) == here
    assert u_of("other salt", "t1") != u_of("judgeq", "t1")


def test_lower_rates_pick_subsets_and_the_share_is_binomial() -> None:
    raws = [trace(i) for i in range(100_000)]
    ds = decided(SamplingPolicy(), raws)
    assert all(0.0 <= d.u < 1.0 for d in ds) and {d.stratum for d in ds} == {"all"}
    previous: set[str] = set()
    for p in (0.001, 0.01, 0.02, 0.1, 0.5):
        chosen = {d.trace_id for d in ds if d.sampled_at(p)}
        assert previous <= chosen  # every trace sampled at a lower rate is sampled at this one
        previous = chosen
        mean, sd = len(raws) * p, math.sqrt(len(raws) * p * (1 - p))
        assert abs(len(chosen) - mean) <= 4.5 * sd, (p, len(chosen), mean)
    assert all(d.sampled_at(1.0) for d in ds) and not any(d.sampled_at(0.0) for d in ds)
    assert is_sampled(1.0, 1.0)  # the one u in 2**54 that rounds to 1.0 is still taken at rate 1


def test_min_per_stratum_keeps_a_small_stratum_seen() -> None:
    # 20,000 traces; "is" is 0.5 % of them (100 traces). A 1 % uniform sample expects 1 of them per window.
    raws = [trace(i, locale="is" if i % 200 == 0 else "en") for i in range(20_000)]
    policy = parse_policy({"strata": "metadata.locale", "rate": 0.01, "min_per_stratum": 40}, WHERE)
    ds = decided(policy, raws)
    counts = Counter(d.stratum for d in ds)
    assert counts == {"en": 19_900, "is": 100}
    rates = plan_rates(counts, policy.base_rate, policy.min_per_stratum, policy.floor)
    assert rates == {"en": 0.01, "is": pytest.approx(0.4)}  # 40 of 19,900 is below 1 %: "en" keeps its rate
    sampled = Counter(d.stratum for d in ds if d.sampled_at(rates[d.stratum]))
    assert 20 <= sampled["is"] <= 60  # binomial(100, 0.4): mean 40, sd 4.9
    assert 130 <= sampled["en"] <= 270  # binomial(19,900, 0.01): mean 199, sd 14
    uniform = Counter(d.stratum for d in ds if d.sampled_at(0.01))
    assert uniform["is"] < 8  # what min_per_stratum is for


def test_plan_rates() -> None:
    rates = {"de": 0.2}
    base = lambda s: rates.get(s, 0.01)  # noqa: E731
    assert plan_rates({"de": 1000, "en": 100_000, "is": 10, "gone": 0}, base, 30, 0.0) == \
        {"de": 0.2, "en": 0.01, "is": 1.0, "gone": 0.01}
    assert plan_rates({"en": 100_000, "fr": 1000}, base, 0, 0.05) == {"en": 0.05, "fr": 0.05}
    assert plan_rates({"en": 100_000, "fr": 1000}, base, 100, 0.0) == {"en": 0.01, "fr": 0.1}
    assert plan_rates({}, base, 30, 0.0) == {}


def test_session_unit_judges_a_sampled_session_whole() -> None:
    raws = [trace(i, session_id=f"s{i // 7}", locale="de") for i in range(14_000)]
    raws += [trace(100_000 + i) for i in range(500)]  # no session: each trace on its own
    policy = parse_policy({"sample_by": "session"}, WHERE)
    ds = decided(policy, raws)
    by_session: dict[str, set[bool]] = {}
    for d in ds[:14_000]:
        assert d.cluster is not None
        by_session.setdefault(d.cluster, set()).add(d.sampled_at(0.1))
    assert all(len(outcomes) == 1 for outcomes in by_session.values())
    taken = sum(outcomes == {True} for outcomes in by_session.values())
    assert 140 <= taken <= 260  # of 2,000 sessions at 10 %
    assert [d.u for d in ds[14_000:]] == [u_of("judgeq", r["id"]) for r in raws[14_000:]]
    assert ds[0].u == u_of("judgeq", "s0") != u_of("judgeq", ds[0].trace_id)


def test_clusters_strata_and_ids_from_raw_records() -> None:
    policy = parse_policy({"strata": "metadata.locale"}, WHERE)
    decider = Decider(policy)
    d = decider.decide({"trace_id": 42, "response": "x", "metadata": {"user_id": 7, "locale": "de"}})
    assert d is not None and (d.trace_id, d.stratum, d.cluster) == ("42", "de", "7")
    both = decider.decide({"id": "a", "output": "x", "metadata": {"user_id": "u", "session_id": "s"}})
    assert both is not None and both.cluster == "s" and both.stratum == "(none)"
    for meta in ({}, {"locale": None}, {"locale": ""}):
        none = decider.decide({"id": "b", "output": "x", "metadata": meta})
        assert none is not None and none.stratum == "(none)"
    assert decider.decide({"id": "b", "output": "x", "metadata": {"locale": True}}).stratum == "true"  # type: ignore[union-attr]
    assert Decider(parse_policy({"strata": "metadata.tier"}, WHERE)).decide(
        {"id": "c", "output": "x", "metadata": {"tier": 2}}).stratum == "2"  # type: ignore[union-attr]
    # Without an id a trace gets the id the Record model would give it, under any alias.
    for raw in ({"query": "q", "response": "r", "metadata": {"k": 1}}, {"input": "q", "output": "r", "id": ""},
                {"output": "r", "retrieved_chunks": ["a", "b"], "reference": "e"}):
        assert trace_id(raw) == Record.model_validate(raw).id
        assert decider.decide(raw).trace_id == Record.model_validate(raw).id  # type: ignore[union-attr]


def test_filters() -> None:
    policy = parse_policy({"where": {
        "metadata.tenant": {"not_in": ["internal"]},
        "metadata.env": "prod",
        "metadata.is_judge": {"absent": True},
        "metadata.locale": {"in": ["de", "fr"]},
        "metadata.region": {"present": True},
        "metadata.tier": {"not_in": [1, True]},
    }}, WHERE)
    decider = Decider(policy)
    ok = {"tenant": "acme", "env": "prod", "locale": "de", "region": "eu"}
    assert decider.decide(trace(1, **ok)) is not None
    assert decider.decide(trace(1, **{k: v for k, v in ok.items() if k != "tenant"})) is not None  # not_in passes absent
    change: dict[str, Any]
    for change in ({"tenant": "internal"}, {"env": "dev"}, {"env": None}, {"is_judge": True}, {"is_judge": False},
                   {"locale": "en"}, {"locale": ["de"]}, {"region": None}, {"tier": 1}, {"tier": 1.0},
                   {"tier": True}):
        assert decider.decide(trace(1, **{**ok, **change})) is None, change
    for change in ({"tier": 2}, {"tier": False}, {"tier": "1"}, {"is_judge": None}, {"tier": {"x": 1}}):
        assert decider.decide(trace(1, **{**ok, **change})) is not None, change
    typed = Decider(parse_policy({"where": {"metadata.flag": True, "metadata.n": 1, "trace_id": {"not_in": ["x"]},
                                            "query": {"present": True}}}, WHERE))
    assert typed.decide({"id": "a", "query": "q", "output": "o", "metadata": {"flag": True, "n": 1.0}}) is not None
    assert typed.decide({"id": "a", "query": "q", "output": "o", "metadata": {"flag": 1, "n": 1}}) is None
    assert typed.decide({"id": "a", "query": "q", "output": "o", "metadata": {"flag": True, "n": True}}) is None
    assert typed.decide({"trace_id": "x", "input": "q", "output": "o", "metadata": {"flag": True, "n": 1}}) is None
    assert typed.decide({"id": "a", "output": "o", "metadata": {"flag": True, "n": 1}}) is None


def test_policy_key_ignores_rates_but_not_what_picks_traces() -> None:
    base = {"strata": "metadata.locale", "rate": 0.02, "where": {"metadata.tenant": {"not_in": ["a", "b"]}}}
    key = parse_policy(base, WHERE).key()
    assert len(key) == 12
    for same in ({"rate": 0.5}, {"rates": {"de": 0.3}}, {"floor": 0.01}, {"min_per_stratum": 30},
                 {"where": {"metadata.tenant": {"not_in": ["b", "a"]}}}, {"strata": "metadata.locale"}):
        assert parse_policy({**base, **same}, WHERE).key() == key, same
    assert parse_policy({**base, "where": {"trace_id": "x"}}, WHERE).key() == \
        parse_policy({**base, "where": {"id": "x"}}, WHERE).key()  # an alias is the same field
    keys = {key}
    other: dict[str, Any]
    for other in ({"salt": "s2"}, {"strata": "metadata.tenant"}, {"strata": None}, {"unit": "session"},
                  {"where": {}}, {"where": {"metadata.tenant": {"in": ["a", "b"]}}}):
        table = {k: v for k, v in {**base, **other}.items() if v is not None}
        keys.add(parse_policy(table, WHERE).key())
    assert len(keys) == 7
    assert parse_policy({}, WHERE) == SamplingPolicy()
    assert parse_policy(base, WHERE).describe()["where"] == ['metadata.tenant not in ["a", "b"]']


@pytest.mark.parametrize(
    "table,says",
    [
        ({"ratee": 0.1}, "unknown key 'ratee'; the keys are salt, unit, sample_by, strata, rate"),
        ({"rate": 1.5}, "rate: 1.5 is not a rate; write a share from 0 to 1"),
        ({"rate": "2%"}, "rate: '2%' is not a rate"),
        ({"rate": True}, "rate: True is not a rate"),
        ({"floor": -0.1}, "floor: -0.1 is not a rate"),
        ({"strata": "metadata.locale", "rates": {"de": 2}}, "rates.de: 2 is not a rate"),
        ({"rates": {"de": 0.1}}, "rates by stratum need strata"),
        ({"unit": "user"}, 'unit: \'user\' is not a sampling unit; write "trace"'),
        ({"unit": "trace", "sample_by": "trace"}, "one setting"),
        ({"salt": ""}, "cannot be a salt"),
        ({"min_per_stratum": 2.5}, "min_per_stratum: 2.5 is not a count"),
        ({"strata": "locale"}, "strata: 'locale' is not a record field .* write \"metadata.locale\""),
        ({"strata": "metadata."}, "is not a field path"),
        ({"strata": "input.lang"}, "holds text, not fields"),
        ({"where": ["x"]}, "where: write a table of conditions"),
        ({"where": {"metadata.locale": ["de", "fr"]}}, 'where \'metadata.locale\': for a list of values write '
                                                       '\\{ in = \\["de", "fr"\\] \\}'),
        ({"where": {"metadata.locale": {}}}, "an empty table; write one of in, not_in, present, absent"),
        ({"where": {"metadata.locale": {"eq": "de"}}}, "unknown condition 'eq'; write a value for equality"),
        ({"where": {"metadata.locale": {"in": "de"}}}, "in: write a non-empty list"),
        ({"where": {"metadata.locale": {"absent": "yes"}}}, "absent: write absent = true or absent = false"),
        ({"where": {"metadata.locale": {"in": [["de"]]}}}, "is not a value to compare with"),
        ({"where": {"tenant": "x"}}, "'tenant' is not a record field"),
    ],
)
def test_bad_policies_name_the_table_and_key(table: dict[str, Any], says: str) -> None:
    with pytest.raises(OnlineConfigError, match=says) as err:
        parse_policy(table, WHERE)
    assert str(err.value).startswith(WHERE)


def test_explain_recomputes_the_decision() -> None:
    policy = parse_policy({"strata": "metadata.locale", "rate": 0.02,
                           "where": {"metadata.tenant": {"not_in": ["internal"]}}}, WHERE)
    raws = [trace(i, locale="de") for i in range(400)]
    ds = decided(policy, raws)
    low = next(d for d in ds if d.u < 0.02)
    high = next(d for d in ds if d.u >= 0.02)
    sampled = explain(raws[ds.index(low)], policy, {"de": 0.02})
    assert (sampled.outcome, sampled.u, sampled.p, sampled.weight) == ("sampled", low.u, 0.02, 50.0)
    assert sampled.text() == f"{low.trace_id} (stratum de): u = {low.u:.6f} < p = 0.02: sampled, weight 50"
    skipped = explain(raws[ds.index(high)], policy, {"de": 0.02})
    assert (skipped.outcome, skipped.u, skipped.weight) == ("not_sampled", high.u, None)
    assert skipped.text() == f"{high.trace_id} (stratum de): u = {high.u:.6f} >= p = 0.02: not sampled"
    assert explain(raws[ds.index(high)], policy, {"de": 1.0}).outcome == "sampled"
    assert explain(raws[ds.index(high)], policy, {}).p == 0.02  # a stratum without a planned rate: its base rate
    out = explain(trace(7, tenant="internal"), policy, {"de": 0.02})
    assert out.outcome == "filtered" and out.u is None
    assert out.text() == ('t0000007: filtered out by where: metadata.tenant not in ["internal"] '
                          '(the trace has metadata.tenant = "internal")')
    absent = explain(trace(8), parse_policy({"where": {"metadata.env": "prod"}}, WHERE), {})
    assert absent.text() == 't0000008: filtered out by where: metadata.env = "prod" (the trace has no such field)'
    session = explain(trace(9, session_id="s1"), parse_policy({"unit": "session"}, WHERE), {"all": 0.5})
    assert session.unit_key == "s1" and session.u == u_of("judgeq", "s1") and ", session s1" in session.text()
