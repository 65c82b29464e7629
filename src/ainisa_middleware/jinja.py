"""Jinja2 globals for the business's pages: Flask, FastAPI/Starlette, or plain Jinja2.

Install the extra: ``pip install "ainisa-middleware[jinja2]"``. Then, once at startup::

    install(app.jinja_env, secret=os.environ["AINISA_SECRET"])        # Flask
    install(templates.env, secret=os.environ["AINISA_SECRET"])        # FastAPI Jinja2Templates

and in a template, before the widget::

    {{ ainisa_user_script(user=current_user) }}
    {{ ainisa_widget_script() }}

Both return HTML that autoescaping leaves alone (it is escaped already, see
:mod:`ainisa_middleware.snippet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

try:
    import jinja2
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ainisa_middleware.jinja needs Jinja2: pip install 'ainisa-middleware[jinja2]'"
    ) from error

from .snippet import (
    DEFAULT_WIDGET_SRC,
    GuestShape,
    NonceSource,
    SecretSource,
    Snippets,
    UserField,
)

__all__ = ["DEFAULT_JINJA_USER_FIELDS", "install"]

#: Attribute names on a typical Flask-Login / SQLAlchemy user model.
DEFAULT_JINJA_USER_FIELDS: Final[Mapping[str, UserField]] = {
    "user_id": "id",
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
}


def install(
    env: jinja2.Environment,
    *,
    secret: SecretSource | None = None,
    user_fields: Mapping[str, UserField] = DEFAULT_JINJA_USER_FIELDS,
    widget_src: str = DEFAULT_WIDGET_SRC,
    widget_id: str | None = None,
    guest: GuestShape = "empty",
    nonce: NonceSource | None = None,
    prefix: str = "ainisa_",
    proof: str = "hash",
    token_ttl: int = 3600,
    token_kid: str | None = None,
) -> Snippets:
    """Add ``ainisa_user_script`` and ``ainisa_widget_script`` to ``env.globals``.

    ``ainisa_user_script(user=current_user)`` reads the fields through
    ``user_fields`` (an anonymous user renders the guest object);
    ``ainisa_user_script(user_id, firstname=..., email=...)`` takes them
    directly; both accept ``user_hash=`` (a stored hash, used instead of the
    secret), ``nonce=`` and ``consent=``. ``ainisa_widget_script()`` takes
    ``src=``, ``widget_id=``, ``nonce=`` and ``defer=``.

    The secret stays on the server: it signs the id while the page renders and
    never appears in the output. Configuration mistakes raise
    :class:`~ainisa_middleware.errors.ConfigurationError` here, at startup.

    :param secret: the business's secret, or a function returning it.
    :param user_fields: where each field lives on your user object.
    :param nonce: a CSP nonce or a function returning the current request's one
        (for example one that reads ``flask.g``).
    :param prefix: the globals' name prefix.
    :param proof: ``"token"`` renders a signed, expiring ``user_token`` for
        ``widget_id`` instead of the hash (the business must accept tokens).
    :param token_ttl: the token's lifetime in seconds (default one hour).
    :param token_kid: the secret's id in the store, written as the token's ``kid``.
    :returns: the bound :class:`~ainisa_middleware.snippet.Snippets`.
    """
    snippets = Snippets(
        secret=secret,
        user_fields=user_fields,
        widget_src=widget_src,
        widget_id=widget_id,
        guest=guest,
        nonce=nonce,
        setting="ainisa_middleware.jinja.install()",
        proof=proof,
        token_ttl=token_ttl,
        token_kid=token_kid,
    )
    env.globals[f"{prefix}user_script"] = snippets.user_script
    env.globals[f"{prefix}widget_script"] = snippets.widget_script
    return snippets
