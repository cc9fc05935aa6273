"""Records whose teacher verdicts (the fake provider's default: ``pass`` iff the text holds ``GOOD``) a
small model can learn, but not perfectly.

Half the outputs say ``GOOD`` (the teacher passes them). Of the others, a share
``confusing`` say ``good`` in lower case, which the teacher fails but a model
that folds case (as the distilled judge's features do) cannot tell from ``GOOD``:
those are what it is unsure of, and a cascade should escalate. Every record
belongs to a session of three turns, so the holdout splits by session.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WORDS = ("answer the question about paris london berlin rome river mountain history science model data "
         "price value report summary customer account order refund policy shipping delivery week month "
         "product service support team issue ticket update status request").split()


def records(n: int, seed: int, *, words: int = 30, confusing: float = 0.1, prefix: str = "t") -> Iterator[dict[str, Any]]:
    """``n`` records (ids ``{prefix}{i}``) with outputs of about ``words`` words; see the module docstring."""
    rng = random.Random(seed)
    for i in range(n):
        body = [rng.choice(WORDS) for _ in range(words)]
        kind = "pass" if rng.random() < 0.5 else ("confusing" if rng.random() < confusing else "fail")
        if kind != "fail":
            body.insert(rng.randrange(len(body) + 1), "GOOD" if kind == "pass" else "good")
        yield {"id": f"{prefix}{i}", "input": "question: " + " ".join(rng.choice(WORDS) for _ in range(8)),
               "output": " ".join(body), "metadata": {"session_id": f"{prefix}s{i // 3}"}}


def teacher_label(record: dict[str, Any]) -> str:
    """What the fake provider's default verdict says about ``record`` (it reads the prompt's text)."""
    return "pass" if "GOOD" in record["output"] else "fail"


def write(path: Path, n: int, seed: int, **options: Any) -> Path:
    with path.open("w") as file:
        for record in records(n, seed, **options):
            file.write(json.dumps(record) + "\n")
    return path
