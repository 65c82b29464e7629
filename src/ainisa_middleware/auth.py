"""Starlette's own authentication for the visitor ``AinisaMiddleware`` verified.

Install the extra, ``pip install "ainisa-middleware[starlette]"``. Put
``AinisaMiddleware`` outside ``AuthenticationMiddleware`` (first in the list),
so the visitor is judged before the backend reads it::

    app = Starlette(routes=..., middleware=[
        Middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"]),
        Middleware(AuthenticationMiddleware, backend=AinisaAuthBackend()),
    ])

Then ``request.user`` is an :class:`AinisaAuthUser` (``is_authenticated`` only when
verified), ``request.auth.scopes`` holds ``"ainisa:verified"`` for a verified
visitor, and Starlette's and FastAPI's ``requires("ainisa:verified")`` guard an
endpoint, HTTP or WebSocket, as their docs describe. Where the middleware did not
run (a path it does not protect) the backend returns nothing and Starlette's
``UnauthenticatedUser`` stands in: never a pass.
"""

from __future__ import annotations

try:
    from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
    from starlette.requests import HTTPConnection
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "Starlette is not installed: install it with "
        "'pip install \"ainisa-middleware[starlette]\"'."
    ) from exc

from typing import Final

from .asgi import STATE_KEY
from .models import AinisaUser

__all__ = ["VERIFIED_SCOPE", "AinisaAuthBackend", "AinisaAuthUser"]

#: The scope a verified visitor holds: ``requires(VERIFIED_SCOPE)``.
VERIFIED_SCOPE: Final = "ainisa:verified"


class AinisaAuthUser(BaseUser):
    """The Ainisa visitor as a Starlette user.

    ``identity`` is the verified user id (``""`` otherwise); ``display_name`` the
    names when the visitor sent them (unsigned under the hash scheme: show them,
    do not trust them; ``ainisa.signed_fields`` says which are signed), else the id.
    ``ainisa`` is the :class:`~ainisa_middleware.AinisaUser` with the status.
    """

    def __init__(self, ainisa: AinisaUser) -> None:
        self.ainisa = ainisa

    @property
    def is_authenticated(self) -> bool:
        return self.ainisa.verified

    @property
    def display_name(self) -> str:
        user = self.ainisa
        names = " ".join(name for name in (user.firstname, user.lastname) if name)
        return names or (user.user_id or "")

    @property
    def identity(self) -> str:
        return self.ainisa.user_id or ""

    def __repr__(self) -> str:
        return f"AinisaAuthUser(status={self.ainisa.status.value!r}, identity={self.identity!r})"


class AinisaAuthBackend(AuthenticationBackend):
    """Reads the visitor ``AinisaMiddleware`` put on the connection; no I/O, no secret."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        state = conn.scope.get("state")
        user = state.get(STATE_KEY) if isinstance(state, dict) else None
        if not isinstance(user, AinisaUser):
            return None  # the middleware did not run here: Starlette's unauthenticated user
        scopes = [VERIFIED_SCOPE] if user.verified else []
        return AuthCredentials(scopes), AinisaAuthUser(user)
