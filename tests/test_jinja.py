"""Jinja2 globals in plain Jinja2, Flask and FastAPI templates, and the page-to-middleware loop."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flask
import jinja2
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from fastapi.testclient import TestClient

from ainisa_middleware import AinisaUser, Business, ConfigurationError, StaticResolver
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.fastapi import get_ainisa_user
from ainisa_middleware.jinja import DEFAULT_JINJA_USER_FIELDS, install
from ainisa_middleware.snippet import USER_FIELDS

from .html_tools import parse_html5, user_object_from

SECRET = "jinja-secret"
GUEST = dict.fromkeys(USER_FIELDS, "")
PAGE = (
    "<!DOCTYPE html><html><head><title>shop</title></head><body>\n"
    '<p id="before">{{ greeting }}</p>'
    "{{ ainisa_user_script(user=user) }}{{ ainisa_widget_script() }}"
    '<p id="after">after</p>\n</body></html>'
)


def _hmac(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _snippet_part(page: str) -> str:
    start = page.index('<p id="before">')
    start = page.index("</p>", start) + len("</p>")
    return page[start : page.index('<p id="after">')]


def _user(**fields: Any) -> SimpleNamespace:
    return SimpleNamespace(is_authenticated=True, **fields)


@pytest.fixture
def env() -> jinja2.Environment:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    install(environment, secret=SECRET, widget_id="shop-1")
    return environment


def test_autoescaping_environment_inserts_the_snippet_unescaped(env: jinja2.Environment) -> None:
    user = _user(id=12, first_name="<Ada>", last_name="O'Neil", email="ada@example.com")
    page = env.from_string(PAGE).render(user=user, greeting="<hi>")
    assert "&lt;hi&gt;" in page  # ordinary values are still escaped
    snippet = _snippet_part(page)
    elements = parse_html5(snippet)
    assert [(e.tag, e.attrs) for e in elements] == [
        ("script", {}),
        ("script", {"src": "https://chatbot.ainisa.com/widget.js", "data-widget-id": "shop-1"}),
    ]
    assert user_object_from(snippet.split("<script src")[0]) == {
        "user_id": "12",
        "user_hash": _hmac(SECRET, "12"),
        "firstname": "<Ada>",
        "lastname": "O'Neil",
        "email": "ada@example.com",
    }
    assert SECRET not in page


def test_anonymous_user_renders_the_guest_object(env: jinja2.Environment) -> None:
    anonymous = SimpleNamespace(is_authenticated=False, id=None)
    page = env.from_string(PAGE).render(user=anonymous, greeting="")
    assert user_object_from(_snippet_part(page).split("<script src")[0]) == GUEST


def test_fields_can_be_passed_directly_with_a_nonce(env: jinja2.Environment) -> None:
    template = env.from_string(
        "{{ ainisa_user_script(uid, firstname=name, nonce=nonce) }}"
        "{{ ainisa_widget_script(nonce=nonce, defer=True) }}"
    )
    page = template.render(uid="u-1", name="</script>", nonce="abc123")
    first, second = parse_html5(page)
    assert first.attrs == {"nonce": "abc123"}
    assert second.attrs == {
        "src": "https://chatbot.ainisa.com/widget.js",
        "data-widget-id": "shop-1",
        "nonce": "abc123",
        "defer": "",
    }
    assert user_object_from(page.split("<script src")[0])["firstname"] == "</script>"


def test_consent_false_in_a_template_renders_no_personal_data(env: jinja2.Environment) -> None:
    page = env.from_string("{{ ainisa_user_script(user=user, consent=False) }}").render(
        user=_user(id=3, first_name="Ada", last_name="L", email="a@example.com")
    )
    assert user_object_from(page) == GUEST


def test_install_returns_the_bound_helpers_and_honours_a_prefix() -> None:
    environment = jinja2.Environment(autoescape=True)
    snippets = install(environment, secret=lambda: SECRET, prefix="chat_", guest="omit")
    assert environment.globals["chat_user_script"] == snippets.user_script
    assert "ainisa_user_script" not in environment.globals
    assert snippets.user_fields == dict(DEFAULT_JINJA_USER_FIELDS)
    assert environment.from_string("[{{ chat_user_script() }}]").render() == "[]"


def test_install_refuses_a_mapping_with_private_fields() -> None:
    with pytest.raises(ConfigurationError, match="install\\(\\) user_fields: keys password"):
        install(
            jinja2.Environment(), secret=SECRET, user_fields={"user_id": "id", "password": "pw"}
        )


def test_flask_template_renders_the_snippet() -> None:
    app = flask.Flask(__name__)
    install(app.jinja_env, secret=SECRET, nonce=lambda: flask.g.get("csp_nonce"))

    @app.get("/")
    def index() -> str:
        flask.g.csp_nonce = "fl4sk"
        user = _user(id=99, first_name="Grace", last_name="Hopper", email="g@example.com")
        return flask.render_template_string(PAGE, user=user, greeting="hello")

    page = app.test_client().get("/").get_data(as_text=True)
    snippet = _snippet_part(page)
    assert [e.attrs.get("nonce") for e in parse_html5(snippet)] == ["fl4sk", "fl4sk"]
    assert user_object_from(snippet.split("<script src")[0])["user_hash"] == _hmac(SECRET, "99")


def test_fastapi_page_signs_what_the_middleware_then_verifies(tmp_path: Path) -> None:
    """The full loop: the page renders window.ainisaUser, the widget posts it, we verify it."""
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    templates = Jinja2Templates(directory=tmp_path)
    install(templates.env, secret=SECRET, widget_id="shop-1")
    app = FastAPI()
    users = {"7": _user(id=7, first_name="Zoë", last_name="</script>", email="z@example.com")}

    @app.get("/page/{uid}", response_class=HTMLResponse)
    def page(request: Request, uid: str) -> Any:
        context = {"user": users.get(uid), "greeting": "hi"}
        return templates.TemplateResponse(request, "page.html", context)

    @app.post("/chat")
    def chat(request: Request) -> dict[str, Any]:
        user: AinisaUser | None = get_ainisa_user(request)
        assert user is not None
        return {"status": user.status, "user_id": user.user_id, "lastname": user.lastname}

    business = Business(id="shop", secrets=(SECRET,))
    app.add_middleware(
        AinisaMiddleware, resolver=StaticResolver({"shop-1": business}), paths=["/chat"]
    )
    with TestClient(app) as client:
        snippet = _snippet_part(client.get("/page/7").text)
        widget_id = parse_html5(snippet)[1].attrs["data-widget-id"]
        sent = user_object_from(snippet.split("<script src")[0])
        answer = client.post("/chat", json={"widget_id": widget_id, "user": sent})
        assert answer.json() == {"status": "verified", "user_id": "7", "lastname": "</script>"}

        guest = user_object_from(
            _snippet_part(client.get("/page/nobody").text).split("<script src")[0]
        )
        assert guest == GUEST
        answer = client.post("/chat", json={"widget_id": widget_id, "user": guest})
        assert answer.json() == {"status": "anonymous", "user_id": None, "lastname": None}


def test_token_mode_renders_a_token_for_the_widget_and_no_hash() -> None:
    from ainisa_middleware.tokens import check_token

    env = jinja2.Environment(autoescape=True)
    install(env, secret=SECRET, widget_id="w_tok", proof="token", token_ttl=60, token_kid="k1")
    user = _user(id=42, first_name="Ada", last_name=None, email="ada@example.com")
    html = env.from_string("{{ ainisa_user_script(user=user) }}").render(user=user)
    sent = user_object_from(html)
    assert "user_hash" not in sent and SECRET not in html
    business = Business(id="b", secrets=(SECRET,), secret_ids=("k1",), proofs="token")
    check = check_token(sent["user_token"], business, "w_tok")
    assert check.fields == {"user_id": "42", "firstname": "Ada", "email": "ada@example.com"}
    guest = env.from_string("{{ ainisa_user_script(user=None) }}").render()
    assert user_object_from(guest) == GUEST


def test_token_mode_needs_a_widget_and_a_known_proof() -> None:
    env = jinja2.Environment(autoescape=True)
    install(env, secret=SECRET, proof="token")
    with pytest.raises(ConfigurationError, match="made for one widget"):
        env.from_string("{{ ainisa_user_script('42') }}").render()
    assert (
        "user_token" in env.from_string("{{ ainisa_user_script('42', widget_id='w1') }}").render()
    )
    with pytest.raises(ConfigurationError, match="proof must be"):
        install(jinja2.Environment(), secret=SECRET, proof="jwt")
