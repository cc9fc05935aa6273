"""``judgeq beat``: Celery beat firing each ``[online.NAME]`` schedule's tick (workers/tasks.py ``online_tick``).

The schedule's state lives in Redis through celery-redbeat (JSON, never
pickle: Celery's default beat store is a shelve file, which is pickle), so a
restarted beat keeps its last run times, and redbeat's lock lets one beat
fire at a time. Which windows are judged is the ledger's business
(online/tick.py), so a lost beat state costs at most a tick, never a window.
"""

from __future__ import annotations

from typing import Any, Final

from online.schedules import Schedule
from runs.queues import QUEUE_LOCAL

TICK_TASK: Final = "judgeq.online_tick"
BUDGET_TASK: Final = "judgeq.budget_tick"
DRIFT_TASK: Final = "judgeq.drift_tick"
#: Redis keys of beat's state (celery-redbeat's), apart from judgeq's others.
BEAT_KEY_PREFIX: Final = "judgeq:beat:"
#: The lock one beat holds while it fires (redbeat's default name under the prefix, set explicitly here).
BEAT_LOCK_KEY: Final = BEAT_KEY_PREFIX + ":lock"


def beat_schedule(schedules: dict[str, Schedule], budget_every_s: float = 60.0) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule``: one entry per online schedule, firing its tick every ``every``; one per
    schedule with an ``[online.NAME.drift]`` table, firing its drift check every ``drift.every`` (default:
    the schedule's); and the budget controller's tick every minute (it plans only judges that have a budget)."""
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
