"""The ``token`` command: print a signed, expiring ``user_token`` as a site's server makes it.

The secret is read like every other command's (environment variable or
standard input, never argv). The token needs no extra to make; verifying it
needs ``ainisa-middleware[tokens]``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ainisa_middleware.tokens import DEFAULT_MAX_TOKEN_AGE, DEFAULT_TOKEN_TTL, user_token

from .common import CommandError, add_command, add_secret_options, read_secret

if TYPE_CHECKING:
    from .common import Subparsers

__all__ = ["add_commands"]

_DESCRIPTION = (
    "Print a user_token: a JWT (HS256) whose sub is the user id, aud the widget ID, "
    "signed with the business's secret, expiring after --ttl seconds. Names and email "
    "given here are signed too."
)


def _token(args: argparse.Namespace) -> int:
    try:
        token = user_token(
            read_secret(args),
            args.user_id,
            widget_id=args.widget_id,
            ttl=args.ttl,
            kid=args.kid,
            firstname=args.firstname,
            lastname=args.lastname,
            email=args.email,
        )
    except (TypeError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(token)
    return 0


def add_commands(commands: Subparsers) -> None:
    """Add ``token`` to the command line."""
    parser = add_command(
        commands,
        "token",
        _token,
        help="print a signed user_token for a user id",
        description=_DESCRIPTION,
    )
    add_secret_options(parser)
    parser.add_argument("user_id", help="the user id (the token's sub)")
    parser.add_argument(
        "--widget-id", required=True, metavar="ID", help="the widget the token is for (its aud)"
    )
    parser.add_argument(
        "--ttl",
        type=int,
        default=DEFAULT_TOKEN_TTL,
        metavar="SECONDS",
        help=f"lifetime, 1 to {DEFAULT_MAX_TOKEN_AGE} (default {DEFAULT_TOKEN_TTL})",
    )
    parser.add_argument("--kid", help="the secret's id in the store, so only it is tried")
    parser.add_argument("--firstname", help="signed into the token")
    parser.add_argument("--lastname", help="signed into the token")
    parser.add_argument("--email", help="signed into the token")
