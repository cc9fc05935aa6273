"""Flower through ``judgeq flower``: refuses to start without strong auth; its API needs credentials."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from scheduler.fleet import password_weakness

from .cli_runner import invoke
from .processes import REPO, Worker, base_env, free_port, judgeq_cmd, run_cli, wait_until

pytestmark = pytest.mark.timeout(180)


def test_flower_refuses_to_start_without_auth(redis_url: str) -> None:
    env = base_env(JUDGEQ_BROKER_URL=redis_url)
    env.pop("FLOWER_BASIC_AUTH", None)
    res = run_cli(["flower", "--port", str(free_port())], env, timeout=60)
    assert res.returncode == 2
    assert "FLOWER_BASIC_AUTH" in res.stderr


@pytest.mark.parametrize("auth", ["admin:password", "admin:12345678", "ops:correct-horse-battery,ci:admin-admin-2026"])
def test_flower_refuses_weak_passwords(redis_url: str, auth: str) -> None:
    env = base_env(JUDGEQ_BROKER_URL=redis_url, FLOWER_BASIC_AUTH=auth)
    res = run_cli(["flower", "--port", str(free_port())], env, timeout=60)
    assert res.returncode == 2
    weak = auth.split(",")[-1]
    user, password = weak.split(":")
    assert f"password of user {user!r} is too weak" in res.stderr and weak not in res.stderr
    assert password == "password" or password not in res.stderr


@pytest.mark.parametrize("user, password, why", [
    ("admin", "hunter2", "fewer than 12"),
    ("admin", "password1234", "guessable"),
    ("admin", "qwertyuiopasdf", "guessable"),
    ("ops", "passwordpassword", "guessable"),
    ("alice", "Alice-2026-Spring", "contains the user name"),
])
def test_weak_password_rules(user: str, password: str, why: str) -> None:
    assert why in password_weakness(user, password)


@pytest.mark.parametrize("password, why", [
    # zxcvbn alone rated each of these 4 of 4 (>= 10^10 guesses), so Flower started with them.
    ("correcthorsebatterystaple", "a famous example passphrase"),
    ("Correct Horse Battery Staple", "a famous example passphrase"),
    ("c0rr3ct-h0rs3-b4tt3ry-st4pl3", "a famous example passphrase"),
    ("2026-11-22 2026-11-22", "without its separators it repeats a shorter string"),  # a doubled date
    ("22/11/2026/22/11/2026", "without its separators it repeats a shorter string"),
    ("2026-11-22, 2026-11-22", "without its separators it repeats a shorter string"),
])
def test_famous_phrases_and_doubled_dates_are_guessable(password: str, why: str) -> None:
    assert why in password_weakness("flower-ops", password)


def test_random_tokens_still_pass() -> None:
    """What the error message recommends must pass, every time (200 draws; a user name no token can hold)."""
    assert [t for t in (secrets.token_urlsafe(18) for _ in range(200)) if password_weakness("flower-ops", t)] == []


def test_strong_passwords_pass() -> None:
    assert password_weakness("ops", "correct-horse-battery") == ""
    assert password_weakness("ops", secrets.token_urlsafe(18)) == ""


def test_flower_api_needs_credentials_and_lists_workers(tmp_path: Path, redis_url: str, sqlite_url: str) -> None:
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=sqlite_url,
                   FLOWER_BASIC_AUTH="ops:correct-horse-battery")
    port = free_port()
    worker = Worker("local", env, "--concurrency", "1").wait_ready()
    flower = subprocess.Popen(judgeq_cmd() + ["flower", "--port", str(port)], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthcheck", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 60, "Flower's healthcheck")
        assert httpx.get(f"{base}/api/workers", timeout=10).status_code == 401
        assert httpx.get(f"{base}/api/workers", auth=("ops", "wrong-password"), timeout=10).status_code == 401

        def lists_worker() -> bool:
            resp = httpx.get(f"{base}/api/workers", params={"refresh": "1"}, auth=("ops", "correct-horse-battery"),
                             timeout=20)
            return resp.status_code == 200 and worker.name in resp.json()

        wait_until(lists_worker, 60, "the worker in Flower's /api/workers", interval=1.0)

        # Task arguments shown by Flower are a summary, never the records (which may hold user data).
        data = tmp_path / "d.jsonl"
        data.write_text('{"id": "a", "output": "SECRET-CUSTOMER-TEXT", "expected": "x"}\n')
        assert invoke(["submit", str(data), "--judge", "exact_match", "--wait"], env).returncode == 0

        def task_seen() -> bool:
            resp = httpx.get(f"{base}/api/tasks", auth=("ops", "correct-horse-battery"), timeout=10)
            return resp.status_code == 200 and any(t.get("state") == "SUCCESS" for t in resp.json().values())

        wait_until(task_seen, 60, "the task in Flower's /api/tasks", interval=0.5)
        tasks = httpx.get(f"{base}/api/tasks", auth=("ops", "correct-horse-battery"), timeout=10).json()
        (task,) = tasks.values()
        assert "run=" in task["args"] and "SECRET-CUSTOMER-TEXT" not in str(task)
    finally:
        flower.terminate()
        try:
            flower.wait(timeout=20)
        except subprocess.TimeoutExpired:
            flower.kill()
        worker.stop()
