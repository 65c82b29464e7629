"""The ``ainisa-middleware`` command (also ``python -m ainisa_middleware``).

One module per command group (:mod:`.sender` for ``hash`` and ``snippet``,
:mod:`.store`, :mod:`.demo`, :mod:`.check`), each adding its subcommands to the
parser built here; what they share lives in :mod:`.common`. Only the standard
library and the core are imported: a command that needs an extra imports it
when it runs, and says which extra to install when it is missing.

Secrets are read from an environment variable or standard input, never from
the command line, where shell history and ``ps`` would keep them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ainisa_middleware import __version__

from .check import add_commands as _add_check
from .common import CommandError, read_secret
from .common import add_secret_options as add_secret_options
from .demo import add_commands as _add_demo
from .sender import add_commands as _add_sender
from .store import add_commands as _add_store

if TYPE_CHECKING:
    from .common import Subparsers

__all__ = ["CommandError", "main", "read_secret"]

#: Each adds its subcommands, in the order ``--help`` lists them.
COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_sender,
    _add_demo,
    _add_store,
    _add_check,
]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: ``--version`` and every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="ainisa-middleware",
        description="Verify Ainisa chat visitors: signing helpers and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CommandError as error:
        print(f"ainisa-middleware: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
