"""The worker's consumer: Celery's own, made to survive a Redis restart.

Works around a crash of Celery 5.7.0 with kombu 5.7.0 on the Redis transport
(the newest releases; no fixed one exists yet). When the broker connection
drops, ``Consumer.on_connection_error_after_connected`` first calls
``connection.collect()``, which closes the channels and then detaches the
transport from the connection (``transport.client = None``), and since
celery/celery#10242 it then calls ``connection.close()`` as well.

A channel that waits in ``BRPOP`` (its queue empty, its prefetch not full)
when the socket dies is the trigger. kombu's ``redis.Channel.close()`` first
reads that pending reply; on a dead socket the read raises before the channel
is marked closed, so ``collect()`` leaves the channel open. The second close
then gets past the read and restores the channel's unacknowledged messages,
which needs a new connection pool built from ``transport.client``, by now
``None``: ``AttributeError: 'NoneType' object has no attribute 'hostname'`` in
``_connparams``. ``ignore_errors`` passes only connection errors, so the
AttributeError ends the worker ("Unrecoverable error") whenever it held
unacknowledged chunks, with the prefork pool and the threads pool alike (both
run Celery's event loop). kombu#582 (2016) is the same failure through
another path.

The workaround finishes closing every channel while the transport is still
attached: a close that failed on the pending reply (kombu clears the pending
flag as it fails) is simply tried once more. The unacknowledged messages are
then put back at once if Redis answers, or stay in Redis's unacked index and
come back after the visibility timeout if it does not: at-least-once holds
either way. Remove this module when a Celery or kombu release closes the
channel in one go.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.utils.threads import bound_open_broker_sockets
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.consumer import COLLECT_SOCKET_TIMEOUT
from kombu.common import ignore_errors

log = logging.getLogger(__name__)

#: Attempts to close one channel: the first may fail on the lost ``BRPOP`` reply.
CLOSE_ATTEMPTS = 2


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer, closing the lost connection's channels before Celery collects it."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        close_channels(self.connection)
        super().on_connection_error_after_connected(exc)


def close_channels(connection: Any) -> None:
    """Close each channel of ``connection``'s transport, retrying a close that failed half-way."""
    if connection is None or getattr(connection, "_transport", None) is None:
        return
    # Reads on sockets already open are bounded as Celery bounds them before collecting.
    bound_open_broker_sockets(connection, COLLECT_SOCKET_TIMEOUT)
    for channel in list(getattr(connection.transport, "channels", None) or ()):
        for _ in range(CLOSE_ATTEMPTS):
            if getattr(channel, "closed", True):
                break
            ignore_errors(connection, channel.close)
        if not getattr(channel, "closed", True):
            log.warning("broker channel %r could not be closed after the connection was lost", channel)
