"""The one command-line entry of every experiment: parse the experiment's frozen config dataclass with tyro,
run `main(config)`, and report bad input as one line `error: ...` (exit status 2; the traceback only with
`--debug`).

Every experiment's config has the same three fields, so the same flags work everywhere:
`--run NAME` (outputs in `results/<experiment>/<NAME>/`), `--quick` (a seconds-long smoke run) and
`--no-progress` (no progress bars, for logs and CI).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import tyro

__all__ = ["run"]

C = TypeVar("C")

# Exceptions that mean "the input was bad": their messages name the argument, what was given and what
# was expected, so the user needs no traceback.
BAD_INPUT = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, KeyError)


def run(config_type: type[C], main: Callable[[C], object], argv: list[str] | None = None) -> None:
    """Parse `argv` (default: `sys.argv[1:]`) into `config_type` and call `main` on it.

    `--debug` (anywhere in argv, removed before parsing) re-raises errors with their traceback.
    Bad input (see `BAD_INPUT`) exits with status 2 after printing `error: <message>` to stderr.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        main(tyro.cli(config_type, args=argv))  # a config's own checks may refuse values while parsing
    except BAD_INPUT as e:
        if debug:
            raise
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        if debug:
            raise
        traceback.print_exc()
        raise SystemExit(1) from None
