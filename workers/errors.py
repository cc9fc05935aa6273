"""Errors raised by the worker side.

    BrokerError              base of everything raised by workers/
    └── BrokerUnavailable    the broker cannot be reached to publish or inspect
"""


class BrokerError(Exception):
    """Raised for anything that goes wrong talking to the task broker."""


class BrokerUnavailable(BrokerError):
    """Raised when the broker cannot be reached (the run stays resumable)."""
