"""Run the demo app under uvicorn, with a start-up banner that says where to look."""

from __future__ import annotations

import copy
import ipaddress
import sys
from typing import Any, TextIO

import uvicorn
import uvicorn.config
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ainisa_middleware.config import Mode

from .app import create_app
from .data import BUSINESSES, USERS
from .store import DemoStore

__all__ = ["DemoError", "banner", "build_server", "log_config", "serve"]


class DemoError(Exception):
    """The demo cannot start; the message says why in one line (the command prints it)."""


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def banner(url: str, *, mode: str, db_url: str, store: DemoStore) -> str:
    """What the demo prints on start: where to go and who to log in as."""
    lines = [
        f"ainisa-middleware demo: {url}/",
        f"  store {db_url} ({'seeded' if store.seeded else 'reused; --reset starts afresh'})"
        f", middleware mode {mode}",
        "",
        "Websites:",
    ]
    for business in BUSINESSES.values():
        lines.append(
            f"  {url}{business.path:<6} {business.name} ({business.plan.title()} plan, "
            f"widget {business.widget_id})"
        )
    lines += ["", "Demo logins (pick one on the page, no password):"]
    for user in USERS.values():
        lines.append(f"  {user.firstname:<6} {user.name:<15} user_id {user.id}  {user.email}")
    lines += ["", "Press Ctrl-C to stop."]
    return "\n".join(lines)


def log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the middleware's one line per chat request."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["ainisa_middleware"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config


def build_server(
    *,
    host: str,
    port: int,
    db_url: str,
    reset: bool = False,
    mode: Mode = "strip",
    log_level: str = "info",
    configure_logging: bool = True,
) -> tuple[uvicorn.Server, DemoStore]:
    """The uvicorn server for the demo, with its store opened (and seeded).

    :param configure_logging: install uvicorn's log handlers (and the middleware's
        log line); off when embedding the server in a process that has its own.
    """
    try:
        app = create_app(db_url, mode=mode, reset=reset)
    except ArgumentError as exc:
        raise DemoError(f"--db {db_url!r} is not a SQLAlchemy URL: {exc}") from exc
    except SQLAlchemyError as exc:
        raise DemoError(f"cannot open the store at {db_url!r}: {exc}") from exc
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config() if configure_logging else None,
        access_log=False,
        lifespan="on",
    )
    store: DemoStore = app.state.demo_store
    return uvicorn.Server(config), store


def serve(
    *,
    host: str,
    port: int,
    db_url: str,
    reset: bool = False,
    mode: Mode = "strip",
    out: TextIO | None = None,
) -> int:
    """Serve until Ctrl-C; returns the exit code."""
    out = out if out is not None else sys.stdout
    server, store = build_server(host=host, port=port, db_url=db_url, reset=reset, mode=mode)
    print(banner(base_url(host, port), mode=mode, db_url=db_url, store=store), file=out)
    if not _is_loopback(host):
        print(
            f"Warning: listening on {host}; the demo's logins have no passwords, "
            "keep it on 127.0.0.1.",
            file=out,
        )
    out.flush()
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn has shut down; it re-raises the signal for the caller
    except SystemExit as exc:
        # uvicorn exits when it cannot listen (port taken, address not local).
        raise DemoError(
            f"could not serve on {host}:{port}; is another demo running? try --port"
        ) from exc
    print("Demo stopped.", file=out)
    return 0
