"""Provider rate limits: what an LLM judge asks of a limiter, and the in-process limiter.

An LLM judge calls its limiter around every attempt:

- :meth:`RateLimiter.reserve` before the call, with the request's estimated
  tokens: a reservation of the next free slot, returned as the seconds to wait
  before calling (one round trip, no polling). A slot further away than
  ``max_wait_s`` is not reserved: :class:`LimitWait` says how far it is, so
  the caller can hand the record back to the queue instead of holding a slot;
- :meth:`RateLimiter.settle` after the call, with the tokens the provider
  reported, so the token budget follows real usage;
- :meth:`RateLimiter.throttled` on a 429: if 429s persist (see
  :func:`cut_due`), the provider's limit is lower than we think, so the key
  slows down (multiplicative decrease), and recovers linearly over time
  (additive increase).

The algorithm is GCRA (the generic cell rate algorithm) in its reservation
form, applied twice, to requests and to tokens, per :class:`Limit` key (one
provider endpoint and model). With a limit of R per ``period_s`` and a
``headroom`` h, it schedules calls at the rate R·(1-h)/period with a burst of
max(1, ⌊min(R·h/2, R·h/period · 1 s)⌋), so that in ANY window of ``period_s``
the key admits at most R·(1-h/2) + 1 requests (tokens: tpm·(1-h/2) plus one
request's tokens), and in any second no more than one second of the limit
allows, plus one: a provider that enforces R/period per second (as OpenAI and
Anthropic say they may) sees no start-up burst. The unused headroom absorbs
the jitter between admission (the limiter's clock) and arrival at the provider.
A provider's own per-second limit (``Limit.rps``) is a third schedule, over
one second, and a stated burst (``Limit.burst``) caps the burst of both
request schedules.

:class:`LocalLimiter` is the in-process implementation (unit tests);
:class:`SharedLimiter` keeps the same schedule in a locked file, so every
process of one user on one machine shares it (embedded mode: two ``judgeq
submit`` at once on one key stay at the limit together); workers use the
Redis implementation (``workers/ratelimit.py``), whose Lua script does the
same arithmetic atomically for the whole fleet.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import JudgeArgumentError
from .errors import LimiterUnavailable as LimiterUnavailable  # re-exported: the limiter's protocol raises them
from .errors import LimitWait as LimitWait

log = logging.getLogger(__name__)

#: AIMD on 429s: the rate factor is multiplied by CUT (at most once per
#: period/CUT_EVERY), never below MIN_FACTOR, and recovers by RECOVER per period.
CUT = 0.8
CUT_EVERY = 12
MIN_FACTOR = 0.05
RECOVER = 1.0
#: The shortest window a provider may enforce its limit over (OpenAI and Anthropic say a per-minute limit
#: may be enforced per second): the burst never exceeds what this window of the limit allows.
BURST_WINDOW_S = 1.0


def strike_s(period_s: float) -> float:
    """How long the 429s of one bunch of late calls may keep coming: a second, less for short test periods."""
    return min(BURST_WINDOW_S, period_s / CUT_EVERY / 2)


def cut_due(now: float, first_429: float, last_cut: float, period_s: float) -> tuple[bool, float]:
    """Whether this 429 cuts the rate, and the new start of the current strike.

    A 429 alone is a strike, not yet a cut: calls admitted on time can still
    reach the provider together (a process paused, a slow network) and a
    provider enforcing its limit per second refuses that one bunch; cutting
    the rate for it costs a short run a tenth of its throughput (the rate
    recovers over a whole period). The strike's 429s within
    :func:`strike_s` are that same bunch. A 429 after it, and within
    period/CUT_EVERY of the strike's first, says the limit really is lower:
    the rate is cut (and one cut covers period/CUT_EVERY, however many 429s
    answer the overshoot). A limit set too high in judgeq.toml is still found
    within seconds.
    """
    window = period_s / CUT_EVERY
    if now - last_cut < window:
        return False, first_429
    since = now - first_429
    if since < strike_s(period_s):
        return False, first_429  # the same bunch
    if since > window:
        return False, now  # a new strike
    return True, -math.inf


@dataclass(frozen=True)
class Limit:
    """One provider limit: its key (endpoint and model), requests and tokens per period, and what a second allows.

    ``rps``: requests in any one second, where the provider states such a
    limit beside its per-minute one (paced as a schedule of its own, over one
    second, with the same headroom and rate factor). ``burst``: the most
    requests admitted at once (ahead of the paced schedule), where the
    provider states one; without it the burst is what the module docstring says.
    """

    key: str
    rpm: int | None = None
    tpm: int | None = None
    rps: float | None = None
    burst: int | None = None

    @classmethod
    def of(cls, model: str, api_base: str | None, rpm: int | None, tpm: int | None,
           rps: float | None = None, burst: int | None = None) -> Limit:
        """The limit of a judge: judges sharing an endpoint and model share its key."""
        where = f"{api_base or ''}|{model}"
        return cls(key=hashlib.sha256(where.encode()).hexdigest()[:16], rpm=rpm, tpm=tpm, rps=rps, burst=burst)

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.rps is not None


class RateLimiter(Protocol):
    """What an LLM judge needs from a rate limiter (see the module docstring)."""

    def reserve(self, limit: Limit, tokens: int, max_wait_s: float) -> float:
        """Reserve a call; the seconds to wait before making it. Raises LimitWait."""
        ...

    def settle(self, limit: Limit, estimated: int, actual: int) -> None:
        """Correct the token budget by what the call really used."""
        ...

    def throttled(self, limit: Limit, retry_after_s: float | None) -> None:
        """The provider answered 429: slow this key down for a while."""
        ...


@dataclass(frozen=True)
class Pacing:
    """The GCRA parameters of a limit at a rate factor: emission interval and tolerance."""

    interval_s: float  # seconds per request (or per token)
    tolerance_s: float  # how far ahead of schedule a caller may be admitted

    @classmethod
    def of(cls, per_period: float, period_s: float, headroom: float, factor: float, most: int | None = None) -> Pacing:
        """``most``: a cap on the burst (a provider's stated burst)."""
        rate = per_period * (1.0 - headroom) * factor / period_s
        # The burst also fits in one second of the limit (providers may enforce R/period over any second):
        # what a second allows beyond the paced rate, at least one call.
        burst = max(1, math.floor(min(per_period * headroom / 2, (per_period / period_s - rate) * BURST_WINDOW_S)))
        if most is not None:
            burst = max(1, min(burst, most))
        interval = 1.0 / rate
        return cls(interval_s=interval, tolerance_s=(burst - 1) * interval)


def _factor(state: _KeyState, now: float, period_s: float) -> float:
    return min(1.0, state.factor + (now - state.factor_at) * RECOVER / period_s)


@dataclass
class _KeyState:
    tat_requests: float = 0.0
    tat_tokens: float = 0.0
    tat_seconds: float = 0.0  # the per-second schedule (Limit.rps)
    factor: float = 1.0
    factor_at: float = 0.0
    last_cut: float = -math.inf
    first_429: float = -math.inf  # the current strike's first 429 (see cut_due)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    #: The fields kept where processes share a schedule (:class:`SharedLimiter`).
    SHARED = ("tat_requests", "tat_tokens", "tat_seconds", "factor", "factor_at", "last_cut", "first_429")


class LocalLimiter:
    """GCRA in this process: the same arithmetic as the fleet's Redis script."""

    def __init__(self, period_s: float = 60.0, headroom: float = 0.03, clock: Callable[[], float] = time.monotonic) -> None:
        if period_s <= 0 or not 0 <= headroom < 1:
            raise JudgeArgumentError(f"period_s = {period_s} must be > 0 and headroom = {headroom} in [0, 1)")
        self.period_s = period_s
        self.headroom = headroom
        self.clock = clock
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()

    def _state(self, key: str) -> _KeyState:
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _KeyState(factor_at=self.clock())
            return state

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[_KeyState]:
        """The key's schedule, held by this caller alone until the block ends."""
        state = self._state(key)
        with state.lock:
            yield state

    def reserve(self, limit: Limit, tokens: int, max_wait_s: float) -> float:
        if not limit.limited:
            return 0.0
        with self._locked(limit.key) as state:
            now = self.clock()
            factor = _factor(state, now, self.period_s)
            admit = now
            req = tok = sec = None
            if limit.rpm is not None:
                req = Pacing.of(limit.rpm, self.period_s, self.headroom, factor, limit.burst)
                admit = max(admit, state.tat_requests - req.tolerance_s)
            if limit.rps is not None:
                sec = Pacing.of(limit.rps, 1.0, self.headroom, factor, limit.burst)
                admit = max(admit, state.tat_seconds - sec.tolerance_s)
            if limit.tpm is not None:
                tok = Pacing.of(limit.tpm, self.period_s, self.headroom, factor)
                admit = max(admit, state.tat_tokens - tok.tolerance_s)
            wait = admit - now
            if wait > max_wait_s:
                raise LimitWait(wait)
            if req is not None:
                state.tat_requests = max(state.tat_requests, admit) + req.interval_s
            if sec is not None:
                state.tat_seconds = max(state.tat_seconds, admit) + sec.interval_s
            if tok is not None:
                state.tat_tokens = max(state.tat_tokens, admit) + max(tokens, 0) * tok.interval_s
            return wait

    def settle(self, limit: Limit, estimated: int, actual: int) -> None:
        if limit.tpm is None or actual == estimated:
            return
        with self._locked(limit.key) as state:
            factor = _factor(state, self.clock(), self.period_s)
            state.tat_tokens += (actual - estimated) * Pacing.of(limit.tpm, self.period_s, self.headroom, factor).interval_s

    def throttled(self, limit: Limit, retry_after_s: float | None) -> None:
        if not limit.limited:
            return
        with self._locked(limit.key) as state:
            now = self.clock()
            cut, state.first_429 = cut_due(now, state.first_429, state.last_cut, self.period_s)
            if cut:
                state.factor = max(MIN_FACTOR, _factor(state, now, self.period_s) * CUT)
                state.factor_at = now
                state.last_cut = now

    def factor(self, limit: Limit) -> float:
        """The key's current rate factor (1.0: the configured limit); for tests and reports."""
        with self._locked(limit.key) as state:
            return _factor(state, self.clock(), self.period_s)


class SharedLimiter(LocalLimiter):
    """The same schedule shared by every process of this user on this machine, through a locked file.

    For processes that share a key without a Redis broker (two embedded
    ``judgeq submit`` at once): each limit key has a small file in ``folder``
    (by default a per-user runtime folder, see :func:`default_folder`) named by
    the limit's key, a hash of endpoint and model (never an API key), holding
    the seven numbers of the schedule (``_KeyState.SHARED``, little-endian
    doubles). Every reservation takes an exclusive ``flock`` on it, reads,
    computes exactly as :class:`LocalLimiter` does and writes back: one
    schedule, so two processes together stay at the limit rather than each at
    all of it. The clock is the epoch (``time.time``), which every process
    reads alike. A file that cannot be read as a schedule (cut short by a
    crash) counts as a fresh one. Each process keeps its files open (a child
    forked from it opens its own: a shared open file would share the lock).
    """

    _FORMAT = struct.Struct("<" + "d" * len(_KeyState.SHARED))

    def __init__(self, folder: Path, period_s: float = 60.0, headroom: float = 0.03,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(period_s, headroom, clock)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder = folder
        self._files: dict[str, tuple[int, int]] = {}  # key -> (pid that opened it, fd)

    def _file(self, key: str) -> int:
        pid, fd = self._files.get(key, (-1, -1))
        if pid != os.getpid():
            fd = os.open(self.folder / f"rate-{key}.bin", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._files[key] = (os.getpid(), fd)
        return fd

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[_KeyState]:
        import fcntl

        with super()._locked(key) as mine:  # threads of this process queue here, not on the file
            fd = self._file(key)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                state = _KeyState(factor_at=self.clock())
                saved = os.pread(fd, self._FORMAT.size, 0)
                if len(saved) == self._FORMAT.size:
                    for name, value in zip(_KeyState.SHARED, self._FORMAT.unpack(saved)):
                        setattr(state, name, value)
                yield state
                os.pwrite(fd, self._FORMAT.pack(*(getattr(state, name) for name in _KeyState.SHARED)), 0)
                mine.factor = state.factor  # what factor() of this process last saw
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


def machine_limiter(folder: Path | None, period_s: float, headroom: float) -> LocalLimiter:
    """A :class:`SharedLimiter` in ``folder`` (default: :func:`default_folder`); in-process if it cannot be made."""
    target = folder or default_folder()
    try:
        return SharedLimiter(target, period_s, headroom)
    except OSError as exc:
        log.warning("rate limits are not shared with other processes: cannot use %s (%s)", target, exc.strerror)
        return LocalLimiter(period_s, headroom)


def default_folder() -> Path:
    """Where :class:`SharedLimiter` keeps schedules: ``$XDG_RUNTIME_DIR/judgeq``, else a per-user temp folder."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "judgeq"
    return Path(tempfile.gettempdir()) / f"judgeq-{os.getuid()}"


class Unlimited:
    """No limiter: every call may go at once (judges built without one)."""

    def reserve(self, limit: Limit, tokens: int, max_wait_s: float) -> float:
        return 0.0

    def settle(self, limit: Limit, estimated: int, actual: int) -> None:
        return None

    def throttled(self, limit: Limit, retry_after_s: float | None) -> None:
        return None
