"""The sender side's commands: ``hash`` and ``snippet``, what a business's server computes.

Both read the business's secret (from an environment variable or standard
input, see :func:`~ainisa_middleware.cli.common.read_secret`) and print what a
page would carry; neither needs an extra.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ainisa_middleware.signing import user_hash
from ainisa_middleware.snippet import DEFAULT_WIDGET_SRC, GUEST_SHAPES, user_script, widget_script

from .common import CommandError, Handler, add_command, add_secret_options, read_secret

if TYPE_CHECKING:
    from .common import Subparsers

__all__ = ["add_commands"]

_HASH_DESCRIPTION = (
    "Print user_hash = hex(HMAC-SHA256(secret, user_id)), as the business's server computes it."
)
_SNIPPET_DESCRIPTION = (
    "Print the HTML a page puts before </body>: window.ainisaUser with the user_hash "
    "computed from the secret, then the widget script. Without --user-id it prints the "
    "guest snippet and reads no secret."
)


def _hash(args: argparse.Namespace) -> int:
    print(user_hash(read_secret(args), args.user_id))
    return 0


def _snippet(args: argparse.Namespace) -> int:
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


def _add_with_secret(
    commands: Subparsers, name: str, func: Handler, help: str, description: str
) -> argparse.ArgumentParser:
    parser = add_command(commands, name, func, help=help, description=description)
    add_secret_options(parser)
    return parser


def add_commands(commands: Subparsers) -> None:
    """Add ``hash`` and ``snippet`` to the command line."""
    hash_parser = _add_with_secret(
        commands, "hash", _hash, "print the user_hash of a user id", _HASH_DESCRIPTION
    )
    hash_parser.add_argument("user_id", help="the user id, exactly as the page sends it")

    parser = _add_with_secret(
        commands,
        "snippet",
        _snippet,
        "print the window.ainisaUser script and the widget tag for one visitor",
        _SNIPPET_DESCRIPTION,
    )
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
