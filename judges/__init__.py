"""Judge definitions: local judges and remote LLM judges (through litellm).

A judge is a pure function of its input and its definition. This package
imports nothing else of judgeq's but the error root (``judgeq.errors``, a
leaf), and it imports litellm only when a remote judge is called.
"""
