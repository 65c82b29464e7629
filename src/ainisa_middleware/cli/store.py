"""The store's commands: ``store``, ``business``, ``widget`` and ``secret``.

The data layer (:mod:`ainisa_middleware.stores.sql`) knows nothing of argparse;
this module turns its calls and errors into commands and one-line messages.
It imports only the standard library; each command imports
:mod:`ainisa_middleware.stores.sql` when it runs, so ``ainisa-middleware hash``
works without SQLAlchemy and the store commands say which extra to install.
Every command takes ``--db URL`` (default ``$AINISA_DATABASE_URL``, else
``sqlite:///ainisa.db``) and changes the database in one transaction; a change
is then published on the invalidation bus (``--invalidation-url``, default
``$AINISA_INVALIDATION_URL``), so every process drops it from its cache at once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import CommandError, Handler, add_command, add_group

if TYPE_CHECKING:
    from ainisa_middleware.stores.sql import BusinessInfo, SQLStore

    from .common import Subparsers

__all__ = ["add_commands", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s``, ``2w`` or ``0`` as a :class:`~datetime.timedelta`."""
    text = text.strip().lower()
    if text == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write a number and a unit: 7d, 12h, 30m, 45s, 2w, or 0"
        )
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@contextmanager
def _store(args: argparse.Namespace, *, need_schema: bool = True) -> Iterator[SQLStore]:
    """Open the store named by ``--db``; turn every failure into one clear line."""
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from ainisa_middleware.stores.sql import SQLStore, StoreError, describe_error
    except ImportError:
        raise CommandError(
            "the store commands need SQLAlchemy and cryptography: "
            'pip install "ainisa-middleware[sql]"'
        ) from None
    from ainisa_middleware.errors import ConfigurationError

    store: SQLStore | None = None
    try:
        options: dict[str, object] = {"invalidation": args.invalidation_url}
        if args.table_prefix is not None:
            options["table_prefix"] = args.table_prefix
        store = SQLStore(args.db, **options)  # type: ignore[arg-type]
        if need_schema:
            _require_file(store)
            store.check()
        yield store
    except (StoreError, ConfigurationError) as error:
        raise CommandError(str(error).rstrip(".")) from None
    except SQLAlchemyError as error:
        # The driver's own first line: the SQL and its parameters (a secret, when
        # writing one) stay out of the message.
        where = store.engine.url.render_as_string(hide_password=True) if store else args.db
        raise CommandError(f"database error on {where}: {describe_error(error)}") from None
    finally:
        if store is not None:
            store.close()


def _require_file(store: SQLStore) -> None:
    """A SQLite store that is not there: say so, rather than let SQLite create an empty file."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if url.database.startswith("file:") or Path(url.database).exists():
        return
    raise CommandError(
        f"there is no store at {url.database}: run 'ainisa-middleware store init' to create it, "
        "or name another with --db"
    )


def _db_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="database URL (default: $AINISA_DATABASE_URL, else sqlite:///ainisa.db)",
    )
    parent.add_argument(
        "--table-prefix",
        metavar="PREFIX",
        default=None,
        help="prefix of the store's table names (default: ainisa_)",
    )
    parent.add_argument(
        "--invalidation-url",
        metavar="URL",
        default=None,
        help="bus that tells running processes of each change, redis://... or "
        "postgresql://... (default: $AINISA_INVALIDATION_URL; none: they see it when "
        "their cache expires)",
    )
    return parent


def _reach(store: SQLStore) -> str:
    """When running processes see a change just made, in words."""
    if store.bus is None:
        return "other running processes see it when their cache expires (no invalidation bus)"
    if store.publish_error is not None:
        return (
            f"but the invalidation bus failed ({store.publish_error}): running processes "
            "see it when their cache expires (60 s by default)"
        )
    return "every process on the invalidation bus has dropped it from its cache"


# -- store -------------------------------------------------------------------------------


def _store_init(args: argparse.Namespace) -> int:
    with _store(args, need_schema=False) as store:
        before = store.schema_version()
        version = store.init()
        where = store.engine.url.render_as_string(hide_password=True)
    if before is None:
        print(f"created the store schema (version {version}) in {where}")
    elif before == version:
        print(f"the store schema in {where} is up to date (version {version})")
    else:
        print(f"upgraded the store schema in {where} from version {before} to {version}")
    return 0


def _store_genkey(args: argparse.Namespace) -> int:
    try:
        from ainisa_middleware.stores.sql import generate_master_key
    except ImportError:
        raise CommandError(
            'genkey needs cryptography: pip install "ainisa-middleware[sql]"'
        ) from None
    print(generate_master_key())
    return 0


def _store_reencrypt(args: argparse.Namespace) -> int:
    with _store(args) as store:
        changed = store.reencrypt()
    print(f"re-encrypted {changed} secret(s) under the first key of AINISA_MASTER_KEY")
    return 0


# -- business ----------------------------------------------------------------------------

_PROOF_CHOICES = ("hash", "token", "hash,token")
_PROOFS_HELP = (
    "what proves a visitor's identity: the guide's user_hash, a signed expiring "
    "user_token, or either while a site moves from one to the other (default: hash)"
)


def _business_add(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.add_business(
            args.business_id,
            name=args.name,
            plan=args.plan,
            require_identity=args.require_identity,
            proofs=args.proofs.split(","),
        )
        info = store.get_business(args.business_id)
    feature = "identity enabled" if info.identity_enabled else "identity not in this plan"
    print(f"added business {info.id!r} (plan {info.plan}: {feature})")
    return 0


def _business_update(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.update_business(
            args.business_id,
            name=args.name,
            plan=args.plan,
            require_identity=args.require_identity,
            proofs=None if args.proofs is None else args.proofs.split(","),
        )
        reach = _reach(store)
    print(f"updated business {args.business_id!r}; {reach}")
    return 0


def _business_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        info = store.get_business(args.business_id, reveal=args.reveal)
        now = store.now()
    feature = "identity enabled" if info.identity_enabled else "identity not in this plan"
    lines = [
        f"business {info.id}",
        f"  name:             {info.name}",
        f"  plan:             {info.plan} ({feature})",
        f"  require identity: {'yes' if info.require_identity else 'no'}",
        f"  proofs:           {', '.join(sorted(info.proofs))}",
        f"  created:          {_when(info.created)}",
        "widgets:",
    ]
    lines += [
        f"  {w.id}  {'disabled' if w.disabled else 'enabled'}  created {_when(w.created)}"
        for w in info.widgets
    ] or ["  (none: add one with 'ainisa-middleware widget add')"]
    lines.append("secrets (newest first):")
    for s in info.secrets:
        state = s.state(now)
        if state == "expiring":
            state = f"verifies until {_when(s.expires)}"
        elif state == "expired":
            state = f"expired {_when(s.expires)}"
        elif state == "retired":
            state = f"retired {_when(s.retired)}"
        value = f"  value {s.value}" if s.value is not None else ""
        lines.append(f"  {s.id}  {state}  created {_when(s.created)}{value}")
    if not info.secrets:
        lines.append("  (none: make one with 'ainisa-middleware secret rotate')")
    print("\n".join(lines))
    return 0


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _state(secret: Any, now: datetime) -> str:
    state: str = secret.state(now)
    if state == "expiring":
        return f"verifies until {_when(secret.expires)}"
    if state == "expired":
        return f"expired {_when(secret.expires)}"
    if state == "retired":
        return f"retired {_when(secret.retired)}"
    return state


def _table(rows: list[list[str]], empty: str) -> str:
    if len(rows) == 1:
        return empty
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _listed(args: argparse.Namespace) -> tuple[list[BusinessInfo], datetime]:
    with _store(args) as store:
        businesses = store.list_businesses()
        now = store.now()
    wanted = getattr(args, "business", None)
    if wanted is not None:
        businesses = [b for b in businesses if b.id == wanted]
        if not businesses:
            raise CommandError(f"no business {wanted!r}")
    return businesses, now


def _business_list(args: argparse.Namespace) -> int:
    businesses, now = _listed(args)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": b.id,
                        "name": b.name,
                        "plan": b.plan,
                        "identity_enabled": b.identity_enabled,
                        "require_identity": b.require_identity,
                        "created": _iso(b.created),
                        "widgets": [w.id for w in b.widgets],
                        "active_secrets": [
                            s.id for s in b.secrets if s.state(now) in ("active", "expiring")
                        ],
                    }
                    for b in businesses
                ],
                indent=2,
            )
        )
        return 0
    rows = [["ID", "PLAN", "IDENTITY", "WIDGETS", "ACTIVE SECRETS", "CREATED", "NAME"]]
    for b in businesses:
        active = [s for s in b.secrets if s.state(now) in ("active", "expiring")]
        identity = "required" if b.require_identity else "on"
        rows.append(
            [
                b.id,
                b.plan,
                identity if b.identity_enabled else "not in plan",
                str(len(b.widgets)),
                str(len(active)),
                _when(b.created),
                b.name,
            ]
        )
    print(_table(rows, "no businesses: add one with 'ainisa-middleware business add'"))
    return 0


def _widget_list(args: argparse.Namespace) -> int:
    businesses, _ = _listed(args)
    widgets = sorted((w for b in businesses for w in b.widgets), key=lambda w: w.id)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": w.id,
                        "business": w.business_id,
                        "state": "disabled" if w.disabled else "enabled",
                        "created": _iso(w.created),
                    }
                    for w in widgets
                ],
                indent=2,
            )
        )
        return 0
    rows = [["WIDGET", "BUSINESS", "STATE", "CREATED"]]
    rows += [
        [w.id, w.business_id, "disabled" if w.disabled else "enabled", _when(w.created)]
        for w in widgets
    ]
    print(_table(rows, "no widgets: add one with 'ainisa-middleware widget add'"))
    return 0


def _secret_list(args: argparse.Namespace) -> int:
    businesses, now = _listed(args)
    secrets = [s for b in businesses for s in b.secrets]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "business": s.business_id,
                        "state": s.state(now),
                        "created": _iso(s.created),
                        "expires": _iso(s.expires),
                        "retired": _iso(s.retired),
                    }
                    for s in secrets
                ],
                indent=2,
            )
        )
        return 0
    rows = [["SECRET", "BUSINESS", "STATE", "CREATED"]]
    rows += [[str(s.id), s.business_id, _state(s, now), _when(s.created)] for s in secrets]
    print(_table(rows, "no secrets: make one with 'ainisa-middleware secret rotate'"))
    return 0


# -- widget ------------------------------------------------------------------------------


def _widget_add(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.add_widget(args.widget_id, business_id=args.business)
        reach = _reach(store)
    print(f"added widget {args.widget_id!r} to business {args.business!r}; {reach}")
    return 0


def _widget_disable(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.disable_widget(args.widget_id)
        reach = _reach(store)
    print(f"disabled widget {args.widget_id!r}: its requests get 404 unknown_widget; {reach}")
    return 0


def _widget_enable(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.enable_widget(args.widget_id)
        reach = _reach(store)
    print(f"enabled widget {args.widget_id!r}; {reach}")
    return 0


# -- secret ------------------------------------------------------------------------------


def _secret_rotate(args: argparse.Namespace) -> int:
    value: str | None = None
    if args.import_env:
        value = os.environ.get(args.import_env)
        if not value:
            raise CommandError(f"environment variable {args.import_env} is not set or empty")
    with _store(args) as store:
        new = store.rotate_secret(args.business_id, args.grace, value=value)
        reach = _reach(store)
        info = store.get_business(args.business_id)
    # The secret alone on stdout, so that SECRET=$(... secret rotate shop) works;
    # the explanation on stderr.
    print(new.value)
    if args.grace:
        earlier = f"earlier secrets still active keep verifying until {_when(new.previous_expire)}"
    else:
        earlier = "earlier secrets stopped verifying now (--grace 0)"
    print(
        f"secret {new.id} is now the current secret of business {new.business_id!r} and "
        f"verifies at once; {earlier}; {reach}. It is shown only this once: put it in the "
        "business's server configuration now.",
        file=sys.stderr,
    )
    if not info.identity_enabled:
        print(
            f"note: plan {info.plan!r} does not include identity, so no hash is checked "
            "until the business moves to an identity plan (business update --plan pro)",
            file=sys.stderr,
        )
    return 0


def _secret_retire(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.retire_secret(args.secret_id)
        reach = _reach(store)
        failed = store.bus is not None and store.publish_error is not None
    print(f"retired secret {args.secret_id}: it no longer verifies in the store; {reach}")
    # A leaked secret still verifying somewhere is worth a non-zero exit code.
    return 1 if failed else 0


# -- registration ------------------------------------------------------------------------


def _add(actions: Subparsers, name: str, func: Handler, help: str) -> argparse.ArgumentParser:
    return add_command(actions, name, func, help=help, parents=[_db_option()])


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON (dates in ISO 8601)")
    return parser


def _business_filter(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--business", metavar="ID", help="only this business's")
    return parser


def add_commands(commands: Subparsers) -> None:
    """Add ``store``, ``business``, ``widget`` and ``secret`` to the command line."""
    store = add_group(commands, "store", "create and maintain the business store (SQL)")
    _add(store, "init", _store_init, "create the schema, or upgrade it; safe to repeat")
    _add(store, "genkey", _store_genkey, "print a new key for AINISA_MASTER_KEY")
    _add(
        store,
        "reencrypt",
        _store_reencrypt,
        "encrypt every secret under the first key of AINISA_MASTER_KEY",
    )

    business = add_group(commands, "business", "add, change and show businesses")
    add = _add(business, "add", _business_add, "add a business")
    add.add_argument("business_id", metavar="ID")
    add.add_argument("--name", help="display name (default: the ID)")
    add.add_argument(
        "--plan",
        required=True,
        help="free, starter, pro, business or enterprise (identity: pro and above)",
    )
    add.add_argument(
        "--require-identity",
        action="store_true",
        help="reject visitors who are not verified (401 identity_required)",
    )
    add.add_argument("--proofs", default="hash", choices=_PROOF_CHOICES, help=_PROOFS_HELP)
    update = _add(business, "update", _business_update, "change a business")
    update.add_argument("business_id", metavar="ID")
    update.add_argument("--name")
    update.add_argument("--plan")
    update.add_argument("--require-identity", action=argparse.BooleanOptionalAction, default=None)
    update.add_argument("--proofs", choices=_PROOF_CHOICES, help=_PROOFS_HELP)
    _json(_add(business, "list", _business_list, "list businesses (never a secret)"))
    show = _add(business, "show", _business_show, "show a business, its widgets and secrets")
    show.add_argument("business_id", metavar="ID")
    show.add_argument(
        "--reveal", action="store_true", help="also print secret values (they are hidden)"
    )

    widget = add_group(commands, "widget", "register, list and disable widgets")
    _business_filter(_json(_add(widget, "list", _widget_list, "list widgets and their state")))
    wadd = _add(widget, "add", _widget_add, "register a widget ID for a business")
    wadd.add_argument("widget_id", metavar="WIDGET_ID")
    wadd.add_argument("--business", required=True, metavar="ID")
    for name, func, text in (
        ("disable", _widget_disable, "refuse a widget's requests (404)"),
        ("enable", _widget_enable, "accept a disabled widget's requests again"),
    ):
        _add(widget, name, func, text).add_argument("widget_id", metavar="WIDGET_ID")

    secret = add_group(commands, "secret", "list, rotate and retire secrets")
    _business_filter(
        _json(_add(secret, "list", _secret_list, "list secrets by id, state and dates (no values)"))
    )
    rotate = _add(
        secret,
        "rotate",
        _secret_rotate,
        "make a new secret and print it once; earlier ones verify for the grace period",
    )
    rotate.add_argument("business_id", metavar="BUSINESS")
    rotate.add_argument(
        "--grace",
        type=parse_duration,
        default=timedelta(days=7),
        help="how long earlier secrets keep verifying: 7d (default), 12h, 30m, 0",
    )
    rotate.add_argument(
        "--import-env",
        metavar="VAR",
        help="take the new secret from this environment variable instead of generating one",
    )
    retire = _add(
        secret,
        "retire",
        _secret_retire,
        "stop a secret from verifying: at once in every process on the invalidation bus, "
        "else when their cache expires",
    )
    retire.add_argument("secret_id", metavar="SECRET_ID")
