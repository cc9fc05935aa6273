"""Every Redis key judgeq itself writes (Celery's own keys are kombu's business; its queues' names: ``runs.queues``)."""

PREFIX = "judgeq:"

#: Deliveries seen of one task id: the poison-message guard (workers/tasks.py).
DELIVERIES = PREFIX + "deliveries:{task_id}"
DELIVERIES_TTL_S = 24 * 3600

#: Rate limiter state of one provider endpoint and model (a hash: request and
#: token schedules, the AIMD rate factor); workers/ratelimit.py.
RATE = PREFIX + "rate:{key}"

#: Account errors (auth, permission, quota) of one judge in one run, and its open
#: circuit (the cause); workers/circuit.py. Both expire with CIRCUIT_TTL_S.
CIRCUIT_ERRORS = PREFIX + "circuit:errors:{run_id}:{judge}"
CIRCUIT_OPEN = PREFIX + "circuit:open:{run_id}:{judge}"
CIRCUIT_TTL_S = 24 * 3600

#: Dead letters of one run: chunks whose rows the ledger would not take after
#: every retry (a hash: task id -> JSON entry); workers/deadletters.py.
DEAD_LETTERS = PREFIX + "dead:{run_id}"
DEAD_LETTERS_TTL_S = 14 * 24 * 3600

#: Task messages naming a run that workers refused as invalid (a hash: "count",
#: and "first", a JSON entry), kept for as long as dead letters; workers/deadletters.py.
REFUSED = PREFIX + "refused:{run_id}"

#: Items of a run sent again because their chunk was lost with a killed worker (a hash: "judge NUL trace id"
#: -> times), so that no item is sent again more than workers.lost.MAX_RESENDS times; workers/lost.py.
RESENT = PREFIX + "resent:{run_id}"
RESENT_TTL_S = 14 * 24 * 3600

#: The lease on one item being judged by one delivery (value: the delivery's token),
#: so that a duplicate delivery does not call the provider for it again; workers/lease.py.
LEASE = PREFIX + "lease:{run_id}:{judge}:{trace_id}"
