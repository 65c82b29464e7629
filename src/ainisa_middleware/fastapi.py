"""FastAPI dependencies for the visitor that ``AinisaMiddleware`` verified.

Install the extra, ``pip install "ainisa-middleware[fastapi]"``, then::

    @app.post("/chat")
    async def chat(user: Annotated[AinisaUser, Depends(require_verified_user)]): ...

Both work on WebSocket routes too (they take Starlette's ``HTTPConnection``,
the base of ``Request`` and ``WebSocket``); there they see the connect's
identity, so read ``get_ainisa_user(websocket)`` again after the first frame
when the widget sends its identity there.
"""

from __future__ import annotations

try:
    from fastapi import Request
    from fastapi.requests import HTTPConnection
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "FastAPI is not installed: install it with 'pip install \"ainisa-middleware[fastapi]\"'."
    ) from exc

from starlette.responses import JSONResponse, Response

from .asgi import STATE_KEY, AinisaIdentityError
from .errors import ERRORS
from .models import AinisaUser

__all__ = [
    "AinisaIdentityError",
    "get_ainisa_user",
    "identity_error_handler",
    "require_verified_user",
]


def get_ainisa_user(request: HTTPConnection) -> AinisaUser | None:
    """The visitor on this request or WebSocket, or ``None`` where the middleware did not run.

    Anonymous and unverified visitors are an :class:`AinisaUser` with
    ``verified`` false; check ``user.verified`` before trusting ``user.user_id``.
    """
    user = getattr(request.state, STATE_KEY, None)
    return user if isinstance(user, AinisaUser) else None


def require_verified_user(request: HTTPConnection) -> AinisaUser:
    """The verified visitor; anyone else gets ``401 identity_required``.

    On a WebSocket route the middleware denies the handshake instead (or closes
    with 1008 ``identity_required`` once the app accepted).

    The 401 is answered by :class:`AinisaMiddleware` (added with
    ``app.add_middleware``), in the contract's JSON shape. An app that wraps
    the middleware around FastAPI by hand registers :func:`identity_error_handler`.
    """
    user = get_ainisa_user(request)
    if user is None or not user.verified:
        raise AinisaIdentityError("identity_required")
    return user


async def identity_error_handler(request: Request, exc: Exception) -> Response:
    """Render :class:`AinisaIdentityError` as the contract's JSON error."""
    code = exc.code if isinstance(exc, AinisaIdentityError) else "identity_required"
    spec = ERRORS[code]
    return JSONResponse({"error": code, "detail": spec.detail}, status_code=spec.status)
