"""The demo websites' pages, rendered from ``templates/site.html``.

Each page renders ``window.ainisaUser`` server-side with the sender-side helper,
then loads the reference widget, exactly as a business's own site would.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template

from ainisa_middleware.snippet import user_script, widget_script
from ainisa_middleware.tokens import user_token

from .data import BUSINESSES, DemoBusiness, DemoUser

__all__ = ["WIDGET_SRC", "render_site"]

#: Where the app serves the reference widget.
WIDGET_SRC = "/static/widget.js"


@cache
def _template() -> Template:
    text = resources.files(__package__).joinpath("templates", "site.html").read_text("utf-8")
    return Template(text)


def _nav(current: DemoBusiness) -> str:
    items = []
    for business in BUSINESSES.values():
        label = f"{html.escape(business.name)} ({business.plan.title()})"
        if business.id == current.id:
            items.append(f'<li><a href="{business.path}" aria-current="page">{label}</a></li>')
        else:
            items.append(f'<li><a href="{business.path}">{label}</a></li>')
    return "".join(items)


def _account(business: DemoBusiness, user: DemoUser | None, users: list[DemoUser]) -> str:
    if user is not None:
        return (
            f'<p>Logged in as <strong id="who">{html.escape(user.name)}</strong></p>'
            '<form method="post" action="/logout">'
            f'<input type="hidden" name="next" value="{business.path}">'
            '<button type="submit">Log out</button></form>'
        )
    buttons = "".join(
        f'<button type="submit" name="user" value="{html.escape(u.id)}">'
        f"{html.escape(u.firstname)}</button>"
        for u in users
    )
    return (
        '<p>Browsing as <strong id="who">a guest</strong></p>'
        '<form method="post" action="/login" class="login">'
        f'<input type="hidden" name="next" value="{business.path}">'
        f'<span id="login-label">Log in as</span> <span role="group" '
        f'aria-labelledby="login-label">{buttons}</span></form>'
    )


def render_site(
    business: DemoBusiness,
    user: DemoUser | None,
    *,
    secret: str,
    mode: str,
    nonce: str,
    users: list[DemoUser],
) -> str:
    """The business's page for a logged-in ``user`` or a guest (``None``).

    :param secret: the business's signing secret; it stays on the server, only
        the hash it makes reaches the page.
    :param nonce: the Content-Security-Policy nonce for this response.
    """
    if user is not None and business.proofs == "token":
        # The names and email are signed into the token; the widget shows its own copies.
        token = user_token(
            secret,
            user.id,
            widget_id=business.widget_id,
            firstname=user.firstname,
            lastname=user.lastname,
            email=user.email,
        )
        snippet = user_script(
            user.id,
            user_token=token,
            firstname=user.firstname,
            lastname=user.lastname,
            email=user.email,
            nonce=nonce,
        )
        visitor = f"{html.escape(user.name)} (user_id <code>{html.escape(user.id)}</code>)"
        hash_note = (
            ", with a <code>user_token</code> signed with the business's secret: it names "
            "this widget, signs the names and email, and expires in an hour."
        )
        others = [u.id for u in users if u.id != user.id]
        tamper_value = others[0] if others else "0"
    if user is not None and business.proofs != "token":
        snippet = user_script(
            user.id,
            secret=secret,
            firstname=user.firstname,
            lastname=user.lastname,
            email=user.email,
            nonce=nonce,
        )
        visitor = f"{html.escape(user.name)} (user_id <code>{html.escape(user.id)}</code>)"
        hash_note = ", with a <code>user_hash</code> made from the business's secret."
        others = [u.id for u in users if u.id != user.id]
        tamper_value = others[0] if others else "0"
    if user is None:
        snippet = user_script(None, nonce=nonce)
        visitor = "a guest"
        hash_note = ": every field empty, so the visitor is anonymous."
        tamper_value = users[0].id if users else "1"
    return _template().substitute(
        business_name=html.escape(business.name),
        plan=business.plan,
        plan_label=business.plan.title(),
        tagline=html.escape(business.tagline),
        nav=_nav(business),
        account=_account(business, user, users),
        visitor=visitor,
        hash_note=hash_note,
        widget_id=html.escape(business.widget_id),
        mode=html.escape(mode),
        snippet_source=html.escape(snippet),
        tamper_value=html.escape(tamper_value),
        user_script=snippet,
        widget_script=widget_script(WIDGET_SRC, widget_id=business.widget_id, nonce=nonce),
    )
