"""The fleet's rate limiter: GCRA in one Lua script on Redis, shared by every worker.

The arithmetic is that of :class:`judges.limits.LocalLimiter` (see
:mod:`judges.limits` for the algorithm and its tolerance); here it runs inside
Redis, atomically, with Redis's own clock (``TIME``), so every process and
machine of the fleet reserves slots from one schedule and no two clocks need to
agree. One key per limit (``keys.RATE``), a hash of seven numbers:

    tr  the request schedule's theoretical arrival time (epoch seconds)
    tt  the token schedule's
    ts  the per-second schedule's (a judge's ``rps``)
    f   the AIMD rate factor set at the last 429 (1.0: the configured limit)
    fa  when f was set (it recovers linearly from there)
    lc  the last cut (one cut per period/12, however many 429s answer one overshoot)
    fs  the current strike's first 429 (a lone bunch of 429s is forgiven: ``judges.limits.cut_due``)

The key expires two periods after its schedules run dry. One round trip per
call (reserve), one more when the provider's token count differs from the
estimate (settle), one per 429 (throttle).
"""

from __future__ import annotations

from typing import Any

from judges.limits import (BURST_WINDOW_S, CUT, CUT_EVERY, MIN_FACTOR, RECOVER, Limit, LimiterUnavailable,
                           LimitWait)

from .errors import WorkerArgumentError
from .keys import RATE

SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op = ARGV[1]
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
local period, h = tonumber(ARGV[4]), tonumber(ARGV[5])
local rps, most = tonumber(ARGV[6]), tonumber(ARGV[7])
local s = redis.call('HMGET', KEYS[1], 'tr', 'tt', 'f', 'fa', 'lc', 'ts', 'fs')
local tr, tt, ts = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[6]) or 0
local f, fa, lc, fs = tonumber(s[3]) or 1, tonumber(s[4]) or now, tonumber(s[5]) or 0, tonumber(s[7]) or 0
local factor = math.min(1, f + (now - fa) * %(recover)s / period)
local function pacing(per, over, cap)
  over = over or period
  local interval = over / (per * (1 - h) * factor)
  local paced = per * (1 - h) * factor / over
  local burst = math.max(1, math.floor(math.min(per * h / 2, (per / over - paced) * %(burst_window)s)))
  if cap and cap > 0 then burst = math.max(1, math.min(burst, cap)) end
  return interval, (burst - 1) * interval
end
local function fmt(x) return string.format('%%.6f', x) end
local result = {'ok', '0'}
if op == 'reserve' then
  local tokens, max_wait = tonumber(ARGV[8]), tonumber(ARGV[9])
  local admit, ri, rtol, ti, ttol, si, stol = now, 0, 0, 0, 0, 0, 0
  if rpm > 0 then ri, rtol = pacing(rpm, period, most); admit = math.max(admit, tr - rtol) end
  if tpm > 0 then ti, ttol = pacing(tpm); admit = math.max(admit, tt - ttol) end
  if rps > 0 then si, stol = pacing(rps, 1, most); admit = math.max(admit, ts - stol) end
  local wait = admit - now
  if wait > max_wait then return {'wait', fmt(wait)} end
  if rpm > 0 then tr = math.max(tr, admit) + ri end
  if tpm > 0 then tt = math.max(tt, admit) + tokens * ti end
  if rps > 0 then ts = math.max(ts, admit) + si end
  redis.call('HSET', KEYS[1], 'tr', fmt(tr), 'tt', fmt(tt), 'ts', fmt(ts))
  result = {'ok', fmt(wait)}
elseif op == 'settle' then
  if tpm > 0 then
    local ti = pacing(tpm)
    tt = tt + tonumber(ARGV[8]) * ti
    redis.call('HSET', KEYS[1], 'tt', fmt(tt))
  end
elseif op == 'throttle' then
  local window = period / %(cut_every)s
  local since = now - fs
  if now - lc < window or since < math.min(%(burst_window)s, window / 2) then
    -- covered by the last cut, or the same bunch as the strike's first 429
  elseif since > window then
    redis.call('HSET', KEYS[1], 'fs', fmt(now))  -- a new strike: no cut yet
  else
    redis.call('HSET', KEYS[1], 'f', fmt(math.max(%(min_factor)s, factor * %(cut)s)), 'fa', fmt(now), 'lc', fmt(now),
               'fs', '0')
  end
  result = {'ok', fmt(factor)}
elseif op == 'factor' then
  result = {'ok', fmt(factor)}
end
redis.call('EXPIRE', KEYS[1], math.ceil(math.max(tr, tt, ts, now) - now + 2 * period))
return result
""" % {"recover": RECOVER, "cut_every": CUT_EVERY, "min_factor": MIN_FACTOR, "cut": CUT,
       "burst_window": BURST_WINDOW_S}


class RedisLimiter:
    """:class:`judges.limits.RateLimiter` for the fleet: one schedule per limit key in Redis."""

    def __init__(self, client: Any, period_s: float = 60.0, headroom: float = 0.03) -> None:
        if period_s <= 0 or not 0 <= headroom < 1:
            raise WorkerArgumentError(f"period_s = {period_s} must be > 0 and headroom = {headroom} in [0, 1)")
        self.client = client
        self.period_s = period_s
        self.headroom = headroom
        self._script = client.register_script(SCRIPT)

    def _run(self, op: str, limit: Limit, *extra: float) -> tuple[str, float]:
        import redis

        args = [op, limit.rpm or 0, limit.tpm or 0, self.period_s, self.headroom, limit.rps or 0, limit.burst or 0,
                *extra]
        try:
            status, value = self._script(keys=[RATE.format(key=limit.key)], args=args)
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"the rate limiter's Redis is unavailable: {exc}") from exc
        return (status.decode() if isinstance(status, bytes) else str(status)), float(value)

    def reserve(self, limit: Limit, tokens: int, max_wait_s: float) -> float:
        if not limit.limited:
            return 0.0
        status, wait = self._run("reserve", limit, max(tokens, 0), max_wait_s)
        if status == "wait":
            raise LimitWait(wait)
        return max(0.0, wait)

    def settle(self, limit: Limit, estimated: int, actual: int) -> None:
        if limit.tpm is None or actual == estimated:
            return
        try:
            self._run("settle", limit, actual - estimated)
        except LimiterUnavailable:
            pass  # a correction lost costs accuracy, not correctness

    def throttled(self, limit: Limit, retry_after_s: float | None) -> None:
        if not limit.limited:
            return
        try:
            self._run("throttle", limit)
        except LimiterUnavailable:
            pass

    def factor(self, limit: Limit) -> float:
        """The key's current rate factor (1.0: the configured limit); for tests and reports."""
        return self._run("factor", limit)[1]
