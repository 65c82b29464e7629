"""A TCP forwarder on 127.0.0.1 that a test can cut, to play a database outage."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class Proxy:
    """Forward 127.0.0.1:<port> to a database server until :meth:`cut`.

    ``cut`` closes every open connection and stops listening (clients see their
    connection reset and new ones refused); ``restore`` listens again on the
    same port.
    """

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        assert parts.hostname and parts.port
        self.target = (parts.hostname, parts.port)
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self.restore()

    def url(self, target_url: str) -> str:
        host = f"{self.target[0]}:{self.target[1]}"
        return target_url.replace(host, f"127.0.0.1:{self.port}", 1)

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with self._lock:
            sockets, self._sockets = set(self._sockets), set()
        for sock in sockets:
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if listener is not None:
            listener.close()

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            self._start(self._pump, client, server)
            self._start(self._pump, server, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(None)
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(sink)
            _close(source)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
