"""The demo application: two business websites and the chat backend they embed.

One FastAPI app plays every part a real deployment splits up: the business's
website (pages that render ``window.ainisaUser``), the reference widget's static
files, and the chat backend behind :class:`~ainisa_middleware.asgi.AinisaMiddleware`.
The chat backend answers in a way that shows what was verified, and reports
the status and the user object it received so the page's inspector can show
what the middleware stripped.

The routes are module-level functions on :data:`router`; what differs between
two apps (the store, the login key, the mode) lives on ``app.state``, where
:func:`create_app` puts it and each request finds it.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.staticfiles import StaticFiles

from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.config import Mode
from ainisa_middleware.fastapi import get_ainisa_user
from ainisa_middleware.models import AinisaUser, Status

from .data import BAKERY, BUSINESSES, CAFE, SHOP, USERS, DemoBusiness, DemoUser, business_for_widget
from .pages import render_site
from .store import DEFAULT_DB_URL, DemoStore

__all__ = [
    "CHAT_PATH",
    "MAX_MESSAGE_LENGTH",
    "SESSION_COOKIE",
    "compose_reply",
    "create_app",
    "router",
]

#: The chat backend's endpoint, the one path the middleware intercepts.
CHAT_PATH = "/chat"
#: The demo site's own login cookie (not part of the Ainisa scheme).
SESSION_COOKIE = "demo_session"
MAX_MESSAGE_LENGTH = 2000
_PAGES = {b.path: b for b in BUSINESSES.values()}
_USERS = list(USERS.values())
_STATIC = resources.files(__package__).joinpath("static")
_USER_FIELDS = frozenset(("user_id", "user_hash", "firstname", "lastname", "email"))


class _Sessions:
    """The website's login: a cookie holding a user id and an HMAC of it.

    The key is new on each start, so a restart logs everybody out; enough for
    a demo, and it keeps the site's own login honest while the page teaches signing.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _sign(self, user_id: str) -> str:
        return hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def cookie(self, user_id: str) -> str:
        return f"{user_id}.{self._sign(user_id)}"

    def user(self, request: Request) -> DemoUser | None:
        value = request.cookies.get(SESSION_COOKIE, "")
        user_id, _, signature = value.rpartition(".")
        if not user_id or not hmac.compare_digest(signature, self._sign(user_id)):
            return None
        return USERS.get(user_id)


def _security_headers(nonce: str) -> dict[str, str]:
    # The page's inline snippet runs only with this response's nonce, which is
    # why the sender-side helpers take one.
    policy = (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _orders_sentence(user: DemoUser) -> str:
    if not user.orders:
        return "You have no orders with us yet."
    listed = "; ".join(f"#{o.number} {o.item} ({o.state})" for o in user.orders)
    return f"Your orders: {listed}."


def _history_sentence(history: list[dict[str, str]]) -> str:
    earlier = [m["text"] for m in history if m["author"] == "visitor"]
    if not earlier:
        return "This is the start of our saved conversation."
    return f'I have {len(earlier)} earlier message(s) from you saved; the last was "{earlier[-1]}".'


def compose_reply(business: DemoBusiness, user: AinisaUser, history: list[dict[str, str]]) -> str:
    """What the demo assistant says, which depends only on what the middleware verified."""
    if user.verified:
        assert user.user_id is not None
        # The greeting uses the name this app holds for the verified user id:
        # the firstname in the request is not covered by the hash.
        customer = USERS.get(user.user_id)
        if customer is None:
            return (
                f"Hi! You are signed in as user {user.user_id}, but {business.name} has no "
                "account under that id. " + _history_sentence(history)
            )
        return f"Hi {customer.firstname}! {_orders_sentence(customer)} {_history_sentence(history)}"
    if user.status is Status.IDENTITY_DISABLED:
        return (
            f"Hello! {business.name} is on the {business.plan.title()} plan, which does not "
            "include visitor identity, so I am chatting with you as a guest and cannot see "
            "any orders."
        )
    return (
        "Hello! You are chatting as a guest, so I cannot see any orders or keep our "
        "history. Log in on the website and I will know who you are."
    )


def _bad_message(detail: str) -> tuple[dict[str, Any], int]:
    return {"error": "bad_message", "detail": detail}, 400


# -- what each request finds on app.state ----------------------------------------------
# async: FastAPI would run a plain function in a worker thread for each request.


async def _demo_store(request: Request) -> DemoStore:
    store: DemoStore = request.app.state.demo_store
    return store


async def _demo_sessions(request: Request) -> _Sessions:
    sessions: _Sessions = request.app.state.demo_sessions
    return sessions


Store = Annotated[DemoStore, Depends(_demo_store)]
Sessions = Annotated[_Sessions, Depends(_demo_sessions)]
Visitor = Annotated[AinisaUser | None, Depends(get_ainisa_user)]

#: Every route of the demo; :func:`create_app` includes it.
router = APIRouter()


# -- the websites ----------------------------------------------------------------------


def _site(
    business: DemoBusiness, request: Request, store: DemoStore, sessions: _Sessions
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    try:
        secret = store.signing_secret(business)
    except LookupError as exc:
        # Someone retired every secret with the store commands while we ran.
        return HTMLResponse(
            f"<!doctype html><title>No secret</title><p>{html.escape(str(exc))}</p>",
            status_code=503,
            headers=_security_headers(nonce),
        )
    page = render_site(
        business,
        sessions.user(request),
        secret=secret,
        mode=request.app.state.demo_mode,
        nonce=nonce,
        users=_USERS,
    )
    return HTMLResponse(page, headers=_security_headers(nonce))


@router.get("/", response_class=HTMLResponse)
def shop_site(request: Request, store: Store, sessions: Sessions) -> HTMLResponse:
    return _site(SHOP, request, store, sessions)


@router.get(CAFE.path, response_class=HTMLResponse)
def cafe_site(request: Request, store: Store, sessions: Sessions) -> HTMLResponse:
    return _site(CAFE, request, store, sessions)


@router.get(BAKERY.path, response_class=HTMLResponse)
def bakery_site(request: Request, store: Store, sessions: Sessions) -> HTMLResponse:
    return _site(BAKERY, request, store, sessions)


# -- the site's own login --------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def _back(form: dict[str, str]) -> str:
    target = form.get("next", "/")
    return target if target in _PAGES else "/"


@router.post("/login")
async def login(request: Request, sessions: Sessions) -> Response:
    form = await _form(request)
    user = USERS.get(form.get("user", ""))
    if user is None:
        return JSONResponse(
            {"error": "unknown_user", "detail": "Pick one of the demo users."},
            status_code=400,
        )
    response = RedirectResponse(_back(form), status_code=303)
    response.set_cookie(SESSION_COOKIE, sessions.cookie(user.id), httponly=True, samesite="lax")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse(_back(await _form(request)), status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
    return response


# -- the chat backend, behind the middleware -------------------------------------------


@router.post(CHAT_PATH)
async def chat(request: Request, user: Visitor, store: Store) -> JSONResponse:
    attachment: dict[str, Any] | None = None
    payload: Any
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        # A message with an attachment: the widget's paperclip.
        payload, attachment = await _multipart_message(request)
    else:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
    answer, status = await _answer(user, payload, store)
    if status == 200:
        answer["attachment"] = attachment
        if attachment is not None:
            answer["reply"] += (
                f" I received your file {attachment['name']} ({attachment['size']} bytes)."
            )
    return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})


@router.websocket(CHAT_PATH + "/ws")
async def chat_ws(websocket: WebSocket) -> None:
    """The same chat over a WebSocket: the widget sends its identity in the first frame."""
    store: DemoStore = websocket.app.state.demo_store
    await websocket.accept()
    try:
        while True:
            payload = await websocket.receive_json()  # the middleware removed what it must
            # Read the visitor on every frame: the first one settles it.
            answer, _ = await _answer(get_ainisa_user(websocket), payload, store)
            await websocket.send_json(answer)
    except WebSocketDisconnect:
        return


async def _answer(
    user: AinisaUser | None, payload: Any, store: DemoStore
) -> tuple[dict[str, Any], int]:
    """The reply to one chat message, and its HTTP status."""
    if user is None:  # pragma: no cover - the middleware always runs on this path
        raise RuntimeError("AinisaMiddleware did not run on the chat endpoint")
    if not isinstance(payload, dict):
        return _bad_message("Send the message as a JSON object.")
    message = payload.get("message")
    if not isinstance(message, str) or not message.strip():
        return _bad_message("The JSON body needs a non-empty string 'message'.")
    if len(message) > MAX_MESSAGE_LENGTH:
        return _bad_message(f"Messages are at most {MAX_MESSAGE_LENGTH} characters.")
    business = business_for_widget(user.widget_id)
    if business is None:  # pragma: no cover - the resolver only knows the demo widgets
        raise RuntimeError(f"no demo business for widget {user.widget_id}")

    history: list[dict[str, str]] = []
    customer: DemoUser | None = None
    if user.verified and user.user_id is not None:
        # Only a verified id may open a customer's orders and saved chats.
        customer = USERS.get(user.user_id)
        history = await run_in_threadpool(store.history, business.id, user.user_id)
        reply = compose_reply(business, user, history)
        await run_in_threadpool(
            store.save_exchange, business.id, user.user_id, message.strip(), reply
        )
    else:
        reply = compose_reply(business, user, history)
    answer = {
        "reply": reply,
        "status": user.status.value,
        "verified": user.verified,
        "user_id": user.user_id,
        "signed_fields": sorted(user.signed_fields),
        "business": {"id": business.id, "name": business.name, "plan": business.plan},
        # The user object exactly as this app read it from the rewritten body or frame.
        "received": payload.get("user"),
        "orders": [
            {"number": o.number, "item": o.item, "state": o.state}
            for o in (customer.orders if customer is not None else ())
        ],
        "history": history,
    }
    return answer, 200


async def _multipart_message(request: Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A message with an attachment, read as the JSON body reads: the message, the user
    fields as this app got them (after the middleware), and the file's name, size and hash."""
    form = await request.form(max_files=1, max_fields=20)
    try:
        payload: dict[str, Any] = {"message": form.get("message")}
        user = {k: v for k, v in form.multi_items() if k in _USER_FIELDS and isinstance(v, str)}
        if user:
            payload["user"] = user
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return payload, None
        digest = hashlib.sha256()
        size = 0
        while chunk := await upload.read(65536):
            digest.update(chunk)
            size += len(chunk)
        name = upload.filename or "attachment"
        return payload, {"name": name, "size": size, "sha256": digest.hexdigest()}
    finally:
        await form.close()


# -- the app ---------------------------------------------------------------------------


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.demo_store.close()


def create_app(
    db_url: str = DEFAULT_DB_URL, *, mode: Mode = "strip", reset: bool = False
) -> FastAPI:
    """Build the demo app on the store at ``db_url``, seeding it on first use.

    :param mode: the middleware's mode, ``"strip"`` or ``"enforce"``.
    :param reset: empty the store first (new secrets, no chat history).
    """
    store = DemoStore(db_url, reset=reset)
    app = FastAPI(
        title="ainisa-middleware demo",
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.demo_store = store
    app.state.demo_mode = mode
    app.state.demo_sessions = _Sessions()
    app.add_middleware(AinisaMiddleware, resolver=store.resolver, paths=[CHAT_PATH], mode=mode)
    app.mount("/static", StaticFiles(directory=str(_STATIC)), name="static")
    app.include_router(router)
    return app
