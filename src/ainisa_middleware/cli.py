"""The ``ainisa-middleware`` command (also ``python -m ainisa_middleware``).

Secrets are read from an environment variable or standard input, never from
the command line, where shell history and ``ps`` would keep them.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from . import __version__
from .signing import user_hash

__all__ = ["CommandError", "main", "read_secret"]


class CommandError(Exception):
    """A command cannot go on; the message is printed as one line and the exit code is 2."""


class _NoSecretOnArgv(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parser.error(
            "secrets are never passed on the command line (shell history and ps keep "
            "them); use --secret-env VAR or pipe the secret on standard input"
        )


def add_secret_options(parser: argparse.ArgumentParser) -> None:
    """``--secret-env VAR`` / ``--secret-stdin``, and a refusal of ``--secret VALUE``."""
    parser.add_argument(
        "--secret-env",
        metavar="VAR",
        help="name of the environment variable holding the secret",
    )
    parser.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the secret from the first line of standard input (the default "
        "when --secret-env is not given)",
    )
    parser.add_argument("--secret", nargs="?", action=_NoSecretOnArgv, help=argparse.SUPPRESS)


def read_secret(args: argparse.Namespace, stdin: TextIO | None = None) -> str:
    """The secret named by ``--secret-env``, else the first line of standard input."""
    stdin = stdin if stdin is not None else sys.stdin
    if args.secret_env:
        if args.secret_env not in os.environ:
            raise CommandError(f"environment variable {args.secret_env} is not set")
        secret = os.environ[args.secret_env]
        if not secret:
            raise CommandError(f"environment variable {args.secret_env} is empty")
        return secret
    if stdin is None or stdin.closed:
        raise CommandError("no secret: give --secret-env VAR or pipe the secret on standard input")
    secret = getpass.getpass("Secret: ") if stdin.isatty() else stdin.readline()
    secret = secret.rstrip("\r\n")
    if not secret:
        raise CommandError("no secret: give --secret-env VAR or pipe the secret on standard input")
    return secret


def _hash(args: argparse.Namespace) -> int:
    print(user_hash(read_secret(args), args.user_id))
    return 0


def _add_hash(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "hash",
        help="print the user_hash of a user id",
        description="Print user_hash = hex(HMAC-SHA256(secret, user_id)), as the "
        "business's server computes it.",
    )
    add_secret_options(parser)
    parser.add_argument("user_id", help="the user id, exactly as the page sends it")
    parser.set_defaults(func=_hash)


def _add_store(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # stores.cli imports SQLAlchemy only when one of its commands runs.
    from .stores.cli import add_commands

    add_commands(commands)


#: Each adds one subcommand. Commands whose module needs an extra import it lazily.
COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_hash,
    _add_store,
]


def build_parser() -> argparse.ArgumentParser:
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
