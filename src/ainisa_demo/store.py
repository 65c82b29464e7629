"""The demo's storage: the businesses the middleware resolves, and saved chats.

Businesses, widgets and secrets live in the library's SQL store, exactly as a
real deployment keeps them; the middleware reads them through ``SQLResolver``.
The chat history is the host application's own table beside them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from ainisa_middleware.stores.sql import SQLResolver, SQLStore, StoreError

from .data import BUSINESSES, DemoBusiness

__all__ = ["DEFAULT_DB_URL", "TABLE_PREFIX", "DemoStore", "sqlite_file"]

DEFAULT_DB_URL = "sqlite:///demo.db"
#: The demo's tables are its own, whatever database ``--db`` names: ``--reset``
#: drops these and never a real store's ``ainisa_`` tables.
TABLE_PREFIX = "ainisa_demo_"

_metadata = sa.MetaData()
#: The host application's chat history, one row per message, for verified visitors only.
chat_messages = sa.Table(
    f"{TABLE_PREFIX}chat_messages",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("business_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("author", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index(f"ix_{TABLE_PREFIX}chat_messages_owner", "business_id", "user_id", "id"),
)


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL, or ``None`` for other databases and memory."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


class DemoStore:
    """Open (and on first use seed) the demo database at ``url``.

    The businesses go through :class:`~ainisa_middleware.stores.sql.SQLStore`
    exactly as ``ainisa-middleware store`` would put them there: a Pro business
    and a Free one, each with a widget and a fresh secret.

    :param url: a SQLAlchemy URL; a SQLite file is created when missing.
    :param reset: start from an empty store: new secrets, no chat history.
    """

    def __init__(self, url: str = DEFAULT_DB_URL, *, reset: bool = False) -> None:
        self.url = url
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        #: the library's business store; its engine also holds the chat history
        self.store = SQLStore(url, table_prefix=TABLE_PREFIX)
        self.engine = self.store.engine
        if reset:
            _metadata.drop_all(self.engine)
            self.store.drop()
        self.store.init()
        _metadata.create_all(self.engine)
        #: whether this run created the businesses (else it reused them)
        self.seeded = False
        for business in BUSINESSES.values():
            self._seed(business)
        #: What the middleware asks. Without the cache every chat reads the store, so
        #: a secret rotated while the demo runs verifies at once (with the cache, a new
        #: secret verifies once the cached business expires).
        self.resolver = SQLResolver(self.store, cache=False)

    def _seed(self, business: DemoBusiness) -> None:
        try:
            info = self.store.get_business(business.id)
        except StoreError:
            self.store.add_business(
                business.id, name=business.name, plan=business.plan, proofs=business.proofs
            )
            info = self.store.get_business(business.id)
            self.seeded = True
        if business.widget_id not in {widget.id for widget in info.widgets}:
            self.store.add_widget(business.widget_id, business_id=business.id)
        now = self.store.now()
        if not any(s.state(now) in ("active", "expiring") for s in info.secrets):
            self.store.rotate_secret(business.id)

    def signing_secret(self, business: DemoBusiness) -> str:
        """The secret the business's website signs with: its newest active one.

        Read from the store at each call, so after ``ainisa-middleware secret
        rotate`` the next page is signed with the new secret. It does not depend
        on the widget: a disabled widget still has a website that signs.
        """
        info = self.store.get_business(business.id, reveal=True)
        now = self.store.now()
        for secret in info.secrets:  # newest first
            if secret.value is not None and secret.state(now) in ("active", "expiring"):
                return secret.value
        where = self.engine.url.render_as_string(hide_password=True)
        raise LookupError(
            f"the store has no active secret for {business.id!r}: run 'ainisa-middleware "
            f"secret rotate --db {where} --table-prefix {TABLE_PREFIX} {business.id}' "
            "or restart the demo, which makes one"
        )

    def save_message(self, business_id: str, user_id: str, author: str, text: str) -> None:
        """Keep one message of a verified visitor's conversation."""
        self._save(business_id, user_id, [(author, text)])

    def save_exchange(self, business_id: str, user_id: str, text: str, reply: str) -> None:
        """Keep a visitor's message and the reply to it, together or not at all."""
        self._save(business_id, user_id, [("visitor", text), ("assistant", reply)])

    def _save(self, business_id: str, user_id: str, messages: list[tuple[str, str]]) -> None:
        now = datetime.now(UTC)
        rows = [
            {
                "business_id": business_id,
                "user_id": user_id,
                "author": author,
                "text": text,
                "created_at": now,
            }
            for author, text in messages
        ]
        with self.engine.begin() as connection:
            connection.execute(chat_messages.insert(), rows)

    def history(self, business_id: str, user_id: str, limit: int = 20) -> list[dict[str, str]]:
        """The latest messages of one visitor, oldest first."""
        query = (
            sa.select(chat_messages.c.author, chat_messages.c.text)
            .where(
                chat_messages.c.business_id == business_id,
                chat_messages.c.user_id == user_id,
            )
            .order_by(chat_messages.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [{"author": row.author, "text": row.text} for row in reversed(rows)]

    def close(self) -> None:
        self.resolver.close()
