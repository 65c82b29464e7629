"""Interim sender-side helpers, until ``ainisa_middleware.snippet`` is available."""

from __future__ import annotations

import html
import json

from ainisa_middleware.signing import user_hash

__all__ = ["user_script", "widget_script"]

_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _safe_json(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    for char, escaped in _UNSAFE.items():
        text = text.replace(char, escaped)
    return text


def user_script(
    user_id: str | None,
    *,
    secret: str,
    firstname: str = "",
    lastname: str = "",
    email: str = "",
    nonce: str | None = None,
) -> str:
    fields = {
        "user_id": user_id or "",
        "user_hash": user_hash(secret, user_id) if user_id else "",
        "firstname": firstname if user_id else "",
        "lastname": lastname if user_id else "",
        "email": email if user_id else "",
    }
    attr = f' nonce="{html.escape(nonce)}"' if nonce else ""
    return f"<script{attr}>window.ainisaUser = {_safe_json(fields)};</script>"


def widget_script(src: str, *, widget_id: str | None = None, nonce: str | None = None) -> str:
    attrs = f' src="{html.escape(src)}"'
    if widget_id:
        attrs += f' data-widget-id="{html.escape(widget_id)}"'
    if nonce:
        attrs += f' nonce="{html.escape(nonce)}"'
    return f"<script{attrs}></script>"
