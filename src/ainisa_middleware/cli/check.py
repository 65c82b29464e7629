"""``ainisa-middleware check``: is this deployment ready for traffic?

Connects to the store named by ``--db`` (as the store commands do), reports its
schema version, whether every stored secret opens under the configured master
keys, how many businesses, widgets and active secrets it holds, and whether the
invalidation bus answers when one is configured. Exit code 0 when nothing needs
fixing, 1 when something does (each problem says what to do), 2 when the check
cannot run. Prints no secret.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .common import CommandError, add_command
from .store import _db_option

if TYPE_CHECKING:
    from .common import Subparsers

__all__ = ["add_commands"]


def _check(args: argparse.Namespace) -> int:
    try:
        from ainisa_middleware.stores.sql import SQLStore
        from ainisa_middleware.stores.sql.health import store_findings
    except ImportError:
        raise CommandError(
            'check needs SQLAlchemy and cryptography: pip install "ainisa-middleware[sql]"'
        ) from None
    from ainisa_middleware.deployment import bus_findings, render
    from ainisa_middleware.errors import ConfigurationError

    try:
        if args.table_prefix is None:
            store = SQLStore(args.db)
        else:
            store = SQLStore(args.db, table_prefix=args.table_prefix)
    except ConfigurationError as error:  # a master key that is not a key, a bad prefix
        raise CommandError(str(error).rstrip(".")) from None
    try:
        findings = store_findings(store)
    finally:
        store.close()
    findings.extend(bus_findings(args.invalidation_url))
    text, problems = render(findings)
    print(text)
    return 1 if problems else 0


def add_commands(commands: Subparsers) -> None:
    """Add ``check`` to the command line."""
    parser = add_command(
        commands,
        "check",
        _check,
        help="check a deployment: store, schema, secrets, invalidation bus",
        description=__doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else None,
        parents=[_db_option()],
    )
    parser.add_argument(
        "--invalidation-url",
        metavar="URL",
        default=None,
        help="the invalidation bus to ping (default: $AINISA_INVALIDATION_URL; none: skipped)",
    )
