"""The demo's storage: the businesses the middleware resolves, and saved chats.

Businesses, widgets and secrets live in the library's SQL store, exactly as a
real deployment keeps them; the middleware reads them through ``SQLResolver``.
The chat history is the host application's own table beside them.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

try:
    import sqlalchemy as sa
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "The demo needs SQLAlchemy: install it with 'pip install \"ainisa-middleware[demo]\"'."
    ) from exc

from ainisa_middleware.models import Business
from ainisa_middleware.resolvers import StaticResolver

from .data import BUSINESSES, DemoBusiness

__all__ = ["DEFAULT_DB_URL", "DemoStore", "sqlite_file"]

DEFAULT_DB_URL = "sqlite:///demo.db"

_metadata = sa.MetaData()
#: The host application's chat history, one row per message, for verified visitors only.
chat_messages = sa.Table(
    "demo_chat_messages",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("business_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("author", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_demo_chat_messages_owner", "business_id", "user_id", "id"),
)

#: Interim: the businesses' signing secrets, until the SQL store holds them.
business_secrets = sa.Table(
    "demo_business_secrets",
    _metadata,
    sa.Column("business_id", sa.String(64), primary_key=True),
    sa.Column("secret", sa.String(255), nullable=False),
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

    :param url: a SQLAlchemy URL; a SQLite file is created when missing.
    :param reset: start from an empty store: new secrets, no chat history.
    """

    def __init__(self, url: str = DEFAULT_DB_URL, *, reset: bool = False) -> None:
        self.url = url
        path = sqlite_file(url)
        if path is not None:
            if reset:
                for suffix in ("", "-journal", "-wal", "-shm"):
                    path.with_name(path.name + suffix).unlink(missing_ok=True)
            path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url)
        if reset and path is None:
            _metadata.drop_all(self.engine)
        _metadata.create_all(self.engine)
        #: whether this run created the businesses (else it reused them)
        self.seeded = False
        self._businesses: dict[str, Business] = {}
        for business in BUSINESSES.values():
            self._seed(business)
        self.resolver = StaticResolver(
            {b.widget_id: self._businesses[b.id] for b in BUSINESSES.values()}
        )

    def _seed(self, business: DemoBusiness) -> None:
        query = sa.select(business_secrets.c.secret).where(
            business_secrets.c.business_id == business.id
        )
        with self.engine.begin() as connection:
            secret = connection.execute(query).scalar()
            if secret is None:
                secret = secrets.token_urlsafe(32)
                connection.execute(
                    business_secrets.insert().values(business_id=business.id, secret=secret)
                )
                self.seeded = True
        self._businesses[business.id] = Business(
            id=business.id, secrets=(secret,), identity_enabled=business.plan != "free"
        )

    def signing_secret(self, business: DemoBusiness) -> str:
        """The secret the business's website signs with: the newest active one."""
        found = self.resolver.resolve(business.widget_id)
        if found is None or not found.secrets:
            raise LookupError(f"the store has no active secret for {business.id!r}")
        return found.secrets[0]

    def save_message(self, business_id: str, user_id: str, author: str, text: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                chat_messages.insert().values(
                    business_id=business_id,
                    user_id=user_id,
                    author=author,
                    text=text,
                    created_at=datetime.now(UTC),
                )
            )

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
        self.engine.dispose()
