"""ASGI entry point: ``uvicorn chatsite.asgi:application`` or ``daphne chatsite.asgi:application``.

HTTP goes to Django (its own ``AinisaMiddleware`` runs async there); WebSockets
go to Channels, wrapped in ``AinisaChannelsMiddleware``, which reads the same
``settings.AINISA``.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Loads the settings and the apps before the consumers import anything of Django's.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

from ainisa_middleware.channels import AinisaChannelsMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AinisaChannelsMiddleware(URLRouter(websocket_urlpatterns)),
    }
)
