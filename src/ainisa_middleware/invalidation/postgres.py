"""The invalidation bus on PostgreSQL ``LISTEN``/``NOTIFY`` (extra ``postgres``: psycopg 3).

    bus = PostgresBus("postgresql://app@db/app")
    resolver = SQLResolver("postgresql://app@db/app", invalidation=bus)

The store's own database can carry it: no other server to run. Each process
holds one extra connection, idle in ``LISTEN``. ``NOTIFY`` is delivered only
to sessions listening when the sender commits, so the subscriber clears its
caches each time it (re)connects (see
:class:`~ainisa_middleware.invalidation.ThreadedBus`).
"""

from __future__ import annotations

import re
import time
from typing import Any

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the PostgreSQL invalidation bus needs psycopg 3: install it with "
        "'pip install \"ainisa-middleware[postgres]\"'."
    ) from exc

from . import DEFAULT_CHANNEL, BusError, ThreadedBus, _describe

__all__ = ["PostgresBus", "libpq_url"]

#: Seconds without a notification after which the subscriber checks its connection.
_IDLE_CHECK = 5.0


def libpq_url(url: str) -> str:
    """A SQLAlchemy-style URL (``postgresql+psycopg://``, ``postgres://``) as libpq reads it."""
    return re.sub(r"\A(postgresql|postgres)\+[A-Za-z0-9_]+://", r"\1://", url)


class PostgresBus(ThreadedBus):
    """Invalidation over PostgreSQL ``NOTIFY`` on a channel every process ``LISTEN`` s to.

    :param url: ``postgresql://user@host/db`` (``postgres://`` and SQLAlchemy's
        ``postgresql+psycopg://`` are accepted too).
    :param channel: the channel every process shares.
    :param timeout: seconds to connect, publish or ping.
    """

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        timeout: float = 2.0,
        backoff: tuple[float, float] = (0.1, 10.0),
        poll: float = 0.25,
    ) -> None:
        super().__init__(channel=channel, timeout=timeout, backoff=backoff, poll=poll)
        self.url = libpq_url(url)
        try:
            self._info = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError as error:
            raise BusError(f"the invalidation URL is not a PostgreSQL URL: {error}") from None

    def _where(self) -> str:
        info = self._info
        return (
            f"postgresql {info.get('host', 'localhost')}:{info.get('port', 5432)}/"
            f"{info.get('dbname', '')}"
        )

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url,
            autocommit=True,
            # libpq counts whole seconds and treats 1 as 2.
            connect_timeout=max(2, round(self.timeout)),
            # Operators (and pg_stat_activity) can tell our connections apart.
            application_name=f"ainisa_invalidation:{self.channel}",
            # Notice a peer that vanished without closing (a partition, a host down).
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
        )

    def _open(self) -> Any:
        connection = self._connect()
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            connection.close()
            raise
        return [connection, time.monotonic()]

    def _receive(self, state: Any, timeout: float) -> list[str]:
        connection: psycopg.Connection[Any] = state[0]
        # stop_after: hand over the first notification at once, not at the timeout.
        payloads = [n.payload for n in connection.notifies(timeout=timeout, stop_after=1)]
        now = time.monotonic()
        if payloads:
            state[1] = now
        elif now - state[1] > _IDLE_CHECK:
            # A terminated backend is only noticed when the socket is used.
            connection.execute("SELECT 1")
            state[1] = now
        if connection.closed:
            raise BusError("the listening connection was closed")
        return payloads

    def _close_connection(self, state: Any) -> None:
        state[0].close()

    def _send(self, payload: str) -> None:
        with self._connect() as connection:
            connection.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))

    def ping(self) -> None:
        try:
            with self._connect() as connection:
                connection.execute("SELECT 1")
        except Exception as error:
            raise BusError(f"{self._where()} does not answer: {_describe(error)}") from None
