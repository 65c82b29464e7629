"""What every command shares: the error that ends one, secret input, and the parser helpers.

Secrets are read from an environment variable or standard input, never from
the command line, where shell history and ``ps`` would keep them.

The command modules import this one and nothing imports them but
:mod:`ainisa_middleware.cli`, so the imports of the command line run one way.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from typing import TypeAlias

    #: What ``add_subparsers()`` returns (generic only to type checkers).
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "CommandError",
    "Handler",
    "add_command",
    "add_group",
    "add_secret_options",
    "read_secret",
]

#: A command's body: it takes the parsed arguments and returns the exit code.
Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A command cannot go on; the message is printed as one line and the exit code is 2."""


def add_command(
    commands: Subparsers,
    name: str,
    func: Handler,
    *,
    help: str,
    description: str | None = None,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` that runs ``func``; the description defaults to the help."""
    parser = commands.add_parser(
        name, parents=list(parents), help=help, description=description or help
    )
    parser.set_defaults(func=func)
    return parser


def add_group(commands: Subparsers, name: str, help: str) -> Subparsers:
    """Add ``name`` as a command whose actions are subcommands of their own."""
    parser = commands.add_parser(name, help=help, description=help)
    actions = parser.add_subparsers(dest=f"{name}_action", metavar="ACTION")
    actions.required = True
    return actions


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
