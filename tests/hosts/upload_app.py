"""The apps the upload memory test serves: each reads the upload with its own form parser
and answers the file's size and SHA-256 (``tests/hosts/test_upload_memory.py``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.wrappers import Request as WerkzeugRequest

from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.wsgi import AinisaWSGIMiddleware
from tests.cases import PATHS, RESOLVER

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


async def upload(request: Request) -> JSONResponse:
    form = await request.form()
    found = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            digest = hashlib.sha256()
            size = 0
            while chunk := await value.read(65536):
                digest.update(chunk)
                size += len(chunk)
            found[name] = [size, digest.hexdigest()]
    await form.close()
    return JSONResponse(found)


app = Starlette(routes=[Route("/chat", upload, methods=["POST"])])
app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)


def wsgi_upload(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    request = WerkzeugRequest(environ)
    found = {}
    for name, value in request.files.items(multi=True):
        digest = hashlib.sha256()
        size = 0
        while chunk := value.stream.read(65536):
            digest.update(chunk)
            size += len(chunk)
        found[name] = [size, digest.hexdigest()]
    request.close()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(found).encode()]


wsgi_app = AinisaWSGIMiddleware(wsgi_upload, resolver=RESOLVER, paths=PATHS)
