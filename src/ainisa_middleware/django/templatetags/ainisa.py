"""Template tags for the business's pages: ``{% load ainisa %}``.

With ``"ainisa_middleware.django"`` in ``INSTALLED_APPS`` and the secret in
settings (``AINISA = {..., "SECRET": ...}``), a base template needs two lines
before ``</body>``::

    {% load ainisa %}
    {% ainisa_user_script %}{% ainisa_widget_script %}

``ainisa_user_script`` signs ``request.user``'s id with the secret while the
page renders (the secret never reaches the page); an anonymous user gets the
guest object. Every value is escaped for the script element by
:mod:`ainisa_middleware.snippet`, which does the work; these tags only read
settings and the request.

Settings, all optional, beside the middleware's keys in ``settings.AINISA``:

- ``SECRET``: the secret (a ``str``) or a function with no arguments returning it;
- ``USER_FIELDS``: where the five fields live on your user model
  (default :data:`DEFAULT_DJANGO_USER_FIELDS`, for ``django.contrib.auth``);
- ``WIDGET_SRC``, ``WIDGET_ID``: the widget tag's ``src`` and ``data-widget-id``;
- ``GUEST``: ``"empty"`` (the guide's guest object) or ``"omit"``;
- ``CONSENT``: a function of the request, or its dotted path, telling whether the
  visitor agreed to share their data; without it every visitor has;
- ``PROOF``: ``"hash"`` (default) or ``"token"``: render a signed, expiring
  ``user_token`` for ``WIDGET_ID`` (or the tag's ``widget_id=``) instead of the hash;
- ``TOKEN_TTL`` (seconds, default 3600) and ``TOKEN_KID`` (the secret's id in the
  store) for those tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from django import template
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ainisa_middleware.errors import ConfigurationError
from ainisa_middleware.snippet import DEFAULT_WIDGET_SRC, HTMLString, Snippets, UserField

__all__ = [
    "DEFAULT_DJANGO_USER_FIELDS",
    "TEMPLATE_KEYS",
    "ainisa_user_script",
    "ainisa_widget_script",
    "register",
]

register = template.Library()

#: The keys of ``settings.AINISA`` these tags read (the middleware reads the others).
TEMPLATE_KEYS: Final = (
    "SECRET",
    "USER_FIELDS",
    "WIDGET_SRC",
    "WIDGET_ID",
    "GUEST",
    "CONSENT",
    "PROOF",
    "TOKEN_TTL",
    "TOKEN_KID",
)
#: The attribute names of ``django.contrib.auth``'s ``User``.
DEFAULT_DJANGO_USER_FIELDS: Final[Mapping[str, UserField]] = {
    "user_id": "pk",
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
}
_UNSET: Final[Any] = object()


def _setting() -> Mapping[str, Any]:
    value = getattr(settings, "AINISA", None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"settings.AINISA must be a dict, not {type(value).__name__}.")
    return value


def _consent_function(value: object) -> Callable[[Any], object] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"AINISA['CONSENT'] = {value!r} cannot be imported ({error}); give the dotted "
                "path of a function taking the request, or the function itself."
            ) from None
    if not callable(value):
        raise ImproperlyConfigured(
            "AINISA['CONSENT'] must be a function of the request returning True when the "
            f"visitor agreed to share their data, or its dotted path; not {type(value).__name__}."
        )
    function: Callable[[Any], object] = value
    return function


def _configured() -> tuple[Snippets, Callable[[Any], object] | None]:
    # Read at each render: a few microseconds, and override_settings or a
    # changed secret in settings is always seen.
    given = _setting()
    try:
        snippets = Snippets(
            # A str is always the secret itself, never a dotted path: secrets
            # may contain dots. Import a function in settings to compute it.
            secret=given.get("SECRET"),
            user_fields=given.get("USER_FIELDS", DEFAULT_DJANGO_USER_FIELDS),
            widget_src=given.get("WIDGET_SRC", DEFAULT_WIDGET_SRC),
            widget_id=given.get("WIDGET_ID"),
            guest=given.get("GUEST", "empty"),
            setting="settings.AINISA",
            proof=given.get("PROOF", "hash"),
            token_ttl=given.get("TOKEN_TTL", 3600),
            token_kid=given.get("TOKEN_KID"),
        )
    except ConfigurationError as error:
        raise ImproperlyConfigured(str(error)) from error
    return snippets, _consent_function(given.get("CONSENT"))


def _nonce(context: template.Context, request: object, nonce: object) -> str | None:
    # Django 6's csp() context processor puts "csp_nonce" in the context;
    # django-csp puts it on the request. Both are lazy strings.
    for candidate in (nonce, context.get("csp_nonce"), getattr(request, "csp_nonce", None)):
        if candidate is not None and candidate != "":
            return str(candidate)
    return None


@register.simple_tag(takes_context=True)
def ainisa_user_script(
    context: template.Context,
    user: Any = _UNSET,
    consent: Any = _UNSET,
    nonce: Any = None,
    widget_id: Any = None,
) -> HTMLString:
    """``<script>window.ainisaUser = {...};</script>`` for ``request.user``.

    ``user=`` renders another user object (``None`` or ``""``: a guest);
    ``consent=`` overrides ``AINISA["CONSENT"]``; ``nonce=`` overrides the
    page's CSP nonce; ``widget_id=`` is the widget a token is made for
    (``AINISA["PROOF"] = "token"``), by default ``AINISA["WIDGET_ID"]``.
    """
    snippets, consent_of = _configured()
    request = context.get("request")
    if user is _UNSET:
        if request is None or not hasattr(request, "user"):
            raise ImproperlyConfigured(
                "{% ainisa_user_script %} reads request.user: add "
                "'django.template.context_processors.request' to TEMPLATES' context_processors "
                "and AuthenticationMiddleware to MIDDLEWARE, or pass user=."
            )
        user = request.user
    if consent is _UNSET:
        consent = True if consent_of is None else consent_of(request)
    try:
        return snippets.user_script(
            user=user if user != "" else None,
            consent=bool(consent),
            nonce=_nonce(context, request, nonce),
            widget_id=str(widget_id) if widget_id else None,
        )
    except ConfigurationError as error:  # no secret, or USER_FIELDS unfit for the user model
        raise ImproperlyConfigured(str(error)) from error


@register.simple_tag(takes_context=True)
def ainisa_widget_script(
    context: template.Context,
    src: str | None = None,
    widget_id: str | None = None,
    nonce: str | None = None,
    defer: bool = False,
) -> HTMLString:
    """``<script src=...></script>`` for the widget.

    ``src`` and ``widget_id`` default to ``AINISA["WIDGET_SRC"]`` and ``AINISA["WIDGET_ID"]``.
    """
    snippets, _ = _configured()
    request = context.get("request")
    return snippets.widget_script(
        src or None,
        widget_id=widget_id or None,
        nonce=_nonce(context, request, nonce),
        defer=bool(defer),
    )
