"""Where a worker's API keys may go: the key policy (judges/egress.py) against a capture server.

The fake provider records every request and its Authorization header, so "nothing was
sent" is a count of zero on a real HTTP server, through litellm, in a real worker process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from judges.config import JudgeConfig
from judges.egress import PLACEHOLDER_KEY, EgressPolicy, Endpoint
from judges.errors import EgressConfigError
from judges.llm import LlmJudge
from judges.record import Record
from judges.build import build
from judges.retry import RetryPolicy
from judges.types import parse_spec
from workers.settings import WorkerSettings

from .cli_runner import invoke
from .processes import Worker, base_env, run_cli
from .provider import FakeProvider
from .remote_judge import dataset

pytestmark = pytest.mark.timeout(120)

LEDGER_SECRET = "postgresql://judgeq:ledger-pw-5b1d@db.internal/judgeq"
WORKER_OPENAI_KEY = "sk-worker-openai-9c2e7f3a"


def judge_on(base: str | None, egress: EgressPolicy | None = None, **table: Any) -> LlmJudge:
    spec = {"type": "llm", "model": "openai/capture", "prompt": "inline", "prompt_text": "Answer: {output}",
            "timeout_s": 5, **({"api_base": base} if base else {}), **table}
    resolved = JudgeConfig(judges={"j": parse_spec("j", spec)}).resolve("j", check_env=False)
    judge = build(resolved, retry=RetryPolicy(attempts=1), egress=egress)
    assert isinstance(judge, LlmJudge)
    return judge


def verdict_of(judge: LlmJudge) -> Any:
    [verdict] = judge.judge([Record(id="r", output="GOOD")])
    return verdict


@pytest.fixture
def capture() -> Any:
    with FakeProvider() as provider:
        yield provider


def test_judgeq_settings_are_never_sent(capture: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGEQ_LEDGER_URL", LEDGER_SECRET)
    verdict = verdict_of(judge_on(capture.base_url, api_key_env="JUDGEQ_LEDGER_URL"))
    assert capture.count() == 0
    assert verdict.error_kind == "forbidden" and verdict.attempts == 0 and verdict.score is None
    assert "JUDGEQ_LEDGER_URL is one of judgeq's own settings" in verdict.error
    assert "name the provider's key variable" in verdict.error and LEDGER_SECRET not in verdict.error
    # Not even a trusted route (embedded mode's own config) may send one.
    trusted = judge_on(capture.base_url, api_key_env="JUDGEQ_LEDGER_URL")
    trusted.egress = EgressPolicy.defaults().trusting([trusted.spec])
    assert verdict_of(trusted).error_kind == "forbidden" and capture.count() == 0


def test_a_provider_key_goes_only_to_its_provider(capture: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", WORKER_OPENAI_KEY)
    verdict = verdict_of(judge_on(capture.base_url, api_key_env="OPENAI_API_KEY"))
    assert capture.count() == 0 and verdict.error_kind == "forbidden"
    assert f"OPENAI_API_KEY may not be sent to {capture.base_url}" in verdict.error
    assert "JUDGEQ_KEY_ENDPOINTS" in verdict.error


def test_an_allowed_pair_is_sent(capture: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_KEY", "sk-vllm-1234")
    policy = EgressPolicy.defaults().with_entries({"VLLM_KEY": [capture.base_url.removesuffix("/v1")]})
    verdict = verdict_of(judge_on(capture.base_url, policy, api_key_env="VLLM_KEY"))
    assert verdict.error is None and verdict.label == "pass"
    assert [c.authorization for c in capture.calls] == ["Bearer sk-vllm-1234"]


def test_a_judge_without_key_never_sends_the_workers_key(capture: FakeProvider,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no key, litellm would take OPENAI_API_KEY from the environment for an openai/ model."""
    monkeypatch.setenv("OPENAI_API_KEY", WORKER_OPENAI_KEY)
    verdict = verdict_of(judge_on(capture.base_url))
    assert verdict.error is None
    assert [c.authorization for c in capture.calls] == [f"Bearer {PLACEHOLDER_KEY}"]


def test_calls_that_could_carry_other_credentials_are_refused(capture: FakeProvider) -> None:
    # litellm arguments beyond generation settings could redirect the call or add callbacks.
    callbacks = verdict_of(judge_on(capture.base_url, params={"success_callback": ["langfuse"]}))
    # Providers that sign with credentials found on the machine (Google, AWS) stay on their own endpoints.
    vertex = verdict_of(judge_on(capture.base_url, model="vertex_ai/gemini-pro"))
    assert capture.count() == 0
    assert callbacks.error_kind == vertex.error_kind == "forbidden"
    assert "params success_callback are not accepted" in callbacks.error
    assert "may send credentials found on the worker" in vertex.error
    # Generation settings pass.
    assert verdict_of(judge_on(capture.base_url, params={"max_tokens": 50})).error is None


@pytest.mark.parametrize("api_base", [
    "https://api.openai.com.evil.example/v1",  # a longer host
    "https://api.openai.com@evil.example/v1",  # user info: the host is evil.example
    "http://api.openai.com/v1",                # another scheme
    "https://api.openai.com:8443/v1",          # another port
    "https://api.openai.com/v1/../../x",       # leaves the listed path
    "https://api.openai.com/v10",              # a path that only starts with the listed text
])
def test_endpoint_lookalikes_are_not_the_listed_endpoint(api_base: str) -> None:
    listed = Endpoint.parse("https://api.openai.com/v1")
    try:
        assert not listed.covers(Endpoint.parse(api_base))
    except ValueError:
        pass  # refused outright
    assert listed.covers(Endpoint.parse("HTTPS://API.OPENAI.COM:443/v1/"))
    assert listed.covers(Endpoint.parse("https://api.openai.com/v1/chat"))


def test_the_allow_list_setting_is_checked() -> None:
    entries = {"VLLM_KEY": ["http://vllm.internal:8000/v1"], "OPENAI_API_KEY": []}
    policy = WorkerSettings(key_endpoints=json.dumps(entries)).egress_policy()
    assert [str(e) for e in policy.keys["VLLM_KEY"]] == ["http://vllm.internal:8000/v1"]
    assert policy.keys["OPENAI_API_KEY"] == ()  # [] forbids a built-in pair
    assert [str(e) for e in policy.keys["ANTHROPIC_API_KEY"]] == ["https://api.anthropic.com"]
    for bad, says in [("{", "is not JSON"), ('{"K": "http://x"}', "list of base URLs"),
                      ('{"JUDGEQ_LEDGER_URL": ["http://x"]}', "judgeq's own settings"),
                      ('{"K": ["ftp://x"]}', "http:// or https://")]:
        with pytest.raises(EgressConfigError, match=says):
            WorkerSettings(key_endpoints=bad).egress_policy()


def test_a_worker_with_a_malformed_allow_list_does_not_start(redis_url: str) -> None:
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_KEY_ENDPOINTS='{"JUDGEQ_LEDGER_URL": ["http://x"]}')
    res = run_cli(["worker", "--queues", "remote"], env, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("judgeq: JUDGEQ_KEY_ENDPOINTS: JUDGEQ_LEDGER_URL is one of judgeq's own")


FLEET_CONFIG = """
[judges.leak_ledger]
type = "llm"
model = "openai/leak-ledger"
api_base = "{base}"
api_key_env = "JUDGEQ_LEDGER_URL"
prompt_text = "Answer: {{output}}"
prompt = "inline"

[judges.leak_openai]
type = "llm"
model = "openai/leak-openai"
api_base = "{base}"
api_key_env = "OPENAI_API_KEY"
prompt_text = "Answer: {{output}}"
prompt = "inline"

[judges.keyless]
type = "llm"
model = "openai/keyless"
api_base = "{base}"
prompt_text = "Answer: {{output}}"
prompt = "inline"

[judges.allowed]
type = "llm"
model = "openai/allowed"
api_base = "{base}"
api_key_env = "TEST_PROVIDER_KEY"
prompt_text = "Answer: {{output}}"
prompt = "inline"
"""


@pytest.mark.timeout(180)
def test_a_worker_sends_no_key_its_operator_did_not_allow(tmp_path: Path, redis_url: str, sqlite_url: str) -> None:
    """The issue's attack through a real worker: a submitted judge.toml asks for the ledger URL and the
    worker's provider key to go to a capture server. Nothing of them arrives; the rows say why."""
    data = dataset(tmp_path / "golden.jsonl", 6)
    with FakeProvider() as capture:
        (tmp_path / "judgeq.toml").write_text(FLEET_CONFIG.format(base=capture.base_url))
        env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=sqlite_url,
                       JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), OPENAI_API_KEY=WORKER_OPENAI_KEY,
                       TEST_PROVIDER_KEY="sk-test-allowed",
                       JUDGEQ_KEY_ENDPOINTS=json.dumps({"TEST_PROVIDER_KEY": [capture.base_url]}))
        worker = Worker("remote", env, "--concurrency", "2").wait_ready()
        try:
            res = invoke(["submit", str(data), "--judge", "leak_ledger", "--judge", "leak_openai",
                          "--judge", "keyless", "--judge", "allowed", "--wait", "--json", "--timeout", "120"],
                         env)
        finally:
            worker.stop()
        calls = capture.calls
    # Refused judges are a configuration error of the fleet, not verdicts: exit 2, naming the cause.
    assert res.returncode == 2, res.stderr
    assert "forbidden" in res.stderr and "JUDGEQ_KEY_ENDPOINTS" in res.stderr
    assert json.loads(res.stdout)["complete"] is True
    by_model: dict[str, set[str]] = {}
    for call in calls:
        by_model.setdefault((call.body or {}).get("model", "?"), set()).add(call.authorization)
    assert by_model == {"keyless": {f"Bearer {PLACEHOLDER_KEY}"}, "allowed": {"Bearer sk-test-allowed"}}
    seen = json.dumps([c.body for c in calls]) + " ".join(c.authorization for c in calls)
    assert sqlite_url not in seen and WORKER_OPENAI_KEY not in seen
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(text("select eval, status, error_kind, error from scores")).all()
    engine.dispose()
    outcome = {(r.eval, r.status, r.error_kind) for r in rows}
    assert outcome == {("leak_ledger", "error", "forbidden"), ("leak_openai", "error", "forbidden"),
                       ("keyless", "ok", None), ("allowed", "ok", None)}
    assert len(rows) == 24
    errors = {r.eval: r.error for r in rows if r.error}
    assert "EgressRefused: judge 'leak_ledger' refused by the worker's key policy" in errors["leak_ledger"]
    assert "ask the fleet's operator to add" in errors["leak_openai"]


WORKER_AWS_KEY_ID = "AKIAWORKERIDENTITY01"
BEDROCK_MODEL = "bedrock/anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def worker_aws_identity(capture: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's own AWS identity in its environment, and AWS's bedrock endpoint redirected to the capture."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", WORKER_AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-aws-secret-0f3c")
    monkeypatch.setenv("AWS_REGION_NAME", "us-east-1")
    monkeypatch.setenv("AWS_BEDROCK_RUNTIME_ENDPOINT", capture.base_url.removesuffix("/v1"))


@pytest.mark.parametrize("model", [BEDROCK_MODEL, "anthropic.claude-3-haiku-20240307-v1:0",  # bedrock, no prefix
                                   "vertex_ai/gemini-1.5-pro", "gemini-1.5-pro",  # litellm routes it to vertex_ai
                                   "sagemaker/my-endpoint", "azure_ai/some-deployment"])
def test_a_keyless_cloud_model_is_refused_unless_listed(capture: FakeProvider, worker_aws_identity: None,
                                                        model: str) -> None:
    """No key and no endpoint: the provider would sign with the worker's own identity, billing its account."""
    verdict = verdict_of(judge_on(None, model=model))
    assert capture.count() == 0 and verdict.error_kind == "forbidden" and verdict.attempts == 0
    assert "would authenticate with the worker's own cloud identity" in verdict.error
    assert "JUDGEQ_CLOUD_MODELS" in verdict.error and WORKER_AWS_KEY_ID not in verdict.error


def test_a_listed_cloud_model_runs_on_the_workers_identity(capture: FakeProvider, worker_aws_identity: None) -> None:
    """What the refusal prevents: listed, the same judge reaches AWS's endpoint signed as the worker."""
    for listed in (["bedrock"], [BEDROCK_MODEL]):
        policy = WorkerSettings(cloud_models=json.dumps(listed)).egress_policy()
        capture.reset()
        verdict_of(judge_on(None, policy, model=BEDROCK_MODEL))
        assert capture.count() >= 1
        assert capture.calls[0].authorization.startswith(f"AWS4-HMAC-SHA256 Credential={WORKER_AWS_KEY_ID}/")
    other = WorkerSettings(cloud_models='["vertex_ai/gemini-1.5-pro"]').egress_policy()
    capture.reset()
    assert verdict_of(judge_on(None, other, model=BEDROCK_MODEL)).error_kind == "forbidden" and capture.count() == 0


@pytest.mark.parametrize("bad", ["bedrock", '{"bedrock": true}', '["bed rock"]', '[""]'])
def test_a_malformed_cloud_listing_is_a_config_error(bad: str) -> None:
    with pytest.raises(EgressConfigError, match="JUDGEQ_CLOUD_MODELS"):
        WorkerSettings(cloud_models=bad).egress_policy()


CLOUD_CONFIG = f"""
[judges.cloud]
type = "llm"
model = "{BEDROCK_MODEL}"
prompt_text = "Answer: {{output}}"
prompt = "inline"
"""


def test_submit_to_a_fleet_refuses_an_unlisted_keyless_cloud_model(tmp_path: Path, redis_url: str,
                                                                    sqlite_url: str) -> None:
    """At submit: exit 2 naming what to list, before a run row or a message exists; listed, the run is sent."""
    data = dataset(tmp_path / "golden.jsonl", 3)
    (tmp_path / "judgeq.toml").write_text(CLOUD_CONFIG)
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"))
    res = invoke(["submit", str(data), "--judge", "cloud"], env)
    assert res.returncode == 2, res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "would authenticate with the worker's own cloud identity" in line
    assert "JUDGEQ_CLOUD_MODELS='[\"bedrock\"]'" in line
    assert invoke(["runs", "--json"], env).stdout.strip() in ("[]", "")
    env["JUDGEQ_CLOUD_MODELS"] = '["bedrock"]'
    res = invoke(["submit", str(data), "--judge", "cloud", "--json"], env)
    assert res.returncode == 0 and json.loads(res.stdout)["enqueued"] is True, res.stderr
