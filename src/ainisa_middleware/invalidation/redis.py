"""The invalidation bus on Redis pub/sub (extra ``redis``: redis-py).

    bus = RedisBus("redis://cache:6379/0")
    resolver = SQLResolver(url, invalidation=bus)   # or invalidation="redis://cache:6379/0"

Pub/sub keeps nothing: a process that is not listening when a message is
published never sees it. The subscriber therefore clears its caches each time
it (re)subscribes (see :class:`~ainisa_middleware.invalidation.ThreadedBus`).
"""

from __future__ import annotations

from typing import Any

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Redis invalidation bus needs redis-py: install it with "
        "'pip install \"ainisa-middleware[redis]\"'."
    ) from exc

from . import DEFAULT_CHANNEL, BusError, ThreadedBus, _describe

__all__ = ["RedisBus"]


class RedisBus(ThreadedBus):
    """Invalidation over Redis ``PUBLISH`` / ``SUBSCRIBE``.

    :param url: ``redis://[:password@]host:6379/0``, ``rediss://`` (TLS) or ``unix://``.
    :param channel: the channel every process shares.
    :param timeout: seconds to connect, publish or ping.
    :param health_check_interval: seconds between the subscriber's PINGs, so a
        connection a network silently dropped is noticed.
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        timeout: float = 2.0,
        backoff: tuple[float, float] = (0.1, 10.0),
        poll: float = 0.25,
        health_check_interval: float = 5.0,
    ) -> None:
        super().__init__(channel=channel, timeout=timeout, backoff=backoff, poll=poll)
        self.url = url
        self.health_check_interval = health_check_interval
        # No retries inside redis-py: a lost connection must reach our loop, which
        # reconnects and clears the caches; a silent reconnect would hide the gap.
        self._client: redis.Redis = self._make_client()

    def _make_client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=self.health_check_interval,
            # Operators (and CLIENT LIST) can tell our connections apart.
            client_name=f"ainisa_invalidation:{self.channel}",
        )

    def _where(self) -> str:
        kwargs = self._client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"redis unix://{kwargs['path']}"
        return f"redis {kwargs.get('host', '?')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    def _open(self) -> Any:
        client = self._make_client()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            # Only once the server confirms are messages delivered: wait for it, so
            # the caches are cleared after the subscription is live, not before.
            reply = pubsub.get_message(timeout=self.timeout)
            if reply is None or reply.get("type") != "subscribe":
                raise BusError(f"no confirmation of SUBSCRIBE within {self.timeout} s")
        except BaseException:
            pubsub.close()
            client.close()
            raise
        return client, pubsub

    def _receive(self, connection: Any, timeout: float) -> list[str]:
        pubsub = connection[1]
        message = pubsub.get_message(timeout=timeout)
        payloads: list[str] = []
        while message is not None:
            if message.get("type") == "message":
                data = message.get("data")
                payloads.append(data.decode() if isinstance(data, bytes) else str(data))
            message = pubsub.get_message(timeout=0.0)
        return payloads

    def _close_connection(self, connection: Any) -> None:
        client, pubsub = connection
        pubsub.close()
        client.close()

    def _send(self, payload: str) -> None:
        self._client.publish(self.channel, payload)

    def ping(self) -> None:
        try:
            self._client.ping()
        except Exception as error:
            raise BusError(f"{self._where()} does not answer: {_describe(error)}") from None

    def close(self) -> None:
        super().close()
        self._client.close()
