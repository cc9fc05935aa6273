"""Exit codes CI can trust: every failure that is not a gate verdict exits with something other than 1.

Each case runs the real CLI (in this process, or in one of its own where the
file modes, the process's exit or its traceback file matter) and checks its
exit code, that the error is one line on stderr with no traceback, and, for
bad input, that nothing reached the ledger (no run row). Bad input is 2, infrastructure 3,
anything unforeseen 4 with its traceback kept in a file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from .cli_runner import invoke
from .processes import REPO, base_env, judgeq_cmd, run_cli

pytestmark = pytest.mark.timeout(120)

CONFIG = """
[judges.exact]
type = "local"
builtin = "exact_match"

[judges.zero]
type = "llm"
model = "openai/judge"
api_base = "http://127.0.0.1:9/v1"
prompt = "/dev/zero"
labels = { pass = 1.0, fail = 0.0 }

[judges.correct]
type = "llm"
model = "openai/judge"
api_base = "http://127.0.0.1:9/v1"
prompt = "correctness"

[judges.grounded]
type = "llm"
model = "openai/judge"
api_base = "http://127.0.0.1:9/v1"
prompt_text = "Is {output} supported by {context}?"
prompt = "inline"
"""

GOOD = '{"id": "a", "output": "x", "expected": "x"}\n'


def nested(levels: int) -> str:
    return '{"k": ' * levels + "1" + "}" * levels


# name, dataset file content, extra submit args, what the one line must say
BAD_INPUT = [
    ("metadata_nested_256", '{"id": "a", "output": "x", "expected": "x", "metadata": %s}\n' % nested(256),
     [], "field 'metadata': nested more than 32 levels"),
    ("metadata_nested_5000", '{"id": "a", "output": "x", "expected": "x", "metadata": %s}\n' % nested(5000),
     [], "nested deeper than can be read"),
    ("lone_surrogate_in_id", GOOD + '{"id": "b\\ud800", "output": "x", "expected": "x"}\n', [],
     "bad.jsonl:2: field 'id': holds a lone UTF-16 surrogate"),
    ("lone_surrogate_in_output", '{"id": "a", "output": "x\\udc00", "expected": "x"}\n', [],
     "field 'output': holds a lone UTF-16 surrogate"),
    ("nul_in_id", GOOD + '{"id": "b\\u0000", "output": "x", "expected": "x"}\n', [],
     "bad.jsonl:2: field 'id': holds a control character"),
    ("id_too_long", '{"id": "%s", "output": "x", "expected": "x"}\n' % ("i" * 300), [], "more than 256"),
    ("record_over_1_MiB", GOOD + '{"id": "b", "output": "%s", "expected": "x"}\n' % ("x" * (1 << 20)), [],
     "bad.jsonl:2: the record's line is longer than 1,048,576 bytes"),
    ("exact_match_without_expected", GOOD + GOOD.replace('"a"', '"b"').replace(', "expected": "x"', ""), [],
     "bad.jsonl:2: field 'expected': missing or empty — judge 'exact' needs it"),
    # A remote judge's prompt needs its {expected} / {context} in every record, as a builtin's needs do.
    ("llm_prompt_needs_expected", GOOD + '{"id": "b", "output": "x"}\n', ["--judge", "correct"],
     "bad.jsonl:2: field 'expected': missing or empty — judge 'correct' needs it"),
    ("llm_prompt_needs_context", '{"id": "a", "output": "x", "context": ["  "]}\n', ["--judge", "grounded"],
     "bad.jsonl:1: field 'context': missing or empty — judge 'grounded' needs it"),
    ("gate_outside_0_1", GOOD, ["--gate", "exact>=4"], "normalised onto [0, 1] (on a 1-5 scale, 4 is 0.75)"),
    ("negative_timeout", GOOD, ["--timeout", "-5"], "--timeout -5 is not a positive number of seconds"),
    ("prompt_dev_zero", GOOD, ["--judge", "zero"], "prompt file '/dev/zero' is not a regular file"),
]

# name, ledger URL (tmp_path formatted in), what the one line must say
BAD_LEDGER_URL = [
    ("mysql", "mysql://judgeq@db.internal/judgeq", "unsupported ledger URL mysql://"),
    ("http", "http://db.internal/judgeq", "unsupported ledger URL http://"),
    ("unparseable", "not a url", "cannot parse the ledger URL"),
    # An unclosed "[": make_url raised a bare ValueError (exit 4), or took "[db" for a host name to resolve (exit 3).
    ("unclosed_ipv6", "postgresql://judgeq:pw@[::1/judgeq", "cannot read the host and port of the ledger URL"),
    ("unclosed_bracket", "postgresql://judgeq@[db.internal/judgeq", "an IPv6 address goes in closed brackets"),
    ("port_not_a_number", "postgresql://judgeq@db.internal:five/judgeq", "a port is a number"),
    ("missing_driver", "postgresql+psycopg2://judgeq@db.internal/judgeq", "needs a database driver that is not installed"),
    ("sqlite_in_memory", "sqlite://", "in-memory SQLite database"),
    ("sqlite_memory_path", "sqlite:///:memory:", "use a file: sqlite:///judgeq.db"),
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "judgeq.toml"
    path.write_text(CONFIG)
    return path


def env_for(ledger_url: str, config: Path, **extra: str) -> dict[str, str]:
    return base_env(JUDGEQ_LEDGER_URL=ledger_url, JUDGEQ_CONFIG=str(config), TMPDIR=str(config.parent), **extra)


def assert_one_line(res: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    """Exit ``code``; stderr is exactly one line, from judgeq, holding ``needle``; no traceback."""
    assert res.returncode == code, (res.returncode, res.stdout[-2000:], res.stderr[-4000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("judgeq: "), res.stderr[-4000:]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in res.stderr


def assert_one_error_line(res: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    """Like ``assert_one_line`` for commands that report progress on stderr before failing."""
    assert res.returncode == code, (res.returncode, res.stdout[-2000:], res.stderr[-4000:])
    errors = [line for line in res.stderr.splitlines() if line.startswith("judgeq: ")]
    assert len(errors) == 1 and needle in errors[0], res.stderr[-4000:]
    assert "Traceback" not in res.stderr


def run_rows(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("runs"):
                return 0
            return int(conn.execute(text("select count(*) from runs")).scalar_one())
    finally:
        engine.dispose()


# --- bad input: exit 2, one line, nothing written -----------------------------------


@pytest.mark.parametrize("name,content,args,needle", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_input_that_cannot_be_stored_is_bad_input(name: str, content: str, args: list[str], needle: str,
                                                  tmp_path: Path, config: Path, pg_url: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    judges = [] if "--judge" in args else ["--judge", "exact"]
    res = invoke(["submit", str(path), *judges, "--wait", *args], env_for(pg_url, config), cwd=tmp_path)
    assert_one_line(res, 2, needle)
    assert run_rows(pg_url) == 0


def test_resume_refuses_a_negative_timeout(tmp_path: Path, config: Path) -> None:
    res = invoke(["resume", "r-any", "--timeout", "-5"], env_for(f"sqlite:///{tmp_path / 'l.db'}", config))
    assert_one_line(res, 2, "--timeout -5 is not a positive number of seconds")


def test_record_size_cap_is_a_setting(tmp_path: Path, config: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": "b", "output": "%s", "expected": "x"}\n' % ("x" * 5000))
    url = f"sqlite:///{tmp_path / 'l.db'}"
    small = invoke(["submit", str(path), "--judge", "exact"], env_for(url, config, JUDGEQ_MAX_RECORD_BYTES="4096"))
    assert_one_line(small, 2, "longer than 4,096 bytes — shorten it (an excerpt of a long context, not all of it), "
                              "or raise JUDGEQ_MAX_RECORD_BYTES")
    assert not (tmp_path / "l.db").exists()
    assert invoke(["submit", str(path), "--judge", "exact", "--wait"], env_for(url, config)).returncode == 0


@pytest.mark.parametrize("name,url,needle", BAD_LEDGER_URL, ids=[c[0] for c in BAD_LEDGER_URL])
def test_a_ledger_url_judgeq_cannot_use_is_a_configuration_error(name: str, url: str, needle: str, tmp_path: Path,
                                                                 config: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(GOOD)
    res = invoke(["submit", str(path), "--judge", "exact", "--wait"], env_for(url, config), cwd=tmp_path)
    assert_one_line(res, 2, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judgeq.toml", "ok.jsonl"]  # no database file made


# --- infrastructure: exit 3, one line ---------------------------------------------------


def make_run(url: str, config: Path, folder: Path) -> str:
    """A finished run: the command closes its SQLite ledger as it ends, which folds the WAL into the file (the
    tests cut or chmod the file itself and need no ``-wal`` beside it)."""
    path = folder / "golden.jsonl"
    path.write_text(GOOD + GOOD.replace('"a"', '"b"'))
    res = invoke(["submit", str(path), "--judge", "exact", "--wait", "--json"], env_for(url, config), cwd=folder)
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["run"]["id"])


def test_a_corrupt_or_truncated_sqlite_ledger_is_infrastructure(tmp_path: Path, config: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some bytes" * 200)
    res = invoke(["runs"], env_for(f"sqlite:///{garbage}", config))
    assert_one_line(res, 3, "is not a usable database (file is not a database); restore it from a backup")

    ledger = tmp_path / "ledger.db"
    run_id = make_run(f"sqlite:///{ledger}", config, tmp_path)
    with ledger.open("r+b") as file:  # cut the file in the middle of its pages
        file.truncate(ledger.stat().st_size // 2)
    res = invoke(["gate", run_id, "--gate", "exact>=0.5"], env_for(f"sqlite:///{ledger}", config))
    assert_one_line(res, 3, "is not a usable database (database disk image is malformed)")


def run_unprivileged(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``judgeq ARGS`` unable to override file permissions, even when the tests run as root."""
    return run_cli(args, env, unprivileged=True)


@pytest.mark.parametrize("folder_writable", [False, True], ids=["file_and_folder_0444", "file_0444"])
def test_a_read_only_sqlite_ledger_can_be_read_not_written(folder_writable: bool, tmp_path: Path,
                                                          config: Path) -> None:
    folder = tmp_path / "ledger"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ledger.db'}"
    run_id = make_run(url, config, tmp_path)
    env = env_for(url, config)
    (folder / "ledger.db").chmod(0o444)
    folder.chmod(0o755 if folder_writable else 0o555)
    try:
        for args in (["runs"], ["status", run_id], ["report", run_id], ["gate", run_id, "--gate", "exact>=0.5"],
                     ["compare", run_id, run_id]):
            res = run_unprivileged(args, env)
            assert res.returncode == 0, (args, res.stderr)
            assert run_id in res.stdout or "exact" in res.stdout, (args, res.stdout)
        res = run_unprivileged(["submit", str(tmp_path / "golden.jsonl"), "--judge", "exact", "--wait"], env)
        assert_one_error_line(res, 3, "is read-only (attempt to write a readonly database)")
    finally:
        folder.chmod(0o755)
        (folder / "ledger.db").chmod(0o644)
    with sqlite3.connect(folder / "ledger.db") as db:
        assert db.execute("select count(*) from runs").fetchone() == (1,)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a private tmpfs needs root")
def test_a_full_disk_is_infrastructure(tmp_path: Path, config: Path) -> None:
    """The ledger on a 1 MiB tmpfs, mounted in a mount namespace of its own (gone when the command ends)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    dataset = tmp_path / "ok.jsonl"
    dataset.write_text(GOOD)
    judgeq = shlex.join(judgeq_cmd())
    script = (f"mount -t tmpfs -o size=1m tmpfs {disk} && {judgeq} db upgrade && "
              f"(head -c 2000000 /dev/zero > {disk}/filler 2>/dev/null; true) && "
              f"exec {judgeq} submit {dataset} --judge exact --wait")
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         env=env_for(f"sqlite:///{disk}/ledger.db", config), cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert_one_error_line(res, 3, "is full")
    assert "free disk space" in res.stderr
    assert not (disk / "ledger.db").exists()  # the tmpfs was never mounted here


@pytest.fixture
def role_without_privileges(pg_url: str) -> Iterator[tuple[str, str]]:
    """(the owner's URL with a finished run, the same database as a role that may only CONNECT)."""
    role = "judgeq_noprivs_" + os.urandom(4).hex()
    database = pg_url.rsplit("/", 1)[1]
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
    try:
        yield pg_url, pg_url.replace("//postgres@", f"//{role}@")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_a_postgresql_role_without_privileges_is_infrastructure_not_a_failed_gate(
        role_without_privileges: tuple[str, str], tmp_path: Path, config: Path) -> None:
    owner, unprivileged = role_without_privileges
    assert "//postgres@" in owner
    run_id = make_run(owner, config, tmp_path)
    env = env_for(unprivileged, config)
    for args in (["gate", run_id, "--gate", "exact>=0.5"], ["report", run_id], ["runs"]):
        res = invoke(args, env)
        assert_one_line(res, 3, "refuses access (permission denied for table")
        assert "grant the role judgeq connects as SELECT, INSERT, UPDATE, DELETE" in res.stderr
    res = invoke(["submit", str(tmp_path / "golden.jsonl"), "--judge", "exact", "--wait"], env)
    assert_one_error_line(res, 3, "refuses access")
    assert run_rows(owner) == 1


# --- anything else: exit 4, one line, the traceback kept ---------------------------------

UNFORESEEN = """
from cli.main import app, main

@app.command()
def explode() -> None:
    raise ZeroDivisionError("something nobody foresaw")

main()
"""


def test_an_unforeseen_error_exits_4_with_its_traceback_in_a_file(tmp_path: Path) -> None:
    env = base_env(TMPDIR=str(tmp_path))
    res = subprocess.run([judgeq_cmd()[0], "-c", UNFORESEEN, "explode"], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert_one_line(res, 4, "internal error: ZeroDivisionError: something nobody foresaw; the traceback is in ")
    (saved,) = tmp_path.glob("judgeq-traceback-*.txt")
    assert str(saved) in res.stderr
    assert "Traceback" in saved.read_text() and "something nobody foresaw" in saved.read_text()

    debug = subprocess.run([judgeq_cmd()[0], "-c", UNFORESEEN, "--debug", "explode"], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert debug.returncode == 4 and "Traceback" in debug.stderr and "ZeroDivisionError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("judgeq: internal error: ZeroDivisionError")


def test_a_bad_setting_is_bad_input(tmp_path: Path, config: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(GOOD)
    res = invoke(["submit", str(path), "--judge", "exact"],
                 env_for(f"sqlite:///{tmp_path / 'l.db'}", config, JUDGEQ_MAX_RECORD_BYTES="lots"))
    assert_one_line(res, 2, "setting JUDGEQ_MAX_RECORD_BYTES='lots'")


def test_every_error_class_maps_as_the_tree_says() -> None:
    from judges.errors import JudgeArgumentError, JudgeCallError, JudgeConfigError, LimiterUnavailable
    from ledger.errors import (LedgerArgumentError, LedgerConfigError, LedgerCorrupt, LedgerFull,
                               LedgerPermissionDenied, LedgerReadOnly, LedgerUnavailable, MigrationError, RunNotFound)
    from judgeq.errors import GATE_FAILED, exit_code
    from scheduler.errors import InputError, SchedulerArgumentError, UsageError
    from runs.errors import BadMessage, BrokerUnavailable
    from workers.errors import VerdictCountError

    expect = {
        InputError("f.jsonl", "x"): 2, UsageError("x"): 2, JudgeConfigError("x"): 2, RunNotFound("r"): 2,
        LedgerConfigError("x"): 2, LedgerUnavailable("x"): 3, LedgerPermissionDenied("x"): 3,
        LedgerReadOnly("x"): 3, LedgerCorrupt("x"): 3, LedgerFull("x"): 3, MigrationError("x"): 3,
        BrokerUnavailable("x"): 3, LimiterUnavailable("x"): 3, SchedulerArgumentError("x"): 4,
        JudgeArgumentError("x"): 4, LedgerArgumentError("x"): 4, BadMessage("x"): 4, VerdictCountError("x"): 4,
        JudgeCallError("x"): 4, ValueError("x"): 4, KeyError("x"): 4, RecursionError(): 4,
    }
    assert {type(e).__name__: exit_code(e) for e in expect} == {type(e).__name__: c for e, c in expect.items()}
    assert GATE_FAILED not in {exit_code(e) for e in expect}


# --- the list of runs -----------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_runs_lists_newest_first_with_filters(tmp_path: Path, config: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = env_for(url, config)
    made = []
    for name, tags in (("golden", ["main"]), ("golden", ["pr"]), ("other", ["main"])):
        folder = tmp_path / f"{len(made)}"
        folder.mkdir()
        path = folder / f"{name}.jsonl"
        path.write_text(GOOD)
        res = invoke(["submit", str(path), "--judge", "exact", "--wait", "--json",
                      *[f"--tag={t}" for t in tags]], env)
        assert res.returncode == 0, res.stderr
        made.append(json.loads(res.stdout)["run"]["id"])

    listed = json.loads(invoke(["runs", "--json"], env).stdout)
    assert [r["id"] for r in listed] == made[::-1]
    assert listed[0]["dataset_name"] == "other" and listed[0]["tags"] == ["main"] and listed[0]["status"] == "done"
    assert [r["id"] for r in json.loads(invoke(["runs", "--json", "--tag", "main"], env).stdout)] == [made[2], made[0]]
    by_dataset = json.loads(invoke(["runs", "--json", "--dataset", "golden", "--limit", "1"], env).stdout)
    assert [r["id"] for r in by_dataset] == [made[1]]
    assert json.loads(invoke(["runs", "--json", "--status", "running"], env).stdout) == []

    table = invoke(["runs"], env)
    assert table.returncode == 0
    rows = [line.split()[0] for line in table.stdout.splitlines() if re.match(r"\s*r\d{8}-", line)]
    assert rows == made[::-1]  # one line per run, newest first

    assert_one_line(invoke(["runs", "--status", "finished"], env), 2, "--status 'finished' is not one of")
    assert_one_line(invoke(["status", "r-nope"], env), 2, "no run with id 'r-nope'; see `judgeq runs`")
