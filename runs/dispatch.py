"""Where chunks go: the dispatcher protocol, and the one decision between a fleet and this process.

Senders (:mod:`runs.intake`, through :mod:`runs.sending`) hand every chunk
message to a :class:`Dispatcher` and never learn what it is. The two kinds
live with the code they need, in the Celery adapter:
``workers.dispatch.CeleryDispatcher`` publishes to the broker, and
``workers.dispatch.EmbeddedDispatcher`` judges in this process with the same
chunk code a worker runs. Which one a process uses is decided here, by
:func:`fleet_mode`, and nowhere else: a broker URL means a fleet judges,
none means this process does (embedded mode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from ledger.urls import ambiguous_password, has_query_secret, mask_url, unescaped_message

from .errors import BrokerUrlError

if TYPE_CHECKING:
    from .message import ChunkMessage


class Dispatcher(Protocol):
    """Where chunks go. ``embedded``: judged in this process, which must stay until they are."""

    embedded: bool

    def send(self, message: ChunkMessage, queue: str) -> None: ...

    def close(self) -> None: ...


class FleetDispatcher(Dispatcher, Protocol):
    """A dispatcher to the fleet's broker: ``check()`` raises BrokerUnavailable unless the broker answers now."""

    def check(self) -> None: ...


F = TypeVar("F", bound=FleetDispatcher)


def fleet_mode(broker_url: str | None) -> bool:
    """Whether a fleet judges (``JUDGEQ_BROKER_URL`` set) or this process does (unset: embedded mode)."""
    return bool(broker_url)


def connect(broker_url: str | None, fleet: Callable[[], F]) -> F | None:
    """The fleet's dispatcher made by ``fleet()``, its broker checked now; None in embedded mode.

    Checked before anything is written, so a dead broker fails a submit with
    nothing stored.
    """
    if not fleet_mode(broker_url):
        return None
    dispatcher = fleet()
    dispatcher.check()
    return dispatcher


def check_broker_url(url: str | None) -> None:
    """Raise BrokerUrlError for a password parsers would misread: unescaped '@' or '/', or in the query."""
    if url and ambiguous_password(url):
        raise BrokerUrlError(unescaped_message(url, "JUDGEQ_BROKER_URL"))
    if url and has_query_secret(url):  # kombu fails on it, and Celery's banner would print it
        raise BrokerUrlError(f"JUDGEQ_BROKER_URL: {mask_url(url)} holds a password in its query, which the broker "
                             "client does not read; write it as redis://:PASSWORD@host:6379/0")
