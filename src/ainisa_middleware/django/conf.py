"""``settings.AINISA``: read, checked by the core's validator, shown two ways.

The middleware raises :class:`~django.core.exceptions.ImproperlyConfigured` at
startup and ``manage.py check`` reports :class:`django.core.checks.Error` s,
both from the same list of problems, so they always say the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ainisa_middleware.config import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_FORM_FIELDS,
    DEFAULT_MAX_UPLOAD_SIZE,
    DEFAULT_RESOLVER_TIMEOUT,
    MiddlewareConfig,
    collect_problems,
)
from ainisa_middleware.invalidation import INVALIDATION_URL_ENV

__all__ = [
    "DEFAULT_ROTATION_GRACE",
    "KEYS",
    "SETTING",
    "Problem",
    "load_config",
    "invalidation_url",
    "problems",
    "rotation_grace",
]

#: The name of the Django setting.
SETTING: Final = "AINISA"
#: Middleware keyword -> key in ``settings.AINISA`` (the keyword upper-cased).
KEYS: Final = {
    "resolver": "RESOLVER",
    "paths": "PATHS",
    "mode": "MODE",
    "max_body_size": "MAX_BODY_SIZE",
    "resolver_timeout": "RESOLVER_TIMEOUT",
    "max_form_fields": "MAX_FORM_FIELDS",
    "max_upload_size": "MAX_UPLOAD_SIZE",
    "on_decision": "ON_DECISION",
}
#: How long the admin's "rotate" keeps the previous secret verifying.
DEFAULT_ROTATION_GRACE: Final = timedelta(days=7)
_APP_KEYS: Final = (
    "ROTATION_GRACE",
    # The bus that carries changes to other processes (django/invalidation.py).
    "INVALIDATION_URL",
    # The Fernet key(s) secrets are encrypted with (django/sealing.py).
    "MASTER_KEY",
    # Read by the template tags (templatetags/ainisa.py), not by the middleware.
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
_NAMES: Final = {keyword: f"AINISA[{key!r}]" for keyword, key in KEYS.items()}
_EXAMPLE: Final = 'AINISA = {"RESOLVER": "myproject.ainisa.resolver", "PATHS": ["/chat"]}'

# One check id per setting, so SILENCED_SYSTEM_CHECKS can name exactly one problem.
_IDS: Final = {
    "resolver": "ainisa.E004",
    "paths": "ainisa.E006",
    "mode": "ainisa.E007",
    "max_body_size": "ainisa.E008",
    "resolver_timeout": "ainisa.E009",
    "max_form_fields": "ainisa.E011",
    "max_upload_size": "ainisa.E013",
    "on_decision": "ainisa.E021",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the settings: the sentence, what to do, a check id."""

    message: str
    hint: str
    id: str


def _settings_dict(value: object) -> tuple[Mapping[str, Any] | None, list[Problem]]:
    if value is None:
        return None, [
            Problem(
                "settings.AINISA is not set, so AinisaMiddleware cannot verify anything.",
                f"Add it to your settings, e.g. {_EXAMPLE}",
                "ainisa.E001",
            )
        ]
    if not isinstance(value, Mapping):
        return None, [
            Problem(
                f"settings.AINISA must be a dict, not {type(value).__name__}.",
                f"Write it as a dict, e.g. {_EXAMPLE}",
                "ainisa.E002",
            )
        ]
    unknown = sorted(str(key) for key in value if key not in KEYS.values() and key not in _APP_KEYS)
    if unknown:
        allowed = ", ".join([*KEYS.values(), *_APP_KEYS])
        return value, [
            Problem(
                f"settings.AINISA has unknown keys: {', '.join(unknown)}.",
                f"The keys are {allowed} (upper case); check the spelling.",
                "ainisa.E003",
            )
        ]
    return value, []


def _load_hook(value: object) -> tuple[object, list[Problem]]:
    """``ON_DECISION`` as given, or the callable its dotted path names."""
    if not isinstance(value, str):
        return value, []
    try:
        return import_string(value), []
    except ImportError as exc:
        return None, [
            Problem(
                f"AINISA['ON_DECISION'] = {value!r} cannot be imported: {exc}.",
                "Give the dotted path of a function taking a DecisionRecord, e.g. "
                "'myproject.metrics.on_decision'.",
                "ainisa.E022",
            )
        ]


def _load_resolver(value: object) -> tuple[object, list[Problem]]:
    """An object as given, or the object (an instance of the class) a dotted path names."""
    if not isinstance(value, str):
        return value, []
    try:
        found = import_string(value)
        if isinstance(found, type):
            found = found()
    except Exception as exc:  # ImportError, or a class that needs arguments
        return None, [
            Problem(
                f"AINISA['RESOLVER'] = {value!r} cannot be imported and built: "
                f"{type(exc).__name__}: {exc}.",
                "Give the dotted path of a resolver object, or of a class that needs no "
                "arguments such as 'ainisa_middleware.django.ModelResolver'.",
                "ainisa.E005",
            )
        ]
    return found, []


def _collect(value: object) -> tuple[dict[str, object], list[Problem]]:
    """The middleware keywords from ``settings.AINISA`` and every problem with them."""
    given, found = _settings_dict(value)
    if given is None:
        return {}, found
    keywords: dict[str, object] = {
        "resolver": given.get("RESOLVER"),
        "paths": given.get("PATHS"),
        "mode": given.get("MODE", "strip"),
        "max_body_size": given.get("MAX_BODY_SIZE", DEFAULT_MAX_BODY_SIZE),
        "resolver_timeout": given.get("RESOLVER_TIMEOUT", DEFAULT_RESOLVER_TIMEOUT),
        "max_form_fields": given.get("MAX_FORM_FIELDS", DEFAULT_MAX_FORM_FIELDS),
        "max_upload_size": given.get("MAX_UPLOAD_SIZE", DEFAULT_MAX_UPLOAD_SIZE),
        "on_decision": given.get("ON_DECISION"),
    }
    resolver, import_problems = _load_resolver(keywords["resolver"])
    found.extend(import_problems)
    keywords["resolver"] = resolver
    hook, hook_problems = _load_hook(keywords["on_decision"])
    found.extend(hook_problems)
    keywords["on_decision"] = hook
    for message in collect_problems(**keywords, names=_NAMES):
        keyword = next(k for k, name in _NAMES.items() if message.startswith(name))
        if keyword == "resolver" and import_problems:
            continue  # already explained by the import failure
        found.append(Problem(message, _hint(keyword), _IDS[keyword]))
    if "ROTATION_GRACE" in given:
        found.extend(_grace_problems(given["ROTATION_GRACE"]))
    return keywords, found


def _hint(keyword: str) -> str:
    key = KEYS[keyword]
    return {
        "RESOLVER": "Set AINISA['RESOLVER'] to a resolver object or its dotted path, e.g. "
        "'ainisa_middleware.django.ModelResolver'.",
        "PATHS": "Set AINISA['PATHS'] to the chat endpoints' path prefixes, e.g. ['/chat'].",
        "MODE": "Set AINISA['MODE'] to 'strip' (the default) or 'enforce'.",
        "MAX_BODY_SIZE": f"Set AINISA['MAX_BODY_SIZE'] to a number of bytes, or leave it out "
        f"for the default {DEFAULT_MAX_BODY_SIZE}.",
        "RESOLVER_TIMEOUT": "Set AINISA['RESOLVER_TIMEOUT'] to a number of seconds such as 5, "
        "or None for no limit.",
        "MAX_FORM_FIELDS": f"Set AINISA['MAX_FORM_FIELDS'] to a number of fields, or leave it "
        f"out for the default {DEFAULT_MAX_FORM_FIELDS}.",
        "MAX_UPLOAD_SIZE": f"Set AINISA['MAX_UPLOAD_SIZE'] to a number of bytes, or leave it "
        f"out for the default {DEFAULT_MAX_UPLOAD_SIZE} (25 MiB).",
        "ON_DECISION": "Set AINISA['ON_DECISION'] to a function taking a DecisionRecord, or "
        "its dotted path, e.g. 'myproject.metrics.on_decision'; or leave it out.",
    }[key]


def _grace_problems(value: object) -> list[Problem]:
    if isinstance(value, timedelta) and value >= timedelta(0):
        return []
    if not isinstance(value, bool) and isinstance(value, int | float) and value >= 0:
        return []
    return [
        Problem(
            f"AINISA['ROTATION_GRACE'] must be a timedelta or a number of seconds >= 0, "
            f"not {value!r}.",
            "Write e.g. datetime.timedelta(days=7), the default.",
            "ainisa.E010",
        )
    ]


def problems(*, middleware_installed: bool = True) -> list[Problem]:
    """Everything wrong with ``settings.AINISA`` (empty when the middleware can start).

    Without the middleware in ``MIDDLEWARE`` (a site that only renders the
    template tags, or only uses the admin) the middleware's keys are optional:
    only the keys given are checked.
    """
    value = getattr(settings, SETTING, None)
    if not middleware_installed:
        if value is None:
            return []
        if isinstance(value, Mapping) and not any(key in value for key in KEYS.values()):
            _, found = _settings_dict(value)
            if "ROTATION_GRACE" in value:
                found.extend(_grace_problems(value["ROTATION_GRACE"]))
            return found
    return _collect(value)[1]


def load_config() -> MiddlewareConfig:
    """The middleware's configuration, or :class:`ImproperlyConfigured` naming every problem."""
    keywords, found = _collect(getattr(settings, SETTING, None))
    if found:
        raise ImproperlyConfigured(
            "ainisa-middleware is not configured correctly:\n- "
            + "\n- ".join(f"{p.message} {p.hint}" for p in found)
        )
    return MiddlewareConfig.build(**keywords, names=_NAMES)


def rotation_grace() -> timedelta:
    """How long a rotated-out secret keeps verifying (``AINISA['ROTATION_GRACE']``)."""
    value = getattr(settings, SETTING, None)
    grace = value.get("ROTATION_GRACE") if isinstance(value, Mapping) else None
    if grace is None or _grace_problems(grace):
        return DEFAULT_ROTATION_GRACE
    return grace if isinstance(grace, timedelta) else timedelta(seconds=grace)


def invalidation_url() -> str | None:
    """``AINISA['INVALIDATION_URL']``, else ``$AINISA_INVALIDATION_URL``, else ``None``."""
    value = getattr(settings, SETTING, None)
    url = value.get("INVALIDATION_URL") if isinstance(value, Mapping) else None
    if url is None:
        url = os.environ.get(INVALIDATION_URL_ENV) or None
    if url is not None and not isinstance(url, str):
        raise ImproperlyConfigured(
            f"AINISA['INVALIDATION_URL'] must be a URL such as redis://cache:6379/0, not "
            f"{type(url).__name__}."
        )
    return url or None
