"""The fleet's long-running processes, workers and Flower: their command lines, and running them.

Flower runs with judgeq's pages added (``scheduler/flower_pages/``: the Budgets page; ``server.py`` says how).

Defaults per queue: local judges are CPU-bound, so a prefork pool with one
process per core, a few chunks prefetched and Celery's time limits (prefork
honours them); remote judges wait on the network, so a threads pool sized for
I/O, one chunk prefetched per thread (a prefetched chunk's visibility clock is
already running), and each call bounded by its own timeout (the threads pool
ignores Celery's time limits).
"""

from __future__ import annotations

import os
import re
import socket
from typing import TYPE_CHECKING, Any

from runs.queues import QUEUES

from .errors import UsageError

if TYPE_CHECKING:
    from .settings import CliSettings

DEFAULTS = {
    # queue: (pool, concurrency, prefetch multiplier)
    "local": ("prefork", os.cpu_count() or 2, 4),
    "remote": ("threads", 32, 1),
}


def worker_argv(queues: str, *, concurrency: int | None, pool: str | None, prefetch: int | None,
                time_limit: int, name: str | None, loglevel: str) -> list[str]:
    """Celery ``worker`` arguments for ``queues`` with the per-queue defaults filled in."""
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in QUEUES]
    if not wanted or unknown:
        raise UsageError(f"--queues {queues!r}: unknown queue {', '.join(unknown) or '(none)'}; "
                         f"use {', '.join(QUEUES)} or local,remote")
    base = "remote" if wanted == ["remote"] else "local"
    default_pool, default_concurrency, default_prefetch = DEFAULTS[base]
    pool = pool or default_pool
    if pool not in ("prefork", "threads", "solo"):
        raise UsageError(f"--pool {pool!r}: use prefork, threads or solo")
    argv = [
        "worker",
        "--queues", ",".join(wanted),
        "--pool", pool,
        "--concurrency", str(concurrency or default_concurrency),
        "--prefetch-multiplier", str(prefetch or default_prefetch),
        "--hostname", name or f"{'-'.join(wanted)}-{os.getpid()}@{socket.gethostname()}",
        "--loglevel", loglevel,
        "--without-mingle",
        "--without-gossip",
    ]
    if pool == "prefork":
        argv += ["--time-limit", str(time_limit), "--soft-time-limit", str(max(1, int(time_limit * 0.8)))]
    return argv


#: The shortest Flower password accepted; zxcvbn must also rate it at least MIN_PASSWORD_SCORE.
MIN_PASSWORD_CHARS = 12
#: zxcvbn's score (0-4): 4 is "very unguessable" (about 10^10 guesses or more).
MIN_PASSWORD_SCORE = 4


def flower_argv(*, port: int, address: str) -> list[str]:
    """Celery ``flower`` arguments; refuses without strong basic auth from the environment.

    Credentials come only from ``FLOWER_BASIC_AUTH`` (``user:password``, comma
    separated for several users), which Flower reads itself, so they never
    appear on a command line (visible to every local user in ``ps``).
    """
    auth = os.environ.get("FLOWER_BASIC_AUTH", "")
    pairs = [p for p in auth.split(",") if p]
    if not pairs or any(":" not in p or not p.split(":", 1)[0] for p in pairs):
        raise UsageError(
            "Flower needs auth: set FLOWER_BASIC_AUTH=user:password (a password of "
            f"{MIN_PASSWORD_CHARS} or more characters that is not a common one); "
            "anyone who reaches an open Flower can run any task"
        )
    for pair in pairs:
        user, password = pair.split(":", 1)
        weakness = password_weakness(user, password)
        if weakness:
            raise UsageError(
                f"FLOWER_BASIC_AUTH: the password of user {user!r} is too weak ({weakness}); anyone who logs in "
                f"can run any task: use {MIN_PASSWORD_CHARS} or more characters that are not a common password, "
                "a word or the user name, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(18))'"
            )
    if os.environ.get("FLOWER_UNAUTHENTICATED_API", "").lower() in ("1", "true", "yes"):
        raise UsageError("unset FLOWER_UNAUTHENTICATED_API: judgeq's Flower API always requires auth")
    return ["flower", f"--port={port}", f"--address={address}"]


#: Phrases published as examples of strong passwords, which crackers therefore try first. zxcvbn cannot know
#: them: it rates "correcthorsebatterystaple" as four uncommon words. They go to zxcvbn as the attacker's own
#: words (``user_inputs``), so its matching of case, l33t and reversal applies to them as to any word.
FAMOUS_PHRASES: tuple[str, ...] = ("correcthorsebatterystaple", "thequickbrownfoxjumpsoverthelazydog",
                                   "loremipsumdolorsitamet")
_SEPARATORS = re.compile(r"[\W_]+")


def password_weakness(user: str, password: str) -> str:
    """Why ``password`` is too weak for ``user`` (never the password itself), or '' when it will do.

    Length first, then the user name, then zxcvbn (Dropbox's estimator, a
    maintained library: common-password and word lists, keyboard patterns,
    repeats, dates, l33t, and the user name, judgeq's own names and
    :data:`FAMOUS_PHRASES` as words an attacker tries first) must rate it at
    least MIN_PASSWORD_SCORE, both as written and with its separators removed:
    zxcvbn rates "2026-11-22 2026-11-22" as two dates and a space (10^10 guesses,
    the top score), while "2026112220261122" is the repeat it is; and
    "correct horse battery staple" is the famous phrase without its spaces.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        return f"{len(password)} characters, fewer than {MIN_PASSWORD_CHARS}"
    if len(user) >= 3 and user.casefold() in password.casefold():
        return "it contains the user name"
    from zxcvbn import zxcvbn

    words = [user, "judgeq", "flower", "celery", "admin", *FAMOUS_PHRASES]
    written = password[:100]
    joined = _SEPARATORS.sub("", written)
    for candidate in dict.fromkeys((written, joined)):
        if not candidate:
            return "it has no letters or digits"
        rating = zxcvbn(candidate, user_inputs=words)
        if rating["score"] >= MIN_PASSWORD_SCORE:
            continue
        if any(m.get("dictionary_name") == "user_inputs" and m["matched_word"] in FAMOUS_PHRASES
               for m in rating["sequence"]):
            return "guessable: it is a famous example passphrase, which crackers try first"
        if any(m.get("pattern") == "repeat" for m in rating["sequence"]) and candidate is joined:
            return "guessable: without its separators it repeats a shorter string"
        warning = str(rating.get("feedback", {}).get("warning") or "").rstrip(".")
        return f"guessable: {warning.lower()}" if warning else "guessable by a password cracker"
    return ""


def run_worker(argv: list[str], settings: CliSettings) -> int | None:
    """Check what a worker needs (a broker, a valid key policy), then run Celery's ``worker``; its exit code."""
    worker = settings.worker
    if not worker.broker_url:
        raise UsageError("a worker needs a broker: set JUDGEQ_BROKER_URL (e.g. redis://127.0.0.1:6379/0) or --broker-url")
    worker.egress_policy()  # a malformed JUDGEQ_KEY_ENDPOINTS stops the worker here (exit 2)
    from runs.dispatch import check_broker_url

    check_broker_url(worker.broker_url)
    return run_celery(argv, settings)


def run_celery(argv: list[str], settings: CliSettings, conf: dict[str, Any] | None = None) -> int | None:
    """Run a Celery command (``worker``, ``flower``, ``beat``) in this process, ``conf`` added; its exit code.

    This is the entry of the worker, beat and Flower processes: their Celery
    app is built here (``workers.app.create_worker``) with judgeq's tasks
    bound to ``settings``, the process's one settings object, which prefork
    children inherit. The global flags are also handed over as the variables
    they stand for (the one place the CLI writes the environment), so that a
    section still read from the environment where nothing passed it one sees
    the flags as the tasks do.
    """
    celery_app = _celery_app(settings)
    celery_app.conf.update(conf or {})
    return celery_app.start(argv)  # type: ignore[no-any-return]


def run_flower(argv: list[str], settings: CliSettings) -> int | None:
    """Run Flower (``argv`` from :func:`flower_argv`) in this process with judgeq's pages: the Budgets page
    and the budget task's API recording the logged-in user (``scheduler.flower_pages``); its exit code."""
    from .flower_pages.budgets import Site
    from .flower_pages.server import serve

    return serve(_celery_app(settings), argv[1:], Site(settings))


def _celery_app(settings: CliSettings) -> Any:
    """The process's Celery app with judgeq's tasks bound to ``settings``, the flags handed over first."""
    os.environ.update(settings.environment())
    from workers.app import create_worker

    return create_worker(settings)
