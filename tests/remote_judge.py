"""An LLM judge pointed at the fake provider: its config, a dataset and the environment, for remote tests.

The environment lets workers send the judge's key (``TEST_PROVIDER_KEY``) to the fake
provider, and nowhere else (``JUDGEQ_KEY_ENDPOINTS``, see judges/egress.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from .processes import base_env
from .provider import FakeProvider

CONFIG = """
[judges.faithful]
type = "llm"
model = "openai/judge-small"
api_base = "{base}"
api_key_env = "TEST_PROVIDER_KEY"
prompt_text = "{prompt} Output: {{output}}"
prompt = "inline"
timeout_s = {timeout}
price_per_mtok_in = 1.0
price_per_mtok_out = 2.0
{limits}
"""


def dataset(path: Path, n: int) -> Path:
    with path.open("w") as f:
        for i in range(n):
            word = "GOOD" if i % 4 else "bad"
            f.write(json.dumps({"id": f"t{i}", "input": f"question {i}", "output": f"{word} answer {i}"}) + "\n")
    return path


def env_for(tmp_path: Path, provider: FakeProvider, *, limits: str = "", timeout: float = 5,
            prompt: str = "Grade this answer.", **extra: str) -> dict[str, str]:
    (tmp_path / "judgeq.toml").write_text(
        CONFIG.format(base=provider.base_url, limits=limits, timeout=timeout, prompt=prompt))
    return base_env(JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), TEST_PROVIDER_KEY="sk-test-123",
                    JUDGEQ_KEY_ENDPOINTS=json.dumps({"TEST_PROVIDER_KEY": [provider.base_url]}),
                    JUDGEQ_POLL_S="0.2", **extra)
