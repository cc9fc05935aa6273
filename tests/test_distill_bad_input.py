"""Bad input to distillation and to distilled judges: a clear message, exit 2, nothing written or loaded.

The teacher's rows are written straight into a real ledger (both backends) with
the ledger's own API, so each case costs a CLI call, not a provider run; the
artifacts are real ones, trained in process on the same kind of data.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from judges.artifact import load_artifact, write_artifact
from judges.config import load_config
from judges.errors import ArtifactError
from ledger.models import Run
from ledger.rows import ItemIn, ScoreIn
from ledger.store import Ledger
from scheduler.distill import collect, train
from ledger.stores.teacher import VerdictRow

from .cli_runner import invoke
from .distill_data import records, teacher_label
from .processes import base_env

pytestmark = pytest.mark.timeout(240)

CONFIG = """
[judges.faithful]
type = "llm"
model = "openai/judge-small"
api_base = "http://127.0.0.1:9/v1"
api_key_env = "TEST_PROVIDER_KEY"
prompt = "inline"
prompt_text = "Grade this answer. Output: {output}"
"""


def teacher_version(config: Path) -> str:
    return load_config(config).resolve("faithful", check_env=False).version


def fill(url: str, config: Path, labels: list[str], *, status: str = "ok") -> str:
    """A run of the teacher with one row per label (status ``status``) over records of the test rule."""
    ledger = Ledger(url)
    version = teacher_version(config)
    run_id = f"run-{len(labels)}-{status}-{'-'.join(sorted(set(labels)))}"
    ledger.runs.create_run(Run(id=run_id, kind="offline", dataset_name="d", dataset_hash="h",
                          judges={"faithful": {"version": version}}, n_items=len(labels), expected=len(labels)))
    recs = list(records(len(labels), seed=3))
    ledger.runs.add_items(run_id, [ItemIn(r["id"], i, f"c{i}", r) for i, r in enumerate(recs)])
    ledger.scores.write_scores([ScoreIn(run_id=run_id, trace_id=r["id"], eval="faithful", judge_version=version,
                                 dataset="h", status=status,  # type: ignore[arg-type]
                                 score=None if status != "ok" else float(label == "pass"),
                                 label=None if status != "ok" else label,
                                 error=None if status == "ok" else "RateLimitError: slow down")
                         for r, label in zip(recs, labels)])
    return run_id


@pytest.fixture
def env(tmp_path: Path, empty_ledger_url: str) -> dict[str, str]:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    return base_env(JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_LEDGER_URL=empty_ledger_url)


def distill(tmp_path: Path, env: dict[str, str], *extra: str) -> Any:
    return invoke(["distill", "--teacher", "faithful", "--name", "faithful-mini", "--out",
                    str(tmp_path / "models"), *extra], env)


@pytest.mark.parametrize("case, expected", [
    ("none", "has no ok rows"),
    ("errors", "has errors only"),
    ("one class", "gave one label only ('pass', 60 rows)"),
    ("few", "too few verdicts of some labels"),
])
def test_unusable_teacher_rows_exit_2_and_write_nothing(tmp_path: Path, env: dict[str, str], case: str,
                                                        expected: str) -> None:
    config, url = Path(env["JUDGEQ_CONFIG"]), env["JUDGEQ_LEDGER_URL"]
    if case == "errors":
        fill(url, config, ["pass"] * 30, status="error")
    elif case == "one class":
        fill(url, config, ["pass"] * 60)
    elif case == "few":
        fill(url, config, ["pass"] * 60 + ["fail"] * 5)
    done = distill(tmp_path, env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert expected in done.stderr and "faithful" in done.stderr, done.stderr
    assert done.stderr.count("\n") <= 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "models").exists()


def test_unknown_run_and_bad_flags_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    for extra, says in [(["--runs", "nope"], "nope"), (["--target-agreement", "1.5"], "--target-agreement"),
                        (["--source", "s"], "--source and --windows go together")]:
        done = distill(tmp_path, env, *extra)
        assert done.returncode == 2 and says in done.stderr, done.stderr
    assert not (tmp_path / "models").exists()


def trained_artifact(folder: Path, config: Path, name: str = "faithful-mini") -> Path:
    recs = list(records(300, seed=4))
    rows = [VerdictRow(run_id="r", trace_id=r["id"], status="ok", label=teacher_label(r),
                       score=float(teacher_label(r) == "pass"), judge_version=teacher_version(config),
                       cluster=None, record=r) for r in recs]
    data = collect(rows, "faithful", teacher_version(config))
    data.check("test rows")
    result = train(data, 0.95)
    return write_artifact(folder, name, result.model, result.meta)


def test_artifact_round_trip_and_every_kind_of_tampering_is_refused(tmp_path: Path) -> None:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    path = trained_artifact(tmp_path / "models", tmp_path / "judgeq.toml")
    good = load_artifact(path)
    assert good.name == "faithful-mini" and good.meta["teacher"] == "faithful"
    assert path.name == f"faithful-mini-{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}.distilled"

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    altered = tmp_path / "altered" / path.name
    altered.parent.mkdir()
    altered.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="was altered"):
        load_artifact(altered)

    renamed = tmp_path / "altered" / "faithful-mini.distilled"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(ArtifactError, match="the name must be"):
        load_artifact(renamed)
    with pytest.raises(ArtifactError, match="not the one this judge was resolved with"):
        load_artifact(path, expected_sha256="0" * 64)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "missing-0123456789abcdef.distilled")


def forged(folder: Path, model_bytes: bytes, meta: dict[str, Any]) -> Path:
    """An artifact whose name matches its hash (as an attacker can make it) around ``model_bytes``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("meta.json", json.dumps({**meta, "model_sha256": hashlib.sha256(model_bytes).hexdigest()}))
        archive.writestr("model.skops", model_bytes)
    data = buffer.getvalue()
    folder.mkdir(exist_ok=True)
    path = folder / f"faithful-mini-{hashlib.sha256(data).hexdigest()[:16]}.distilled"
    path.write_bytes(data)
    return path


def test_an_artifact_holding_unknown_types_is_refused_unloaded(tmp_path: Path) -> None:
    """A model that would call a function on load (os.system through skops' function and reduce nodes)."""
    import os

    import skops.io as sio

    marker = tmp_path / "ran"
    evil = sio.dumps({"model": os.system, "arg": f"touch {marker}"})
    path = forged(tmp_path / "forged", evil, {"format": "judgeq-distilled/1", "name": "faithful-mini"})
    with pytest.raises(ArtifactError, match="refused unloaded: .*posix.system"):
        load_artifact(path)
    assert not marker.exists()


#: A catastrophic pattern: on "aaaa…a!" its backtracking doubles with each "a" (37 characters took 16 s).
CATASTROPHIC = r"(a+)+$"


@pytest.mark.parametrize("setting", [{"token_pattern": CATASTROPHIC}, {"ngram_range": (1, 500)},
                                     {"analyzer": "char"}, {"input": "filename"}])
def test_an_artifact_whose_vectorizer_reads_text_otherwise_than_distill_is_refused(
        tmp_path: Path, setting: dict[str, Any]) -> None:
    """Allowed types, dangerous settings: only in the fitted copy the pipeline runs, where a glance would not look."""
    import time

    import skops.io as sio

    (tmp_path / "judgeq.toml").write_text(CONFIG)
    path = trained_artifact(tmp_path / "models", tmp_path / "judgeq.toml")
    good = load_artifact(path)
    fitted = good.model.named_steps["features"].transformers_[1][1]  # the output's vectorizer, as fitted
    fitted.set_params(**setting)
    meta = {k: v for k, v in good.meta.items() if k != "model_sha256"}
    crafted = forged(tmp_path / "forged", sio.dumps(good.model), meta)
    name, value = next(iter(setting.items()))
    started = time.monotonic()
    with pytest.raises(ArtifactError, match=f"its text vectorizer has {name} = .*'judgeq distill' never writes"):
        load_artifact(crafted)
    assert time.monotonic() - started < 5
    with pytest.raises(ArtifactError, match="never writes"):  # nothing is written that could not be loaded
        write_artifact(tmp_path / "out", "faithful-mini", good.model, meta)
    assert not (tmp_path / "out").exists()


def test_wrong_judge_or_missing_artifact_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    config = Path(env["JUDGEQ_CONFIG"])
    path = trained_artifact(tmp_path / "models", config, name="other-mini")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records(5, seed=9)))
    cases = [
        (f'[judges.faithful-mini]\ntype = "distilled"\nartifact = "{path}"\n', "faithful-mini",
         "was trained as judge 'other-mini', not 'faithful-mini'"),
        ('[judges.faithful-mini]\ntype = "distilled"\nartifact = "models/gone-0123456789abcdef.distilled"\n',
         "faithful-mini", "does not exist"),
        (f'[judges.other-mini]\ntype = "distilled"\nartifact = "{path}"\n[judges.second]\ntype = "llm"\n'
         'model = "openai/x"\nprompt = "inline"\nprompt_text = "{{output}}"\n'
         '[judges.c]\ntype = "cascade"\nfirst = "other-mini"\nthen = "second"\n', "c",
         "was distilled from 'faithful', not 'second'"),
    ]
    for table, judge, says in cases:
        config.write_text(CONFIG + table)
        done = invoke(["submit", str(data), "--judge", judge], env)
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    with Ledger(env["JUDGEQ_LEDGER_URL"]) as ledger:
        assert ledger.runs.list_runs() == []
