"""Writes examples/traces.jsonl: a day (2026-11-22, UTC) of synthetic production traces for `judgeq online`.

Deterministic (a fixed seed), so the file in the repository is what this writes. Locales are skewed as real
traffic is (en 80 %, de 14 %, fr 5 %, ja 1 %); traces come in sessions; about one answer in six is wrong.
Run: python examples/make_traces.py
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

QUESTIONS = [
    ("What is the capital of France?", "Paris"), ("How many legs does a spider have?", "8"),
    ("What is the chemical symbol for gold?", "Au"), ("Which planet is the largest?", "Jupiter"),
    ("What is 12 times 12?", "144"), ("Who wrote Hamlet?", "William Shakespeare"),
    ("What is the boiling point of water in Celsius?", "100"), ("What is the capital of Japan?", "Tokyo"),
]
LOCALES = [("en", 0.80), ("de", 0.14), ("fr", 0.05), ("ja", 0.01)]


def main(n_sessions: int = 400, path: Path = Path(__file__).with_name("traces.jsonl")) -> None:
    rng = random.Random(20261122)
    day = datetime(2026, 11, 22, tzinfo=UTC)
    lines = []
    for s in range(n_sessions):
        locale = rng.choices([loc for loc, _ in LOCALES], [w for _, w in LOCALES])[0]
        start = day + timedelta(seconds=rng.randrange(0, 86_400 - 600))
        for turn in range(rng.randint(1, 4)):
            question, answer = rng.choice(QUESTIONS)
            output = answer if rng.random() > 1 / 6 else "I am not sure."
            ts = start + timedelta(seconds=40 * turn + rng.randrange(0, 30))
            lines.append((ts, {"trace_id": f"t-{s:04d}-{turn}", "input": question, "output": output,
                               "expected": answer, "ts": ts.isoformat().replace("+00:00", "Z"),
                               "metadata": {"locale": locale, "session_id": f"s-{s:04d}",
                                            "user_id": f"u-{s % 150:03d}"}}))
    lines.sort(key=lambda pair: pair[0])
    path.write_text("".join(json.dumps(record) + "\n" for _, record in lines))


if __name__ == "__main__":
    main()
