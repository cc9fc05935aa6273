"""A run's dead letters as ``status`` shows them and ``resume`` clears them (workers/deadletters.py).

Dead letters are chunks whose rows the ledger would not take after every
retry; they live in the broker's Redis, so without a Redis broker (embedded
mode) a run has none. A broker that cannot be reached is said so in one line;
``status`` still shows what the ledger knows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Final

#: Seconds a CLI command waits for the broker's Redis before saying it could not read it.
CLI_TIMEOUT_S: Final = 3


@dataclass(frozen=True)
class DeadLetterView:
    """The dead letters of one run, or why they could not be read (``unknown``)."""

    run_id: str
    letters: list[Any] = field(default_factory=list)  # workers.deadletters.DeadLetter, oldest first
    unknown: str | None = None
    refused: int = 0  # task messages naming the run that workers refused as invalid
    first_refused: dict[str, Any] | None = None  # the first one's time and error

    @classmethod
    def read(cls, run_id: str, broker_url: str | None) -> DeadLetterView:
        client = _client(broker_url)
        if client is None:
            return cls(run_id)
        from workers.deadletters import DeadLetters

        try:
            letters = DeadLetters(client)
            refused, first = letters.refusals_of(run_id)
            return cls(run_id, letters.of_run(run_id), refused=refused, first_refused=first)
        except Exception as exc:  # the broker is down: the ledger's figures still stand
            return cls(run_id, unknown=f"{type(exc).__name__}: {exc}")
        finally:
            client.close()

    @property
    def items(self) -> int:
        return sum(letter.items for letter in self.letters)

    def as_json(self) -> dict[str, Any]:
        first = self.letters[0].summary() if self.letters else None
        return {"chunks": len(self.letters), "items": self.items, "first": first, "unknown": self.unknown,
                "refused_messages": self.refused, "first_refused": self.first_refused}

    def lines(self) -> list[str]:
        """What ``status`` prints: nothing when there are none, else count, first error and the next step."""
        if self.unknown is not None:
            return [f"dead letters: unknown, the broker could not be read ({self.unknown})"]
        lines = []
        if self.refused:
            first_refused = self.first_refused or {}
            lines.append(
                f"refused messages: workers refused {self.refused} task messages naming this run as invalid "
                f"(first at {first_refused.get('at', '?')}: {first_refused.get('error', '?')}); nothing of them "
                "was written: if they were the run's own chunks (workers of another judgeq version?), fix that, "
                f"then 'judgeq resume {self.run_id}' re-enqueues the items without a row")
        if not self.letters:
            return lines
        first = self.letters[0]
        return lines + [
            f"dead letters: {len(self.letters)} chunks ({self.items} items) whose rows the ledger would not take "
            f"after every retry; first at {first.at} (judge {first.judge}, chunk {first.chunk}): {first.error}",
            f"next: fix the database, then 'judgeq resume {self.run_id}' re-enqueues every item without a row "
            "and clears these dead letters",
        ]


def clear(run_id: str, broker_url: str | None) -> None:
    """Forget a run's dead letters (after ``resume`` re-enqueued their items); say so on stderr if that fails.

    Failing to clear them is not worth failing the resume that already
    happened: they would only be shown again by ``status``.
    """
    client = _client(broker_url)
    if client is None:
        return
    from workers.deadletters import DeadLetters

    try:
        DeadLetters(client).clear(run_id)
    except Exception as exc:
        print(f"judgeq: run {run_id}: its dead letters could not be cleared ({type(exc).__name__}: {exc}); "
              "they are stale, the resume went ahead", file=sys.stderr)
    finally:
        client.close()


def _client(broker_url: str | None) -> Any:
    from workers.broker import redis_for

    return redis_for(broker_url, timeout_s=CLI_TIMEOUT_S)
