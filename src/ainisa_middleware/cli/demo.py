"""``ainisa-middleware demo``: the command line of the demo.

Only the standard library is imported here, so the command is listed (and
explains how to install its extra) even where FastAPI and uvicorn are missing.
The demo itself is the separate package :mod:`ainisa_demo`, imported when the
command runs; nothing else in the library imports it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .common import CommandError, add_command

if TYPE_CHECKING:
    from .common import Subparsers

__all__ = ["add_commands", "run_demo"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DB = "sqlite:///demo.db"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {port}")
    return port


def add_commands(commands: Subparsers) -> None:
    """Add ``demo`` to the command line."""
    parser = add_command(
        commands,
        "demo",
        run_demo,
        help="run the local demo: a website, the reference widget and a verified chat",
        description="Serve two demo business websites with the reference chat widget and a "
        "chat backend behind AinisaMiddleware, on a SQL store seeded on first use. "
        'Needs the demo extra: pip install "ainisa-middleware[demo]".',
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (%(default)s)")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="port to listen on (%(default)s)"
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="URL",
        help="SQLAlchemy URL of the store (%(default)s, a file in the current directory)",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="empty the store first: new secrets, no saved chats",
    )
    parser.add_argument(
        "--mode",
        choices=("strip", "enforce"),
        default="strip",
        help="strip: unverified visitors chat anonymously (default); enforce: they get 401",
    )


def run_demo(args: argparse.Namespace) -> int:
    """Serve the demo until Ctrl-C; a missing dependency names the extra to install."""
    try:
        # The demo is a package of its own (ainisa_demo), loaded only here.
        from ainisa_demo.server import DemoError, serve
    except ImportError as exc:
        missing = exc.name or "a dependency"
        raise CommandError(
            f"the demo needs its extra ({missing} is not installed): "
            'pip install "ainisa-middleware[demo]"'
        ) from exc
    try:
        return serve(
            host=args.host, port=args.port, db_url=args.db, reset=args.reset, mode=args.mode
        )
    except DemoError as error:
        raise CommandError(str(error)) from error
