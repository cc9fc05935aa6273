"""Passwords in ledger and broker URLs never reach an error message, whatever form they take."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import LedgerUnavailable, LedgerUrlError
from ledger.store import Ledger
from ledger.urls import mask_url
from workers.dispatch import CeleryDispatcher
from runs.errors import BrokerUnavailable, BrokerUrlError
from workers.settings import WorkerSettings

from .processes import base_env, free_port, run_cli

pytestmark = pytest.mark.timeout(120)

SECRET = "Sekret-7f3a"


@pytest.mark.parametrize("url", [
    f"postgresql://u:{SECRET}@h/db",
    f"postgresql://u@h/db?password={SECRET}",                  # libpq's query form
    f"postgresql://u@h/db?sslmode=require&password={SECRET}",
    f"postgresql://u@h/db?sslpassword={SECRET}",
    f"postgresql://u:{SECRET}@ss/w0rd@h/db",                     # unescaped '@' and '/'
    f"postgresql://u:p@{SECRET}/x@h:5432/db",
    f"postgresql://u:p?{SECRET}@h/db",                          # unescaped '?'
    f"postgresql://user@server:{SECRET}@h/db",                  # Azure's user@server form
    f"host=h user=u password={SECRET} dbname=db",               # libpq keywords
    f"host=h password='{SECRET} x' dbname=db",
    f"redis://:{SECRET}@h:6379/0",
    f"redis://h:6379/0?password={SECRET}",
])
def test_every_form_of_password_is_masked(url: str) -> None:
    masked = mask_url(url)
    assert SECRET not in masked and "***" in masked


def test_masking_keeps_what_is_not_secret() -> None:
    assert mask_url("postgresql://judgeq@db.internal:5432/judgeq?sslmode=require") == \
        "postgresql://judgeq@db.internal:5432/judgeq?sslmode=require"
    assert mask_url("postgresql://u:pw@h/db?password=x&application_name=judgeq") == \
        "postgresql://u:***@h/db?password=***&application_name=judgeq"
    assert mask_url("sqlite:///judgeq.db") == "sqlite:///judgeq.db"


def test_a_ledger_error_holds_no_password() -> None:
    port = free_port()  # nothing listens there
    for url in (f"postgresql://judgeq@127.0.0.1:{port}/db?password={SECRET}",
                f"postgresql://judgeq:{SECRET}@127.0.0.1:{port}/db"):
        with pytest.raises(LedgerUnavailable) as caught:
            Ledger(url).runs.get_run("r1")
        assert SECRET not in str(caught.value) and "***" in str(caught.value)
    # Parsers would read "ss" as the host and "w0rd@..." as the database: refused before any connection.
    with pytest.raises(LedgerUrlError) as unescaped:
        Ledger(f"postgresql://judgeq:p@ss/w0rd{SECRET}@127.0.0.1:{port}/db")
    text = str(unescaped.value)
    assert SECRET not in text and "w0rd" not in text and "%40" in text


def test_a_broker_error_holds_no_password() -> None:
    port = free_port()
    with pytest.raises(BrokerUnavailable) as caught:
        CeleryDispatcher(WorkerSettings(broker_url=f"redis://:{SECRET}@127.0.0.1:{port}/0")).check()
    assert SECRET not in str(caught.value) and "redis://:***@127.0.0.1" in str(caught.value)
    for url in (f"redis://:p@ss/w0rd{SECRET}@127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0?password={SECRET}"):
        with pytest.raises(BrokerUrlError) as refused:
            CeleryDispatcher(WorkerSettings(broker_url=url))
        assert SECRET not in str(refused.value) and "w0rd" not in str(refused.value)


def test_the_cli_prints_no_password(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "output": "x", "expected": "x"}\n')
    cases = [
        ({"JUDGEQ_LEDGER_URL": f"postgresql://u@127.0.0.1:{port}/db?password={SECRET}"}, ["status", "r1"], 3),
        ({"JUDGEQ_LEDGER_URL": f"postgresql://u:p@ss/w0rd{SECRET}@127.0.0.1:{port}/db"}, ["status", "r1"], 2),
        ({"JUDGEQ_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:{port}/0",
          "JUDGEQ_LEDGER_URL": f"sqlite:///{tmp_path / 'l.db'}"}, ["submit", str(data), "--judge", "exact_match"], 3),
        ({"JUDGEQ_BROKER_URL": f"redis://:p@ss/w0rd{SECRET}@127.0.0.1:{port}/0"}, ["worker"], 2),
    ]
    for extra, args, code in cases:
        res = run_cli(args, base_env(**extra), timeout=60)
        assert res.returncode == code, (args, res.stderr)
        assert SECRET not in res.stdout + res.stderr and "w0rd" not in res.stderr
        assert res.stderr.startswith("judgeq: ") and "***" in res.stderr
