"""``{% load ainisa %}``: real pages for a logged-in and an anonymous user, then verified."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.test import Client, RequestFactory, override_settings
from django.urls import path

from ainisa_middleware import user_hash
from ainisa_middleware.snippet import USER_FIELDS
from tests.html_tools import parse_html5, user_object_from
from tests.test_django import views
from tests.test_django.resolvers import SECRET

BASE: dict[str, Any] = {
    "RESOLVER": "tests.test_django.resolvers.resolver",
    "PATHS": ["/chat"],
    "SECRET": SECRET,
    "WIDGET_ID": "wid_pro",
}
GUEST = dict.fromkeys(USER_FIELDS, "")
PAGE = (
    "{% load ainisa %}<!DOCTYPE html><html><head><title>shop</title></head><body>"
    '<p id="before">{{ request.user.get_username }}</p>'
    "{% ainisa_user_script %}{% ainisa_widget_script %}"
    '<p id="after">after</p></body></html>'
)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(engines["django"].from_string(PAGE).render({}, request))


def consent_cookie(request: HttpRequest) -> bool:
    """The visitor clicked "yes" on the chat consent banner."""
    return request.COOKIES.get("chat_consent") == "yes"


urlpatterns = [path("page", page), path("chat", views.echo)]


def ainisa(**changes: Any) -> override_settings:
    return override_settings(AINISA={**BASE, **changes}, ROOT_URLCONF=__name__)


def _snippet(html: str) -> tuple[str, str]:
    start = html.index("</p>", html.index('<p id="before">')) + len("</p>")
    part = html[start : html.index('<p id="after">')]
    split = part.index("<script src")
    return part[:split], part[split:]


def _render(source: str, request: HttpRequest | None = None, **context: Any) -> str:
    return str(engines["django"].from_string("{% load ainisa %}" + source).render(context, request))


@pytest.fixture
def ada(db: None) -> User:
    return User.objects.create_user(
        "ada", email="ada@example.com", first_name="Ada </script><!--", last_name="Lovelace"
    )


@pytest.fixture
def client() -> Iterator[Client]:
    with ainisa():
        yield Client()


def test_logged_in_user_is_signed_and_then_verified_by_the_middleware(
    ada: User, client: Client
) -> None:
    client.force_login(ada)
    user_part, widget_part = _snippet(client.get("/page").content.decode())
    sent = user_object_from(user_part)
    assert sent == {
        "user_id": str(ada.pk),
        "user_hash": user_hash(SECRET, str(ada.pk)),
        "firstname": "Ada </script><!--",
        "lastname": "Lovelace",
        "email": "ada@example.com",
    }
    (widget,) = parse_html5(widget_part)
    assert widget.attrs == {
        "src": "https://chatbot.ainisa.com/widget.js",
        "data-widget-id": "wid_pro",
    }
    body = {"widget_id": widget.attrs["data-widget-id"], "user": sent, "message": "hi"}
    answer = client.post("/chat", json.dumps(body), content_type="application/json").json()
    assert answer["user"]["status"] == "verified"
    assert answer["user"]["user_id"] == str(ada.pk)
    assert answer["user"]["firstname"] == "Ada </script><!--"


def test_anonymous_visitor_gets_the_guest_object(db: None, client: Client) -> None:
    user_part, _ = _snippet(client.get("/page").content.decode())
    assert user_object_from(user_part) == GUEST
    body = {"widget_id": "wid_pro", "user": GUEST}
    answer = client.post("/chat", json.dumps(body), content_type="application/json").json()
    assert answer["user"]["status"] == "anonymous"


def test_anonymous_visitor_needs_no_secret(db: None) -> None:
    with ainisa(SECRET=None):
        user_part, _ = _snippet(Client().get("/page").content.decode())
    assert user_object_from(user_part) == GUEST


def test_guest_can_be_omitted(db: None) -> None:
    with ainisa(GUEST="omit"):
        html = Client().get("/page").content.decode()
    assert "window.ainisaUser" not in html
    assert "widget.js" in html


def test_consent_function_from_a_dotted_path(ada: User) -> None:
    with ainisa(CONSENT=f"{__name__}.consent_cookie"):
        client = Client()
        client.force_login(ada)
        refused, _ = _snippet(client.get("/page").content.decode())
        client.cookies["chat_consent"] = "yes"
        agreed, _ = _snippet(client.get("/page").content.decode())
    assert user_object_from(refused) == GUEST
    assert "Lovelace" not in refused and "ada@example.com" not in refused
    assert user_object_from(agreed)["lastname"] == "Lovelace"


def test_custom_field_mapping_and_secret_function() -> None:
    member = SimpleNamespace(
        is_authenticated=True,
        member_no="M-7",
        profile=SimpleNamespace(given="Grace"),
        family="Hopper",
    )
    fields = {
        "user_id": "member_no",
        "firstname": "profile.given",
        "lastname": lambda user: user.family.upper(),
    }
    request = RequestFactory().get("/")
    request.user = member  # type: ignore[assignment]
    with ainisa(USER_FIELDS=fields, SECRET=lambda: "rotated-secret"):
        html = _render("{% ainisa_user_script %}", request)
    assert user_object_from(html) == {
        "user_id": "M-7",
        "user_hash": user_hash("rotated-secret", "M-7"),
        "firstname": "Grace",
        "lastname": "HOPPER",
        "email": "",
    }


def test_tag_arguments_override_user_consent_and_nonce() -> None:
    request = RequestFactory().get("/")
    other = SimpleNamespace(is_authenticated=True, pk=5, first_name="Bo", last_name="", email="")
    with ainisa():
        html = _render(
            '{% ainisa_user_script user=other nonce="abc" %}'
            "{% ainisa_user_script user=None %}"
            "{% ainisa_user_script user=other consent=False %}",
            request,
            other=other,
        )
    first, second, third = (f"<script{part}" for part in html.split("<script")[1:])
    assert parse_html5(first)[0].attrs == {"nonce": "abc"}
    assert user_object_from(first)["user_id"] == "5"
    assert user_object_from(second) == GUEST
    assert user_object_from(third) == GUEST


def test_nonce_comes_from_the_csp_context_variable_or_the_request() -> None:
    request = RequestFactory().get("/")
    request.user = SimpleNamespace(is_authenticated=False)  # type: ignore[assignment]
    with ainisa():
        from_context = _render(
            "{% ainisa_user_script %}{% ainisa_widget_script %}", request, csp_nonce="ctxN0nce"
        )
        request.csp_nonce = "reqN0nce"  # type: ignore[attr-defined]
        from_request = _render("{% ainisa_user_script %}{% ainisa_widget_script %}", request)
    assert [e.attrs["nonce"] for e in parse_html5(from_context)] == ["ctxN0nce", "ctxN0nce"]
    assert [e.attrs["nonce"] for e in parse_html5(from_request)] == ["reqN0nce", "reqN0nce"]


def test_widget_tag_settings_and_arguments() -> None:
    with ainisa(WIDGET_SRC="/static/widget.js"):
        html = _render(
            "{% ainisa_widget_script %}"
            '{% ainisa_widget_script src="/other.js" widget_id="wid_b" defer=True %}'
        )
    assert [e.attrs for e in parse_html5(html)] == [
        {"src": "/static/widget.js", "data-widget-id": "wid_pro"},
        {"src": "/other.js", "data-widget-id": "wid_b", "defer": ""},
    ]


def test_output_is_the_same_with_autoescape_off() -> None:
    request = RequestFactory().get("/")
    request.user = SimpleNamespace(is_authenticated=True, pk=1, first_name="<b>", email="&")
    with ainisa():
        on = _render("{% ainisa_user_script %}", request)
        off = _render("{% autoescape off %}{% ainisa_user_script %}{% endautoescape %}", request)
    assert on == off
    assert user_object_from(on)["firstname"] == "<b>"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"USER_FIELDS": {"user_id": "pk", "password": "password"}}, "keys password are not"),
        ({"USER_FIELDS": {"email": "email"}}, "'user_id' is required"),
        ({"USER_FIELDS": {"user_id": "uid"}}, "maps user_id to 'uid', but the signed-in user"),
        ({"GUEST": "nobody"}, "guest must be one of"),
        ({"WIDGET_ID": "not a widget"}, "widget_id must be 1 to 128"),
        ({"SECRET": 42}, "secret must be the business's secret"),
        ({"SECRET": None}, "no secret to sign the user id with"),
        ({"CONSENT": "tests.nowhere.consent"}, "AINISA['CONSENT'] = 'tests.nowhere.consent'"),
        ({"CONSENT": True}, "AINISA['CONSENT'] must be a function of the request"),
    ],
)
def test_bad_settings_raise_improperly_configured(changes: dict[str, Any], message: str) -> None:
    request = RequestFactory().get("/")
    request.user = SimpleNamespace(is_authenticated=True, pk=1)  # type: ignore[assignment]
    with ainisa(**changes), pytest.raises(ImproperlyConfigured, match=re.escape(message)) as caught:
        _render("{% ainisa_user_script %}", request)
    assert "settings.AINISA" in str(caught.value) or "AINISA[" in str(caught.value)


def test_missing_request_in_the_context_says_what_to_add() -> None:
    with ainisa(), pytest.raises(ImproperlyConfigured, match="context_processors.request"):
        _render("{% ainisa_user_script %}")


def test_ainisa_setting_must_be_a_dict() -> None:
    with override_settings(AINISA=["SECRET"]), pytest.raises(ImproperlyConfigured, match="dict"):
        _render("{% ainisa_widget_script %}")


def test_tags_work_without_an_ainisa_setting() -> None:
    with override_settings(AINISA=None):
        html = _render("{% ainisa_user_script user=None %}{% ainisa_widget_script %}")
    assert [e.tag for e in parse_html5(html)] == ["script", "script"]


def test_the_middleware_settings_check_accepts_every_template_key() -> None:
    from ainisa_middleware.django import conf
    from ainisa_middleware.django.templatetags.ainisa import TEMPLATE_KEYS

    with ainisa(**dict.fromkeys(TEMPLATE_KEYS)):
        assert [problem.id for problem in conf.problems()] == []


def test_token_mode_renders_a_user_token_the_middleware_verifies(ada: User) -> None:
    with ainisa(PROOF="token", WIDGET_ID="wid_tok", TOKEN_TTL=120):
        client = Client()
        client.force_login(ada)
        user_part, widget_part = _snippet(client.get("/page").content.decode())
        sent = user_object_from(user_part)
        assert set(sent) == {"user_id", "user_token", "firstname", "lastname", "email"}
        assert "user_hash" not in sent and SECRET not in user_part
        (widget,) = parse_html5(widget_part)
        body = {"widget_id": widget.attrs["data-widget-id"], "user": sent, "message": "hi"}
        answer = client.post("/chat", json.dumps(body), content_type="application/json").json()
        assert answer["user"]["status"] == "verified"
        assert answer["user"]["firstname"] == "Ada </script><!--"
        assert answer["json"]["user"]["firstname"] == "Ada </script><!--"  # the signed copy
        # The same page rendered for another widget: the token is bound to wid_pro then.
        other = _render("{% ainisa_user_script user=u widget_id='wid_pro' %}", u=ada)
        token = user_object_from(other)["user_token"]
        body = {"widget_id": "wid_tok", "user": {"user_token": token}}
        answer = client.post("/chat", json.dumps(body), content_type="application/json").json()
        assert answer["user"]["status"] == "invalid_token"


def test_token_mode_settings_are_checked() -> None:
    with ainisa(PROOF="jwt"), pytest.raises(ImproperlyConfigured, match="proof must be"):
        _render("{% ainisa_widget_script %}")
    with ainisa(PROOF="token", TOKEN_TTL=0), pytest.raises(ImproperlyConfigured, match="token_ttl"):
        _render("{% ainisa_widget_script %}")
