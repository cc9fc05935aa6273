"""How the CLI hands its settings to the library: one settings object from the flags, never the environment.

And ``report`` and ``gate`` take the options they share from one declaration.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(120)

CONFIG = '[judges.same]\ntype = "local"\nbuiltin = "exact_match"\n'
RECORDS = '{"id": "a", "output": "x", "expected": "x"}\n{"id": "b", "output": "x", "expected": "y"}\n'


def test_global_flags_reach_an_embedded_submit_over_the_environment(tmp_path: Path) -> None:
    """The flags name a config and a ledger; the environment names others that would fail if read."""
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    dataset = tmp_path / "golden.jsonl"
    dataset.write_text(RECORDS)
    ledger = f"sqlite:///{tmp_path / 'flag.db'}"
    env = base_env(JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'no-such-folder' / 'env.db'}",
                   JUDGEQ_CONFIG=str(tmp_path / "missing.toml"), TMPDIR=str(tmp_path))
    res = invoke(["--ledger-url", ledger, "--config", str(tmp_path / "judgeq.toml"), "submit", str(dataset),
                  "--judge", "same", "--wait", "--json"], env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run = json.loads(res.stdout)["run"]
    listed = invoke(["--ledger-url", ledger, "runs", "--json"], env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [run["id"]]
    assert not (tmp_path / "no-such-folder").exists()


def test_the_flags_are_not_written_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    for name in ("JUDGEQ_LEDGER_URL", "JUDGEQ_CONFIG", "JUDGEQ_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    ledger = f"sqlite:///{tmp_path / 'l.db'}"
    with pytest.raises(SystemExit) as exit_:
        app(["--ledger-url", ledger, "--config", str(tmp_path / "judgeq.toml"), "db", "upgrade"])
    assert exit_.value.code == 0
    assert (tmp_path / "l.db").exists()
    assert not {"JUDGEQ_LEDGER_URL", "JUDGEQ_CONFIG", "JUDGEQ_BROKER_URL"} & set(os.environ)


def test_report_and_gate_take_the_shared_options_from_one_declaration() -> None:
    import typer

    from cli.main import app
    from cli.options import ReportArgs

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    shared = [f.name for f in dataclasses.fields(ReportArgs)]
    gate = [p.name for p in commands["gate"].params]
    report = [p.name for p in commands["report"].params]
    assert gate == ["run_id", *shared]  # in the order their help has always listed them
    assert report[: len(shared)] == ["run_id", *shared[:-1]] and report[-1] == "fail_on_errors"
    assert {p.name: p.default for p in commands["gate"].params if p.name == "min_slice"} == {"min_slice": 30}
