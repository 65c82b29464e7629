"""Django Channels: the ASGI middleware around a Channels router, from ``settings.AINISA``.

Install the extra, ``pip install "ainisa-middleware[channels]"``, then in ``asgi.py``::

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": AinisaChannelsMiddleware(URLRouter(websocket_urlpatterns)),
    })

Consumers read ``self.scope["state"]["ainisa_user"]``. The same
:class:`~ainisa_middleware.asgi.AinisaMiddleware` runs underneath, so a
WebSocket under ``AINISA["PATHS"]`` follows the same rules as on any ASGI
server (``docs/websocket.md``). Daphne offers no handshake-denial extension:
a refused connect is accepted and closed at once with 1008 (1013 when the
resolver fails) and the error code as the reason.
"""

from __future__ import annotations

import dataclasses

from ._types import ASGIApp
from .asgi import STATE_KEY, AinisaMiddleware
from .django.conf import load_config

__all__ = ["STATE_KEY", "AinisaChannelsMiddleware"]


class AinisaChannelsMiddleware(AinisaMiddleware):
    """:class:`~ainisa_middleware.asgi.AinisaMiddleware` configured from ``settings.AINISA``.

    Settings are read and checked when it is built (at import of ``asgi.py``),
    with the same messages as Django's middleware and ``manage.py check``.

    :param inner: the Channels application to protect, usually a ``URLRouter``.
    :param websocket_frames: ``"json"`` (the default) or ``"any"``; see
        :class:`~ainisa_middleware.asgi.AinisaMiddleware`.
    """

    def __init__(self, inner: ASGIApp, *, websocket_frames: str = "json") -> None:
        config = load_config()  # ImproperlyConfigured naming every problem
        keywords = {
            field.name: getattr(config, field.name)
            for field in dataclasses.fields(config)
            if field.init
        }
        super().__init__(inner, websocket_frames=websocket_frames, **keywords)
