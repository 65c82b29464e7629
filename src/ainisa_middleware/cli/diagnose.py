"""The ``diagnose`` command: why a visitor's hash or token does not verify.

It wraps :func:`ainisa_middleware.diagnose.diagnose`. The secret is read from
an environment variable or standard input; with ``--db`` the business's whole
secret history and the other businesses' secrets are tried too. The report
names secrets by their store id and never prints a secret or the expected hash.
Exit code 0 when the proof verifies, 1 when it does not.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ainisa_middleware.diagnose import KnownSecret, diagnose

from .common import CommandError, add_command, add_secret_options, read_secret
from .store import _db_option, _store

if TYPE_CHECKING:
    from .common import Subparsers

__all__ = ["add_commands"]

_DESCRIPTION = (
    "Explain why a user_hash or user_token does or does not verify: the id signed "
    "differently (case, whitespace, 42.0, 0042, the email), an old or another business's "
    "secret, the guide's example hash, the wrong algorithm or encoding, and for tokens the "
    "widget, the expiry and the clocks. Never prints a secret or the expected hash. "
    "PROOF '-' reads the hash or token from standard input (after the secret, if that is "
    "read there too)."
)


def _history(args: argparse.Namespace) -> list[KnownSecret]:
    if args.db is None:
        return []
    if not (args.widget_id or args.business):
        raise CommandError("--db needs --widget-id or --business to know whose secrets to try")
    known: list[KnownSecret] = []
    with _store(args) as store:
        business_id = args.business
        if business_id is None:
            found = store.lookup(args.widget_id)
            if found is None:
                raise CommandError(f"widget {args.widget_id!r} is unknown or disabled in the store")
            business_id = found.id
        now = store.now()
        own = store.get_business(business_id, reveal=True)
        others: set[str] = set()
        for widget in store.widget_ids():
            other = store.lookup(widget)
            if other is not None and other.id != business_id:
                others.add(other.id)
        for secret in own.secrets:
            if secret.value is not None:
                ends = None if secret.expires is None else secret.expires.timestamp()
                known.append(
                    KnownSecret(
                        str(secret.id),
                        secret.value,
                        secret.state(now),
                        created=secret.created.timestamp(),
                        expires=ends,
                    )
                )
        for other_id in sorted(others):
            for secret in store.get_business(other_id, reveal=True).secrets:
                if secret.value is not None:
                    known.append(
                        KnownSecret(str(secret.id), secret.value, secret.state(now), other_id)
                    )
    return known


def _diagnose(args: argparse.Namespace) -> int:
    secret = read_secret(args)
    proof = args.proof
    if proof == "-":
        proof = sys.stdin.readline().rstrip("\r\n")
    try:
        report = diagnose(
            secret,
            args.user_id or None,
            proof,
            widget_id=args.widget_id,
            email=args.email,
            history=_history(args),
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(report.text())
    return 0 if report.verified else 1


def add_commands(commands: Subparsers) -> None:
    """Add ``diagnose`` to the command line."""
    parser = add_command(
        commands,
        "diagnose",
        _diagnose,
        help="explain why a visitor's user_hash or user_token does not verify",
        description=_DESCRIPTION,
        parents=[_db_option()],
    )
    add_secret_options(parser)
    parser.add_argument("user_id", help="the user id the page sends ('' for a token: its sub)")
    parser.add_argument("proof", metavar="PROOF", help="the user_hash or user_token, or '-'")
    parser.add_argument("--widget-id", metavar="ID", help="the widget the request named")
    parser.add_argument("--business", metavar="ID", help="with --db: the business to look at")
    parser.add_argument("--email", help="the visitor's email, to spot a hash of the email")
