"""Exit codes of gating commands (DESIGN.md); only the CLI turns errors into these."""

OK = 0  #: the gate passed (or the command did its job)
GATE_FAILED = 1  #: a gate failed
BAD_INPUT = 2  #: bad input or usage; nothing was enqueued
INFRASTRUCTURE = 3  #: broker, ledger or provider failure, or --timeout; the run stays resumable
