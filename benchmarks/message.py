"""The chunk message on the hot path: ``ChunkMessage`` built, serialised and checked, per record.

    python -m benchmarks.message [--records 1000] [--chunks 50] [--repeat 5] [--json]

Every chunk a submit sends is built (``model_construct``: the sender's own
records) and turned into the task argument (``to_json``); every chunk a
worker receives is checked as untrusted input (``from_json``). This measures
those three steps on chunks of ``--records`` records of about 300 bytes (the
offline benchmark's shape), best of ``--repeat`` runs, in this process, and
prints them in microseconds per record beside the machine reference
(``benchmarks/machine.py``), also as a ratio to it. Kombu's own ``json.dumps``
of the same argument is measured too, for scale.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from benchmarks.machine import describe, in_loops, reference
from runs.message import ChunkMessage

JUDGE = {"name": "noop", "version": "noop@0123456789ab", "kind": "local", "builtin": "noop", "params": {}}


def _records(n: int, chunk: int) -> list[dict[str, Any]]:
    return [{"id": f"c{chunk}-t{i:05d}", "input": f"What is item {i} about? " * 3,
             "output": f"It is about the number {i}, and nothing else. " * 3, "context": None, "expected": None,
             "metadata": {"locale": "de", "session_id": f"s{i // 4}"}, "ts": None} for i in range(n)]


def _best(step: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best


def measure(records: int, chunks: int, repeat: int) -> dict[str, float]:
    """Microseconds per record of each step, best of ``repeat``."""
    parts = [_records(records, c) for c in range(chunks)]
    hashes = [{r["id"]: "h" * 64 for r in part} for part in parts]

    # Before 2026-11-29 ChunkMessage was a dataclass: its constructor did not validate either.
    construct = getattr(ChunkMessage, "model_construct", ChunkMessage)

    def build() -> list[ChunkMessage]:
        return [construct(run_id="r20261129-040000-abcdef", dataset="d" * 64, judge=JUDGE,
                          records=part, chunk=i, hashes=h, weights={}, strata={})
                for i, (part, h) in enumerate(zip(parts, hashes, strict=True))]

    messages = build()
    bodies = [m.to_json() for m in messages]
    wire = [json.loads(json.dumps(body)) for body in bodies]
    total = records * chunks
    figures = {
        "build": _best(build, repeat),
        "to_json": _best(lambda: [m.to_json() for m in messages], repeat),
        "json.dumps (kombu)": _best(lambda: [json.dumps(b) for b in bodies], repeat),
        "from_json": _best(lambda: [ChunkMessage.from_json(w) for w in wire], repeat),
    }
    return {step: seconds / total * 1e6 for step, seconds in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000, help="records per chunk")
    parser.add_argument("--chunks", type=int, default=50, help="chunks per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best is kept")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    ref = reference()
    figures = measure(args.records, args.chunks, args.repeat)
    if args.json:
        print(json.dumps({"us_per_record": figures, "reference": ref}))
        return
    print(f"ChunkMessage, {args.chunks} chunks of {args.records} records, best of {args.repeat}")
    print(describe(ref))
    for step, micros in figures.items():
        print(f"  {step:<20} {micros:8.2f} µs/record  ({in_loops(micros, ref):.3f} µs / the loop's seconds)")


if __name__ == "__main__":
    main()
