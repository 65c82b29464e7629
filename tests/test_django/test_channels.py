"""Django Channels: ``AinisaChannelsMiddleware`` around a ``URLRouter``, from ``settings.AINISA``.

Driven by Channels' own ``WebsocketCommunicator`` (no server, no denial
extension: a refused connect is accepted and closed with 1008). Daphne with the
Django example is in ``tests/test_websocket_servers.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import path

from ainisa_middleware.channels import AinisaChannelsMiddleware
from tests.cases import GOOD, RESOLVER, user_dict


class EchoConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        user = self.scope["state"]["ainisa_user"]
        await self.send_json({"frame": content, "user": user_dict(user)})


def _app() -> AinisaChannelsMiddleware:
    return AinisaChannelsMiddleware(URLRouter([path("chat/ws", EchoConsumer.as_asgi())]))


SETTINGS = {"RESOLVER": RESOLVER, "PATHS": ["/chat"], "MODE": "enforce"}
ADA = {"user_id": "42", "user_hash": GOOD, "firstname": "Ada"}


@override_settings(AINISA=SETTINGS)
def test_consumer_reads_the_visitor_settled_by_the_first_frame() -> None:
    async def run() -> list[Any]:
        communicator = WebsocketCommunicator(_app(), "/chat/ws?widget_id=w_pro")
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_to(text_data=json.dumps({"msg": "hi", "user": ADA}))
        first = await communicator.receive_json_from()
        await communicator.send_to(text_data=json.dumps({"msg": "x", "user": {"user_id": "1"}}))
        later = await communicator.receive_json_from()
        await communicator.disconnect()
        return [first, later]

    first, later = async_to_sync(run)()
    assert first["user"]["status"] == "verified" and first["user"]["user_id"] == "42"
    assert first["frame"] == {"msg": "hi", "user": {"user_id": "42", "firstname": "Ada"}}
    assert later["frame"] == {"msg": "x"} and later["user"]["user_id"] == "42"


@override_settings(AINISA=SETTINGS)
def test_a_refused_connect_is_closed_with_1008_and_the_code() -> None:
    async def run() -> dict[str, Any]:
        communicator = WebsocketCommunicator(
            _app(), f"/chat/ws?widget_id=w_pro&user_id=7&user_hash={GOOD}"
        )
        connected, _ = await communicator.connect()
        assert connected  # accepted, so that the reason reaches the client
        message: dict[str, Any] = await communicator.receive_output()
        await communicator.wait()
        return message

    message = async_to_sync(run)()
    assert message == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "identity_verification_failed",
    }


@override_settings(AINISA={"RESOLVER": RESOLVER, "PATHS": "/chat", "MODE": "loose"})
def test_bad_settings_fail_at_construction_naming_each_key() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        _app()
    assert "AINISA['PATHS']" in str(caught.value) and "AINISA['MODE']" in str(caught.value)
