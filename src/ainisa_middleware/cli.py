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


def _snippet(args: argparse.Namespace) -> int:
    from .snippet import user_script, widget_script

    # A guest (no --user-id) or a visitor without consent carries no hash, so
    # no secret is read: the command then works with nothing configured.
    needs_secret = args.user_id not in (None, "") and args.consent
    try:
        parts = [
            user_script(
                args.user_id,
                secret=read_secret(args) if needs_secret else None,
                firstname=args.firstname,
                lastname=args.lastname,
                email=args.email,
                nonce=args.nonce,
                consent=args.consent,
                guest=args.guest,
            )
        ]
        if args.widget:
            parts.append(widget_script(args.widget_src, widget_id=args.widget_id, nonce=args.nonce))
    except ValueError as error:
        raise CommandError(str(error)) from None
    print("\n".join(part for part in parts if part))
    return 0


def _add_snippet(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .snippet import DEFAULT_WIDGET_SRC, GUEST_SHAPES

    parser = commands.add_parser(
        "snippet",
        help="print the window.ainisaUser script and the widget tag for one visitor",
        description="Print the HTML a page puts before </body>: window.ainisaUser with the "
        "user_hash computed from the secret, then the widget script. Without --user-id it "
        "prints the guest snippet and reads no secret.",
    )
    add_secret_options(parser)
    parser.add_argument("--user-id", metavar="ID", help="the user's id (omit for a guest)")
    parser.add_argument("--firstname", help="optional; not covered by the hash")
    parser.add_argument("--lastname", help="optional; not covered by the hash")
    parser.add_argument("--email", help="optional; not covered by the hash")
    parser.add_argument("--nonce", help="the page's Content-Security-Policy nonce")
    parser.add_argument(
        "--no-consent",
        dest="consent",
        action="store_false",
        help="the visitor has not consented: print the guest snippet, no personal data",
    )
    parser.add_argument(
        "--guest",
        choices=GUEST_SHAPES,
        default="empty",
        help="guest shape: the guide's object of empty strings (default) or no script",
    )
    parser.add_argument(
        "--widget-src", default=DEFAULT_WIDGET_SRC, metavar="URL", help="the widget script URL"
    )
    parser.add_argument("--widget-id", metavar="ID", help="written as data-widget-id")
    parser.add_argument(
        "--no-widget",
        dest="widget",
        action="store_false",
        help="print only the window.ainisaUser script",
    )
    parser.set_defaults(func=_snippet)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .demo.command import add_demo_command  # stdlib only; the server loads on run

    add_demo_command(commands)


def _add_store(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # stores.cli imports SQLAlchemy only when one of its commands runs.
    from .stores.cli import add_commands

    add_commands(commands)


#: Each adds one subcommand. Commands whose module needs an extra import it lazily.
COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_hash,
    _add_snippet,
    _add_demo,
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
