"""``judgeq beat``: Celery beat firing each ``[online.NAME]`` schedule's tick (workers/tasks.py ``online_tick``).

The schedule's state lives in Redis through celery-redbeat (JSON, never
pickle: Celery's default beat store is a shelve file, which is pickle), so a
restarted beat keeps its last run times, and redbeat's lock lets one beat
fire at a time. Which windows are judged is the ledger's business
(online/tick.py), so a lost beat state costs at most a tick, never a window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from online.schedules import Schedule
from runs.queues import QUEUE_LOCAL

if TYPE_CHECKING:
    from .settings import CliSettings

TICK_TASK: Final = "judgeq.online_tick"
BUDGET_TASK: Final = "judgeq.budget_tick"
DRIFT_TASK: Final = "judgeq.drift_tick"
PRUNE_TASK: Final = "judgeq.prune"
PRUNE_EVERY_S: Final = 24 * 3600.0  # the retention is counted in days: once a day is enough
#: Redis keys of beat's state (celery-redbeat's), apart from judgeq's others.
BEAT_KEY_PREFIX: Final = "judgeq:beat:"
#: The lock one beat holds while it fires (redbeat's default name under the prefix, set explicitly here).
BEAT_LOCK_KEY: Final = BEAT_KEY_PREFIX + ":lock"


def beat_schedule(schedules: dict[str, Schedule], budget_every_s: float = 60.0) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule``: one entry per online schedule, firing its tick every ``every``; one per
    schedule with an ``[online.NAME.drift]`` table, firing its drift check every ``drift.every`` (default:
    the schedule's); the budget controller's tick every minute (it plans only judges that have a budget); and
    the daily prune of old decisions and drift checks (online/retention.py)."""
    entries: dict[str, dict[str, Any]] = {
        f"online:{name}": {
            "task": TICK_TASK,
            "schedule": schedule.every.total_seconds(),
            "args": [name],
            "options": {"queue": QUEUE_LOCAL, "expires": schedule.every.total_seconds()},
        }
        for name, schedule in sorted(schedules.items())
    }
    for name, schedule in sorted(schedules.items()):
        if schedule.drift is not None:
            every = (schedule.drift.every or schedule.every).total_seconds()
            entries[f"drift:{name}"] = {"task": DRIFT_TASK, "schedule": every, "args": [name],
                                        "options": {"queue": QUEUE_LOCAL, "expires": every}}
    if schedules:
        entries["budget"] = {"task": BUDGET_TASK, "schedule": budget_every_s, "args": [],
                             "options": {"queue": QUEUE_LOCAL, "expires": budget_every_s}}
        entries["prune"] = {"task": PRUNE_TASK, "schedule": PRUNE_EVERY_S, "args": [],
                            "options": {"queue": QUEUE_LOCAL, "expires": 3600.0}}
    return entries


def beat_config(schedules: dict[str, Schedule], broker_url: str, budget_every_s: float = 60.0) -> dict[str, Any]:
    """The Celery settings that make ``celery beat`` judgeq's: the schedule, and redbeat on the broker's Redis."""
    return {
        "beat_schedule": beat_schedule(schedules, budget_every_s),
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "redbeat_redis_url": broker_url,
        "redbeat_key_prefix": BEAT_KEY_PREFIX,
        "redbeat_lock_key": BEAT_LOCK_KEY,
        "beat_max_loop_interval": min([5.0, *(s.every.total_seconds() / 2 for s in schedules.values())]),
    }


def lock_held_s(broker_url: str) -> float | None:
    """The seconds left on the lock of a beat already running (None: no other beat, or Redis not asked).

    redbeat waits for the lock without a word; a second beat says so once, from this.
    """
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        left = client.pttl(BEAT_LOCK_KEY)
    except redis.RedisError:
        return None  # beat itself will say what is wrong with the broker
    finally:
        client.close()
    return None if not isinstance(left, int) or left < 0 else left / 1000


def run_beat(settings: CliSettings, loglevel: str, *, say: Callable[[str], None]) -> int | None:
    """``judgeq beat``: check the schedules and the broker, say what will fire, then run Celery beat until it stops.

    A schedule naming an unknown source or judge, or no schedule or broker at
    all, stops it here (``UsageError``), not at every tick. Returns Celery's exit code.
    """
    from online.plan import prepare
    from online.schedules import load_schedules
    from online.windows import format_duration

    from .errors import UsageError
    from .fleet import run_celery

    worker_settings = settings.worker
    if not worker_settings.broker_url:
        raise UsageError("beat needs a broker: set JUDGEQ_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    config = settings.config
    schedules = load_schedules(config)
    if not schedules:
        raise UsageError(f"{config}: no [online.NAME] table; beat would have nothing to fire")
    for schedule in schedules.values():  # a schedule's unknown source or judge stops beat here, not every tick
        prepare(config, schedule, check_env=False)
    import redis

    from ledger.urls import mask_url
    from runs.dispatch import check_broker_url
    from runs.errors import BrokerUnavailable
    from workers.dispatch import CeleryDispatcher

    check_broker_url(worker_settings.broker_url)
    CeleryDispatcher(worker_settings).check()  # Redis down: exit 3 with a message, not redbeat's traceback
    beat_conf = beat_config(schedules, worker_settings.broker_url, settings.online.budget_tick_s)
    for name, schedule in sorted(schedules.items()):
        say(f"beat: {name}: {schedule.source} windows of {schedule.size.text}, every "
            f"{schedule.every.total_seconds():g} s, judges {', '.join(schedule.judges)}")
        if schedule.drift is not None:
            every = (schedule.drift.every or schedule.every).total_seconds()
            say(f"beat: {name}: drift check every {every:g} s (short {format_duration(schedule.drift.short)}, "
                f"long {format_duration(schedule.drift.long)}, by {', '.join(schedule.drift.by) or 'nothing'})")
    held = lock_held_s(worker_settings.broker_url)
    if held is not None:
        say(f"beat: another beat holds the lock {BEAT_LOCK_KEY} (for {held:.0f} s more unless it renews it); "
            "this one waits, and fires once that one stops (run exactly one beat per fleet)")
    try:
        code = run_celery(["beat", "--loglevel", loglevel], settings, conf=beat_conf)
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # redbeat keeps its state and lock in Redis
        raise BrokerUnavailable(f"beat lost the broker at {mask_url(worker_settings.broker_url)} ({exc}); start "
                                "Redis, then beat again (its schedule state is kept there)") from exc
    return code
