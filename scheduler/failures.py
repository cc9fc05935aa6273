"""How a command that failed ends: one line on stderr and the exit code of its error.

Every exception maps to a code through ``judgeq.errors.exit_code`` (the tree is
drawn there; a bad ``JUDGEQ_*`` setting is bad input); one nothing expected
(exit 4) keeps its traceback in a file named in the message.
"""

from __future__ import annotations

import sys
from typing import NoReturn, Optional

from judgeq.errors import INTERNAL, bad_setting, exit_code


def fail(exc: Exception, *, debug: bool = False) -> NoReturn:
    """Print ``exc`` as one line (its traceback too with ``debug``) and exit with its code."""
    import traceback

    message = _settings_problem(exc)
    code = exit_code(exc)
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if code == INTERNAL:
        message = f"internal error: {type(exc).__name__}: {one_line(exc)}; {_keep_traceback(exc, debug)}"
    print(f"judgeq: {message or one_line(exc)}", file=sys.stderr)
    sys.exit(code)


def one_line(exc: BaseException) -> str:
    """The error's text on one line (its class name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _settings_problem(exc: Exception) -> Optional[str]:
    """A bad ``JUDGEQ_*`` variable, said in one line; None for any other error."""
    if not bad_setting(exc):
        return None
    from ledger.urls import mask_url

    error = exc.errors()[0]
    name = "JUDGEQ_" + "_".join(str(part) for part in error["loc"]).upper()
    value = mask_url(str(error.get("input")))[:60]  # a URL's password never reaches a terminal or a log
    return f"setting {name}={value!r}: {error['msg']}; fix the variable (see the README's settings table)"


def _keep_traceback(exc: BaseException, debug: bool) -> str:
    """Write the traceback to a file of its own; say where (or, failing that, how to see it)."""
    import tempfile
    import traceback

    from ledger.urls import mask_url

    if debug:
        return "the traceback is above; please report it"
    try:
        with tempfile.NamedTemporaryFile("w", prefix="judgeq-traceback-", suffix=".txt", delete=False) as file:
            file.write(f"judgeq {' '.join(mask_url(arg) for arg in sys.argv[1:])}\n")
            traceback.print_exception(exc, file=file)
    except OSError as error:
        return f"the traceback could not be saved ({error.strerror}); run again with --debug to see it"
    return f"the traceback is in {file.name} (or run again with --debug); please report it"
