"""judgeq.toml: loading, errors that name file/table/key, resolution and judge versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from judges.code_version import JUDGE_CODE_VERSION
from judges.base import Judge
from judges.config import JudgeConfig, load_config
from judges.errors import JudgeConfigError
from judges.prompt import builtin_template
from judges.build import build
from judges.resolved import ResolvedJudge

pytestmark = pytest.mark.timeout(30)

LLM_TABLE = """
[judges.faithfulness]
type = "llm"
model = "openai/gpt-4o-mini"
api_base = "http://127.0.0.1:8000/v1"
api_key_env = "JUDGEQ_TEST_KEY"
prompt = "prompts/faithfulness.md"
labels = { pass = 1.0, fail = 0.0 }
rpm = 600
tpm = 150000
timeout_s = 30
price_per_mtok_in = 0.15
price_per_mtok_out = 0.60
temperature = 0
"""

PROMPT = "Is this answer faithful?\nContext: {context}\nAnswer: {output}\n"


def write_config(folder: Path, text: str, prompt: str | None = PROMPT) -> Path:
    if prompt is not None:
        (folder / "prompts").mkdir(exist_ok=True)
        (folder / "prompts" / "faithfulness.md").write_text(prompt)
    path = folder / "judgeq.toml"
    path.write_text(text)
    return path


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("JUDGEQ_TEST_KEY", secret)
    return secret


# -- loading -------------------------------------------------------------------


def test_missing_default_file_is_an_empty_config_with_builtins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.judges == {} and config.path is None
    assert load_config(Path("judgeq.toml")).judges == {}  # the default, as settings pass it on
    assert {"exact_match", "contains", "json_valid", "context_overlap", "noop"} <= set(config.names())
    assert "regex" not in config.names()  # needs a pattern
    assert config.resolve("noop").kind == "local"


def test_default_file_in_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    write_config(tmp_path, LLM_TABLE)
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert list(config.judges) == ["faithfulness"]
    assert config.resolve("faithfulness").spec.prompt_text == PROMPT  # type: ignore[union-attr]


def test_missing_explicit_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(JudgeConfigError, match=r"nope\.toml.*does not exist"):
        load_config(tmp_path / "nope.toml")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[judges.x\ntype = 'llm'\n")
    with pytest.raises(JudgeConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "not valid TOML" in str(info.value)


def test_unknown_key_names_file_table_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, LLM_TABLE + 'temprature = 0.5\n')
    with pytest.raises(JudgeConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "[judges.faithfulness]" in message and "'temprature'" in message


def test_unknown_key_of_a_local_table_lists_the_builtin_parameters(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[judges.exact]\ntype = "local"\nbuiltin = "exact_match"\ncase_sensitiv = true\n')
    with pytest.raises(JudgeConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "[judges.exact]" in message and "'case_sensitiv'" in message and "case_sensitive" in message


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('type = "llm"\nprompt = "relevance"\n', "missing key 'model'"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nlabels = {pass = 1}\nscale = [1, 5]\n', "labels or scale"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nscale = [5, 1]\n', "low < high"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nrpm = 0\n', "rpm = 0"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nrps = 0\n', "rps = 0"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nburst = 5\n', "set rpm (or rps) too"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nrps = 4\nburst = 5\n', "lower burst to at most rps"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nrpm = 60\nburst = 0\n', "burst = 0"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nprice_per_mtok_in = 1.0\n', "price_per_mtok_out"),
        ('type = "llm"\nmodel = "m"\nprompt = "relevance"\nparams = {api_key = "x"}\n', "params may not set api_key"),
        ('type = "remote"\n', 'must be "llm", "local"'),
        ('builtin = "noop"\n', 'must be "llm", "local"'),
        ('type = "local"\nbuiltin = "nope"\n', "unknown builtin 'nope'; known builtins: contains"),
        ('type = "local"\nbuiltin = "regex"\n', "needs 'pattern'"),
        ('type = "local"\nbuiltin = "regex"\npattern = "(unclosed"\n', "not a valid regular expression"),
        ('type = "local"\nbuiltin = "context_overlap"\nthreshold = 1.5\n', "threshold = 1.5"),
    ],
)
def test_invalid_tables_are_rejected_with_table_and_reason(tmp_path: Path, table: str, needle: str) -> None:
    path = write_config(tmp_path, "[judges.j]\n" + table)
    with pytest.raises(JudgeConfigError) as info:
        load_config(path)
    assert "[judges.j]" in str(info.value) and str(path) in str(info.value)
    assert needle in str(info.value)


def test_api_key_env_that_looks_like_a_key_is_rejected_without_echoing_it(tmp_path: Path) -> None:
    secret = "sk-proj-abcdef0123456789"
    path = write_config(tmp_path, f'[judges.j]\ntype = "llm"\nmodel = "m"\nprompt = "relevance"\napi_key_env = "{secret}"\n')
    with pytest.raises(JudgeConfigError, match="NAME of an environment variable") as info:
        load_config(path)
    assert secret not in str(info.value)


def test_bad_judge_name_is_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[judges."a b"]\ntype = "local"\nbuiltin = "noop"\n')
    with pytest.raises(JudgeConfigError, match="judge name 'a b'"):
        load_config(path)


# -- resolution ----------------------------------------------------------------


def test_missing_prompt_file_names_file_and_judge(tmp_path: Path, key: str) -> None:
    config = load_config(write_config(tmp_path, LLM_TABLE, prompt=None))
    with pytest.raises(JudgeConfigError) as info:
        config.resolve("faithfulness")
    message = str(info.value)
    assert "'faithfulness'" in message and str(tmp_path / "prompts" / "faithfulness.md") in message


def test_prompt_without_output_placeholder_is_rejected(tmp_path: Path, key: str) -> None:
    config = load_config(write_config(tmp_path, LLM_TABLE, prompt="Judge this: {input}"))
    with pytest.raises(JudgeConfigError, match=r"no \{output\} placeholder"):
        config.resolve("faithfulness")


def test_an_inline_prompt_text_is_checked_too(tmp_path: Path, key: str) -> None:
    text = LLM_TABLE + 'prompt_text = "Judge {input} only"\n'
    with pytest.raises(JudgeConfigError, match=r"judge 'faithfulness': prompt_text has no \{output\}"):
        load_config(write_config(tmp_path, text)).resolve("faithfulness")


def test_prompt_may_name_a_builtin_template(tmp_path: Path, key: str) -> None:
    text = LLM_TABLE.replace('"prompts/faithfulness.md"', '"correctness"')
    resolved = load_config(write_config(tmp_path, text, prompt=None)).resolve("faithfulness")
    assert resolved.spec.prompt_text == builtin_template("correctness")  # type: ignore[union-attr]


def test_unset_api_key_variable_is_a_config_error_unless_check_env_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUDGEQ_TEST_KEY", raising=False)
    config = load_config(write_config(tmp_path, LLM_TABLE))
    with pytest.raises(JudgeConfigError) as info:
        config.resolve("faithfulness")
    assert str(info.value).startswith(
        "judge 'faithfulness' needs JUDGEQ_TEST_KEY; set it or change api_key_env in "
    )
    assert config.resolve("faithfulness", check_env=False).kind == "remote"


def test_unknown_judge_name_lists_the_known_names(tmp_path: Path, key: str) -> None:
    config = load_config(write_config(tmp_path, LLM_TABLE))
    with pytest.raises(JudgeConfigError) as info:
        config.resolve("faithfulnes")
    message = str(info.value)
    assert "unknown judge 'faithfulnes'" in message
    for name in ("faithfulness", "exact_match", "contains", "json_valid", "context_overlap", "noop"):
        assert name in message


def test_regex_by_name_alone_explains_that_it_needs_a_table() -> None:
    with pytest.raises(JudgeConfigError, match=r"builtin 'regex' needs pattern.*\[judges\.my_regex\]"):
        JudgeConfig().resolve("regex")


def test_a_table_may_shadow_a_builtin_name(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[judges.exact_match]\ntype = "local"\nbuiltin = "exact_match"\ncase_sensitive = true\n')
    resolved = load_config(path).resolve("exact_match")
    assert resolved.spec.params == {"case_sensitive": True}


def test_resolved_judge_round_trips_as_json_and_holds_no_secret(tmp_path: Path, key: str) -> None:
    resolved = load_config(write_config(tmp_path, LLM_TABLE)).resolve("faithfulness")
    text = json.dumps(resolved.to_message())
    assert key not in text and "JUDGEQ_TEST_KEY" in text
    again = ResolvedJudge.from_message(json.loads(text))
    assert again == resolved
    assert again.name == "faithfulness" and again.kind == "remote"
    assert again.spec.prompt_text == PROMPT  # type: ignore[union-attr]


def test_from_message_refuses_a_version_this_code_would_not_compute(tmp_path: Path, key: str) -> None:
    message = load_config(write_config(tmp_path, LLM_TABLE)).resolve("faithfulness").to_message()
    message["spec"]["prompt_text"] = "Something else: {output}"
    with pytest.raises(JudgeConfigError, match="computes faithfulness@"):
        ResolvedJudge.from_message(message)
    with pytest.raises(JudgeConfigError, match="not a valid resolved judge"):
        ResolvedJudge.from_message({"name": "x"})


def test_built_judges_satisfy_the_protocol(tmp_path: Path, key: str) -> None:
    config = load_config(write_config(tmp_path, LLM_TABLE))
    for name, kind in (("faithfulness", "remote"), ("noop", "local")):
        resolved = config.resolve(name)
        judge = build(resolved)
        assert isinstance(judge, Judge)
        assert (judge.name, judge.version, judge.kind) == (name, resolved.version, kind)


def test_importing_judges_does_not_import_litellm() -> None:
    code = (
        "import sys, judges.config, judges.build, judges.llm, judges.local, judges.parse\n"
        "from judges.config import JudgeConfig\n"
        "from judges.build import build\n"
        "build(JudgeConfig().resolve('noop'))\n"
        "assert 'litellm' not in sys.modules, 'litellm imported'\n"
        "assert not any(m.startswith(('celery', 'sqlmodel', 'sqlalchemy')) for m in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr


# -- judge versions ----------------------------------------------------------------


def version_of(tmp_path: Path, table: str = LLM_TABLE, prompt: str = PROMPT, name: str = "faithfulness") -> str:
    return load_config(write_config(tmp_path, table, prompt)).resolve(name).version


def test_version_format_and_stability(tmp_path: Path, key: str) -> None:
    first = version_of(tmp_path)
    assert first.startswith("faithfulness@") and len(first.split("@")[1]) == 12
    int(first.split("@")[1], 16)
    assert version_of(tmp_path) == first


def test_changing_the_prompt_text_changes_the_version(tmp_path: Path, key: str) -> None:
    assert version_of(tmp_path) != version_of(tmp_path, prompt=PROMPT.replace("faithful", "supported"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("rpm = 600", "rpm = 60"),
        ("tpm = 150000", "tpm = 1000"),
        ("timeout_s = 30", "timeout_s = 5"),
        ("price_per_mtok_in = 0.15", "price_per_mtok_in = 9.0"),
    ],
)
def test_operational_settings_do_not_change_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, old: str, new: str
) -> None:
    monkeypatch.setenv("OTHER_KEY", "x" * 10)
    assert old in LLM_TABLE
    assert version_of(tmp_path) == version_of(tmp_path, LLM_TABLE.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('model = "openai/gpt-4o-mini"', 'model = "openai/gpt-4o"'),
        ("temperature = 0", "temperature = 0.7"),
        ("labels = { pass = 1.0, fail = 0.0 }", "labels = { pass = 1.0, fail = 0.5 }"),
        ("labels = { pass = 1.0, fail = 0.0 }", "scale = [1, 5]"),
        ("temperature = 0", "temperature = 0\nparams = { max_tokens = 100 }"),
        # Who answers is part of the identity: another server, or another key (on a proxy, another deployment).
        ('api_base = "http://127.0.0.1:8000/v1"', 'api_base = "http://proxy:4000"'),
        ('api_base = "http://127.0.0.1:8000/v1"', 'api_base = "http://127.0.0.1:8001/v1"'),
        ('api_key_env = "JUDGEQ_TEST_KEY"', 'api_key_env = "OTHER_KEY"'),
        ('api_base = "http://127.0.0.1:8000/v1"\n', ""),
    ],
)
def test_verdict_settings_change_the_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str,
                                             old: str, new: str) -> None:
    monkeypatch.setenv("OTHER_KEY", "x" * 10)
    assert old in LLM_TABLE
    assert version_of(tmp_path) != version_of(tmp_path, LLM_TABLE.replace(old, new))


@pytest.mark.parametrize("same", ["http://127.0.0.1:8000/v1/", "HTTP://127.0.0.1:8000/v1", "http://127.0.0.1:8000//v1"])
def test_one_endpoint_spelled_another_way_keeps_the_version(tmp_path: Path, key: str, same: str) -> None:
    assert version_of(tmp_path) == version_of(tmp_path, LLM_TABLE.replace("http://127.0.0.1:8000/v1", same))


def test_moving_the_prompt_file_keeps_the_version(tmp_path: Path, key: str) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "faithfulness.md").write_text(PROMPT)
    moved = LLM_TABLE.replace('"prompts/faithfulness.md"', '"elsewhere/faithfulness.md"')
    assert version_of(tmp_path) == version_of(tmp_path, moved)


def test_local_versions_follow_builtin_and_parameters(tmp_path: Path) -> None:
    def local(params: str, builtin: str = "context_overlap") -> str:
        return version_of(tmp_path, f'[judges.j]\ntype = "local"\nbuiltin = "{builtin}"\n{params}\n', name="j")

    assert local("") == local("threshold = 0.5")  # defaults are part of the canonical form
    assert local("") != local("threshold = 0.6")
    assert local("", builtin="exact_match") != local("", builtin="contains")
    assert local('pattern = "a"', builtin="regex") != local('pattern = "b"', builtin="regex")


def test_code_versions_are_part_of_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import judges.catalog
    import judges.registry
    import judges.version

    before = JudgeConfig().resolve("noop").version
    with monkeypatch.context() as patch:
        patch.setattr(judges.version, "JUDGE_CODE_VERSION", JUDGE_CODE_VERSION + "-next")
        bumped_package = JudgeConfig().resolve("noop").version
    with monkeypatch.context() as patch:
        noop = judges.catalog.get_builtin("noop")
        patch.setitem(judges.registry._BUILTINS, "noop", dataclasses.replace(noop, code_version="999"))
        bumped_builtin = JudgeConfig().resolve("noop").version
    assert len({before, bumped_package, bumped_builtin}) == 3
    assert JudgeConfig().resolve("noop").version == before


def test_a_judge_needs_the_optional_fields_its_prompt_fills_in() -> None:
    """What submit requires of every record (judges.types.needed_fields): an LLM judge's {context}/{expected},
    a cascade's through its LLM stage; a prompt using neither needs nothing beyond output."""
    from judges.distilled_spec import CascadeJudgeSpec
    from judges.spec import LlmJudgeSpec
    from judges.types import needed_fields

    def llm(prompt: str, text: str | None = None) -> LlmJudgeSpec:
        return LlmJudgeSpec(type="llm", model="openai/j", prompt=prompt, prompt_text=text or builtin_template(prompt))

    assert needed_fields(llm("correctness")) == ("expected",)
    assert needed_fields(llm("faithfulness")) == ("context",)
    assert needed_fields(llm("inline", "{input} -> {output}")) == ()
    assert needed_fields(llm("inline", "{context} vs {expected}: {output}")) == ("context", "expected")
    then = ResolvedJudge.of("teacher", llm("correctness")).to_message()
    cascade = CascadeJudgeSpec(type="cascade", first="student", then="teacher", stages={"first": {}, "then": then})
    assert needed_fields(cascade) == ("expected",)
