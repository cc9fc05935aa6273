"""A fake OpenAI-compatible chat provider: a real HTTP server for tests and benchmarks.

It serves ``POST /v1/chat/completions`` (and ``/chat/completions``) on
127.0.0.1 from a background thread, so litellm talks to it over real HTTP
exactly as it would to a self-hosted model (``model="openai/<name>"`` with
``api_base=provider.base_url``)::

    with FakeProvider(rpm=600, latency_s=0.05) as p:
        p.base_url          # "http://127.0.0.1:PORT/v1"
        ...
        p.count(429)        # how many calls were rate limited

What it answers, in this order of checks, for every request:

0. Down (:meth:`FakeProvider.down`, :meth:`FakeProvider.outage`): in mode
   ``"503"`` a 503 Service Unavailable; in mode ``"refuse"`` nothing at all,
   as the listening socket is closed (connections are refused) and open
   connections are dropped, until :meth:`FakeProvider.up`.
1. ``require_key`` set and the ``Authorization: Bearer`` value differs: 401.
   The error message echoes the key it was given (a real provider echoes a
   masked one), so tests can check that the client never repeats it.
2. ``script`` not exhausted: the next scripted outcome (``"ok"``, ``"500"``,
   ``"429"``, ``"garbage"``, ``"timeout"``), whatever the probabilities say.
3. ``rpm`` set and ``rpm`` requests were already admitted in the last
   ``window_s`` seconds (a sliding window, 60 s by default): 429 with a
   ``Retry-After`` header (whole seconds until the oldest admitted request
   leaves the window). Rejected requests do not count against the window.
   ``per_second`` set: the same over any one second as well (a provider that
   enforces its per-minute limit over shorter intervals too), checked after
   ``rpm``; a request must fit both windows to be admitted.
4. With the seeded probabilities: ``p_429`` a 429 with ``Retry-After:
   retry_after_s`` (and ``retry-after-ms`` when ``retry_after_ms``; also sent
   on the limit's 429s), ``p_500`` a 500, ``p_garbage`` a 200 whose
   content is prose and not JSON, ``p_timeout`` a response delayed by
   ``timeout_sleep_s`` (longer than any sane client timeout).
5. Otherwise, after ``latency_s``, a 200 whose ``choices[0].message.content``
   is the JSON text of ``verdict(body)``.

The default verdict is deterministic and reads only the last user message:
``label`` is ``"pass"`` if it contains the word ``GOOD`` (upper case) and
``"fail"`` otherwise; ``score`` is ``n`` when the text contains ``SCORE=n``,
otherwise 1.0 for pass and 0.0 for fail. Pass your own ``verdict`` (a function
of the parsed request body returning a dict, or a str used verbatim as the
content) to answer anything else.

Every request is recorded (:class:`Call`: time, path, status, parsed body,
arrival, and the usage tokens of a 200) for assertions; :meth:`FakeProvider.max_in_window` is the most
requests that arrived in any window. ``usage`` estimates tokens as characters / 4.

Run by hand: ``python -m tests.provider --port 8000 --rpm 1200 --latency 0.15``.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Verdict = Callable[[dict[str, Any]], "dict[str, Any] | str"]

OUTCOMES = ("ok", "500", "429", "garbage", "timeout")
_SCORE = re.compile(r"SCORE=(-?\d+(?:\.\d+)?)")


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a chat request body."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # the multi-part form
                return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def default_verdict(body: dict[str, Any]) -> dict[str, Any]:
    """``pass`` if the user message contains ``GOOD``; ``SCORE=n`` sets the score."""
    text = last_user_text(body)
    passed = "GOOD" in text
    match = _SCORE.search(text)
    score = float(match.group(1)) if match else (1.0 if passed else 0.0)
    return {
        "label": "pass" if passed else "fail",
        "score": score,
        "reason": "fake provider: the text " + ("contains" if passed else "lacks") + " GOOD",
    }


@dataclass(frozen=True)
class Call:
    """One request the provider received, and what it answered."""

    ts: float
    path: str
    status: int
    outcome: str
    body: dict[str, Any] | None
    authorization: str = field(default="", repr=False)
    arrived: float = 0.0  # time.monotonic() when the request arrived (``ts`` is when it was answered)
    tokens_in: int = 0  # the usage a 200 reported
    tokens_out: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler sleeping out a "timeout" must not block close()
    provider: FakeProvider


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    disable_nagle_algorithm = True  # else each keep-alive answer waits ~40 ms for a delayed ACK

    def setup(self) -> None:
        super().setup()
        with self.server.provider._lock:
            self.server.provider._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.provider._lock:
            self.server.provider._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # quiet: the provider records calls instead

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.server.provider._handle(self, raw)

    def do_GET(self) -> None:  # noqa: N802
        self.send_json(404, {"error": {"message": f"no route GET {self.path}", "type": "not_found"}})

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer


class FakeProvider:
    """An OpenAI-compatible chat completions server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        rpm: int | None = None,
        window_s: float = 60.0,
        per_second: int | None = None,
        p_500: float = 0.0,
        p_garbage: float = 0.0,
        p_timeout: float = 0.0,
        p_429: float = 0.0,
        retry_after_s: float = 1.0,
        retry_after_ms: bool = False,
        timeout_sleep_s: float = 30.0,
        require_key: str | None = None,
        seed: int = 0,
        verdict: Verdict = default_verdict,
        script: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        served_model: str | None = None,
        system_fingerprint: str | None = None,
    ) -> None:
        for outcome in script or []:
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown scripted outcome {outcome!r}; use one of {', '.join(OUTCOMES)}")
        self.latency_s = latency_s
        self.rpm = rpm
        self.window_s = window_s
        self.per_second = per_second
        self.p_500 = p_500
        self.p_garbage = p_garbage
        self.p_timeout = p_timeout
        self.p_429 = p_429
        self.retry_after_s = retry_after_s
        self.retry_after_ms = retry_after_ms
        self.timeout_sleep_s = timeout_sleep_s
        self.require_key = require_key
        self.verdict = verdict
        #: What the answers say served them: the model (default: the one asked for, as the request names it)
        #: and a system fingerprint (default: none sent). Change them between calls to rotate the model
        #: behind an alias, as a provider may.
        self.served_model = served_model
        self.system_fingerprint = system_fingerprint
        self._script = collections.deque(script or [])
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._admitted: collections.deque[float] = collections.deque()
        self._admitted_second: collections.deque[float] = collections.deque()
        self._calls: list[Call] = []
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._arrival = threading.local()  # each handler thread's request arrival time
        self._server = _Server((host, port), _Handler)
        self._server.provider = self
        self._thread: threading.Thread | None = None
        self._down: str | None = None  # None, "503" or "refuse"
        self._up_timer: threading.Timer | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The ``api_base`` to give litellm, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeProvider:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (clients see them closed)."""
        self._stopping.set()  # wakes handlers sleeping out latency or a timeout
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever: only when it runs
        self._server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:  # keep-alive handlers otherwise wait for the next request
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def down(self, mode: str = "503") -> None:
        """An outage from now until :meth:`up`: ``"503"`` answers 503, ``"refuse"`` refuses connections."""
        if mode not in ("503", "refuse"):
            raise ValueError(f"unknown outage mode {mode!r}; use '503' or 'refuse'")
        with self._lock:
            self._down = mode
        if mode == "refuse" and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()  # nothing listens: new connections are refused
            self._thread.join(timeout=5)
            self._thread = None
            self._drop_connections()

    def up(self) -> None:
        """End the outage: answer again (on the same port)."""
        with self._lock:
            mode, self._down = self._down, None
        if mode == "refuse" and not self._stopping.is_set():
            self._server = _Server(("127.0.0.1", self.port), _Handler)  # the closed server keeps its address
            self._server.provider = self
            self.start()

    def outage(self, seconds: float, mode: str = "503") -> None:
        """Down from now for ``seconds`` (then up again by itself)."""
        self.down(mode)
        self._up_timer = threading.Timer(seconds, self.up)
        self._up_timer.daemon = True
        self._up_timer.start()

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down is not None

    def _drop_connections(self) -> None:
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests read ---------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._calls)

    def count(self, status: int | None = None) -> int:
        """How many requests were answered (with ``status``, if given)."""
        with self._lock:
            return sum(1 for c in self._calls if status is None or c.status == status)

    def reset(self) -> None:
        """Forget recorded calls and the rate window (between benchmark phases)."""
        with self._lock:
            self._calls.clear()
            self._admitted.clear()
            self._admitted_second.clear()

    # -- serving -----------------------------------------------------------

    def _decide(self, authorization: str) -> tuple[str, float]:
        """The outcome of one request, and the Retry-After for a 429."""
        with self._lock:
            if self._down is not None:
                return "503", 0.0
            if self.require_key is not None and authorization != f"Bearer {self.require_key}":
                return "401", 0.0
            if self._script:
                return self._script.popleft(), 1.0
            now = time.monotonic()
            if self.rpm is not None:
                while self._admitted and self._admitted[0] <= now - self.window_s:
                    self._admitted.popleft()
                if len(self._admitted) >= self.rpm:
                    return "429", self._admitted[0] + self.window_s - now
            if self.per_second is not None:
                while self._admitted_second and self._admitted_second[0] <= now - 1.0:
                    self._admitted_second.popleft()
                if len(self._admitted_second) >= self.per_second:
                    return "429", self._admitted_second[0] + 1.0 - now
                self._admitted_second.append(now)
            if self.rpm is not None:
                self._admitted.append(now)
            if self.p_429 and self._random.random() < self.p_429:
                if self.rpm is not None:
                    self._admitted.pop()  # a rejected request does not count against the window
                if self.per_second is not None:
                    self._admitted_second.pop()
                return "429", self.retry_after_s
            draw = self._random.random()
            if draw < self.p_500:
                return "500", 0.0
            if draw < self.p_500 + self.p_garbage:
                return "garbage", 0.0
            if draw < self.p_500 + self.p_garbage + self.p_timeout:
                return "timeout", 0.0
            return "ok", 0.0

    def _record(self, path: str, status: int, outcome: str, body: dict[str, Any] | None, auth: str,
                usage: dict[str, int] | None = None) -> None:
        arrived = getattr(self._arrival, "t", time.monotonic())
        tokens = (usage["prompt_tokens"], usage["completion_tokens"]) if usage else (0, 0)
        with self._lock:
            self._calls.append(Call(time.time(), path, status, outcome, body, auth, arrived, *tokens))

    def max_in_window(self, window_s: float | None = None, *, statuses: tuple[int, ...] | None = None) -> int:
        """The most requests that arrived within any ``window_s`` (default: the rate window), sliding."""
        window = self.window_s if window_s is None else window_s
        times = sorted(c.arrived for c in self.calls if statuses is None or c.status in statuses)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def _handle(self, handler: _Handler, raw: bytes) -> None:
        self._arrival.t = time.monotonic()
        path = handler.path.split("?", 1)[0].rstrip("/")
        auth = handler.headers.get("Authorization", "")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._record(path, 404, "404", None, auth)
            handler.send_json(404, {"error": {"message": f"no route POST {path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._record(path, 400, "400", None, auth)
            handler.send_json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}})
            return
        outcome, retry_after = self._decide(auth)
        if outcome == "401":
            given = auth.removeprefix("Bearer ")
            self._record(path, 401, outcome, body, auth)
            message = f"Incorrect API key provided: {given}. You can find your API key in your account."
            handler.send_json(401, {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}})
            return
        if outcome == "429":
            seconds = max(1, math.ceil(retry_after))
            headers = {"Retry-After": str(seconds)}
            if self.retry_after_ms:  # OpenAI's finer header, which clients prefer
                headers["retry-after-ms"] = str(max(1, round(retry_after * 1000)))
            self._record(path, 429, outcome, body, auth)
            handler.send_json(
                429,
                {"error": {"message": f"Rate limit reached; retry after {seconds}s", "type": "rate_limit_error"}},
                headers=headers,
            )
            return
        if outcome == "503":
            self._record(path, 503, outcome, body, auth)
            handler.send_json(503, {"error": {"message": "the service is unavailable", "type": "server_error"}})
            return
        if outcome == "timeout":
            self._stopping.wait(self.timeout_sleep_s)
        elif self.latency_s > 0:
            self._stopping.wait(self.latency_s)
        if outcome == "500":
            self._record(path, 500, outcome, body, auth)
            handler.send_json(500, {"error": {"message": "fake internal server error", "type": "server_error"}})
            return
        if outcome == "garbage":
            content = "Well, I think the answer is mostly fine, honestly."
        else:
            answer = self.verdict(body)
            content = answer if isinstance(answer, str) else json.dumps(answer)
        completion = self._completion(body, content)
        self._record(path, 200, outcome, body, auth, completion["usage"])
        handler.send_json(200, completion)

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [])
        prompt_tokens = max(1, prompt_chars // 4)
        completion_tokens = max(1, len(content) // 4)
        identity = {} if self.system_fingerprint is None else {"system_fingerprint": self.system_fingerprint}
        return {
            **identity,
            "id": f"chatcmpl-fake-{self.count()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_model or body.get("model", "fake"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.provider", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--rpm", type=int, default=None, help="requests per sliding window (default: no limit)")
    parser.add_argument("--window", type=float, default=60.0, help="the rate window in seconds")
    parser.add_argument("--per-second", type=int, default=None, help="requests in any one second (default: no limit)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--p-500", type=float, default=0.0)
    parser.add_argument("--p-garbage", type=float, default=0.0)
    parser.add_argument("--p-timeout", type=float, default=0.0)
    parser.add_argument("--require-key", default=None, help="answer 401 unless this bearer key is sent")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    provider = FakeProvider(
        host=args.host,
        port=args.port,
        rpm=args.rpm,
        window_s=args.window,
        per_second=args.per_second,
        latency_s=args.latency,
        p_500=args.p_500,
        p_garbage=args.p_garbage,
        p_timeout=args.p_timeout,
        require_key=args.require_key,
        seed=args.seed,
    )
    print(f"fake provider on {args.host}:{provider.port}; api_base = http://{args.host}:{provider.port}/v1", flush=True)
    try:
        provider._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        provider._server.server_close()
        print(
            f"{provider.count()} requests, {provider.count(200)} answered, {provider.count(429)} rate limited",
            flush=True,
        )


if __name__ == "__main__":
    main()
