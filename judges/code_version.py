"""The versions of judgeq's judge code, which every judge version hashes (:mod:`judges.version`).

Bump one whenever a change can alter a verdict, so old and new verdicts never
mix silently under one judge version. A local builtin's own code version is
declared where it is registered (``@builtin(name, version=...)``,
:mod:`judges.registry`), beside the code it versions.
"""

from typing import Final

#: Shared by every judge: the record model, prompt rendering, the verdict form.
JUDGE_CODE_VERSION: Final = "1"

#: The LLM judge: its answer instructions and parsing rules (judges/llm.py, parse.py, prompt.py).
LLM_CODE_VERSION: Final = "1"

#: Distilled judges and cascades: features, inference and the cascade's rule (judges/distilled*.py, cascade.py).
DISTILLED_CODE_VERSION: Final = "1"
