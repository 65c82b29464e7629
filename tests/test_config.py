"""MiddlewareConfig and collect_problems: every keyword checked, every problem named at once."""

from __future__ import annotations

import inspect
from typing import Any, get_args

import pytest

from ainisa_middleware import ConfigurationError
from ainisa_middleware.config import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_FORM_FIELDS,
    DEFAULT_MAX_UPLOAD_SIZE,
    DEFAULT_RESOLVER_TIMEOUT,
    MODES,
    MiddlewareConfig,
    Mode,
    collect_problems,
)

from .cases import RESOLVER

GOOD: dict[str, Any] = {
    "resolver": RESOLVER,
    "paths": ["/chat"],
    "mode": "strip",
    "max_body_size": DEFAULT_MAX_BODY_SIZE,
    "resolver_timeout": DEFAULT_RESOLVER_TIMEOUT,
    "max_form_fields": DEFAULT_MAX_FORM_FIELDS,
    "max_upload_size": DEFAULT_MAX_UPLOAD_SIZE,
    "on_decision": None,
}
KEYWORDS = list(GOOD)

RESOLVER_MISSING = (
    "resolver is required: pass a resolver such as StaticResolver({widget_id: Business(...)})."
)


def not_a_resolver(kind: str) -> str:
    return (
        f"resolver: resolver must have resolve(widget_id) or async aresolve(widget_id); got "
        f"{kind}. Use StaticResolver({{widget_id: Business(...)}}) or a store such as SQLResolver."
    )


def not_a_list(kind: str) -> str:
    return f"paths must be a list of path prefixes such as ['/chat'], not {kind}."


def bad_prefix(prefix: str) -> str:
    return f"paths entries must be strings starting with '/', such as '/chat'; got {prefix}."


PATHS_EMPTY = (
    "paths is empty, so nothing would be verified; list the chat endpoints, e.g. ['/chat']."
)


def bad_mode(value: str) -> str:
    return f"mode must be 'strip' or 'enforce', not {value}."


def bad_body_size(value: str) -> str:
    return f"max_body_size must be a positive number of bytes (default 1048576), not {value}."


def bad_form_fields(value: str) -> str:
    return f"max_form_fields must be a positive number of fields (default 1000), not {value}."


def bad_timeout(value: str) -> str:
    return (
        f"resolver_timeout must be a positive number of seconds, or None for no limit; not {value}."
    )


class _NoMethods:
    resolve = "not callable"


P = pytest.param

# Every message collect_problems can give, word for word.
PROBLEMS = [
    P({"resolver": None}, RESOLVER_MISSING, id="resolver-missing"),
    P({"resolver": object()}, not_a_resolver("object"), id="resolver-without-methods"),
    P({"resolver": _NoMethods()}, not_a_resolver("_NoMethods"), id="resolver-not-callable"),
    P({"paths": "/chat"}, not_a_list("str"), id="paths-a-string"),
    P({"paths": b"/chat"}, not_a_list("bytes"), id="paths-bytes"),
    P({"paths": None}, not_a_list("NoneType"), id="paths-none"),
    P({"paths": {"/chat"}}, not_a_list("set"), id="paths-a-set"),
    P({"paths": []}, PATHS_EMPTY, id="paths-empty"),
    P({"paths": ()}, PATHS_EMPTY, id="paths-empty-tuple"),
    P({"paths": ["chat"]}, bad_prefix("'chat'"), id="prefix-without-slash"),
    P({"paths": ["/chat", b"/x"]}, bad_prefix("b'/x'"), id="prefix-bytes"),
    P({"paths": [None]}, bad_prefix("None"), id="prefix-none"),
    P({"paths": [""]}, bad_prefix("''"), id="prefix-empty"),
    P({"mode": "strict"}, bad_mode("'strict'"), id="mode-unknown"),
    P({"mode": "STRIP"}, bad_mode("'STRIP'"), id="mode-upper-case"),
    P({"mode": None}, bad_mode("None"), id="mode-none"),
    P({"max_body_size": 0}, bad_body_size("0"), id="body-size-zero"),
    P({"max_body_size": -1}, bad_body_size("-1"), id="body-size-negative"),
    P({"max_body_size": True}, bad_body_size("True"), id="body-size-bool"),
    P({"max_body_size": 1.5}, bad_body_size("1.5"), id="body-size-float"),
    P({"max_body_size": "1024"}, bad_body_size("'1024'"), id="body-size-string"),
    P({"max_form_fields": 0}, bad_form_fields("0"), id="form-fields-zero"),
    P({"max_form_fields": 1.5}, bad_form_fields("1.5"), id="form-fields-float"),
    P({"max_form_fields": "1000"}, bad_form_fields("'1000'"), id="form-fields-string"),
    P({"max_form_fields": False}, bad_form_fields("False"), id="form-fields-bool"),
    P({"resolver_timeout": 0}, bad_timeout("0"), id="timeout-zero"),
    P({"resolver_timeout": -1.0}, bad_timeout("-1.0"), id="timeout-negative"),
    P({"resolver_timeout": "5"}, bad_timeout("'5'"), id="timeout-string"),
    P({"resolver_timeout": True}, bad_timeout("True"), id="timeout-bool"),
    P({"resolver_timeout": float("inf")}, bad_timeout("inf"), id="timeout-infinite"),
    P({"resolver_timeout": float("nan")}, bad_timeout("nan"), id="timeout-nan"),
]


@pytest.mark.parametrize(("change", "message"), PROBLEMS)
def test_each_problem_has_its_sentence(change: dict[str, Any], message: str) -> None:
    assert collect_problems(**{**GOOD, **change}) == [message]


@pytest.mark.parametrize(("change", "message"), PROBLEMS)
def test_build_raises_one_configuration_error_naming_it(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        MiddlewareConfig.build(**{**GOOD, **change})
    assert str(info.value) == f"ainisa-middleware is not configured correctly:\n- {message}"


def test_every_problem_is_collected_at_once_in_keyword_order() -> None:
    problems = collect_problems(
        resolver=None,
        paths="/chat",
        mode="x",
        max_body_size=-1,
        resolver_timeout=0,
        max_form_fields=0,
    )
    assert problems == [
        RESOLVER_MISSING,
        not_a_list("str"),
        bad_mode("'x'"),
        bad_body_size("-1"),
        bad_form_fields("0"),
        bad_timeout("0"),
    ]
    with pytest.raises(ConfigurationError) as info:
        MiddlewareConfig.build(
            resolver=None,
            paths="/chat",
            mode="x",
            max_body_size=-1,
            resolver_timeout=0,
            max_form_fields=0,
        )
    assert str(info.value).splitlines()[1:] == [f"- {problem}" for problem in problems]


def test_every_bad_prefix_is_named() -> None:
    assert collect_problems(**{**GOOD, "paths": ["chat", "/ok", "api"]}) == [
        bad_prefix("'chat'"),
        bad_prefix("'api'"),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"mode": "enforce"},
        {"max_body_size": 1},
        {"max_form_fields": 1},
        {"resolver_timeout": None},
        {"resolver_timeout": 0.001},
        {"resolver_timeout": 30},
        {"paths": ("/chat", "/api/chat")},
        {"paths": ["/"]},
        {"resolver": type("SyncOnly", (), {"resolve": lambda self, widget_id: None})()},
        {"resolver": type("AsyncOnly", (), {"aresolve": lambda self, widget_id: None})()},
    ],
    ids=lambda change: ",".join(change) or "defaults",
)
def test_valid_keywords_have_no_problems(change: dict[str, Any]) -> None:
    assert collect_problems(**{**GOOD, **change}) == []
    config = MiddlewareConfig.build(**{**GOOD, **change})
    for keyword, value in change.items():
        if keyword != "paths":
            assert getattr(config, keyword) == value


def test_defaults() -> None:
    config = MiddlewareConfig.build(resolver=RESOLVER, paths=["/chat"])
    assert config.mode == "strip"
    assert config.max_body_size == DEFAULT_MAX_BODY_SIZE == 1_048_576
    assert config.resolver_timeout == DEFAULT_RESOLVER_TIMEOUT == 5.0
    assert config.max_form_fields == DEFAULT_MAX_FORM_FIELDS == 1000
    assert config.resolver is RESOLVER


def test_timeout_is_held_as_a_float() -> None:
    config = MiddlewareConfig.build(resolver=RESOLVER, paths=["/chat"], resolver_timeout=3)
    assert config.resolver_timeout == 3.0
    assert isinstance(config.resolver_timeout, float)


@pytest.mark.parametrize(
    ("paths", "prefixes"),
    [
        (["/chat/"], ("/chat",)),
        (["/chat", "/chat/"], ("/chat",)),
        (("/chat",), ("/chat",)),
        (["//chat//x/"], ("/chat/x",)),
        (["/x/../chat"], ("/chat",)),
        (["/%2Fchat"], ("/chat",)),
        (["/"], ("/",)),
        (["/b", "/a", "/b/"], ("/b", "/a")),
    ],
)
def test_prefixes_are_normalised_once_into_a_tuple(
    paths: list[str], prefixes: tuple[str, ...]
) -> None:
    config = MiddlewareConfig.build(resolver=RESOLVER, paths=paths)
    assert config.paths == prefixes
    assert config.matcher.prefixes == prefixes


def test_the_configuration_is_frozen() -> None:
    config = MiddlewareConfig.build(resolver=RESOLVER, paths=["/chat"])
    with pytest.raises(AttributeError):
        config.mode = "enforce"  # type: ignore[misc]


def test_intercepts_segment_aware_prefixes_and_never_a_preflight() -> None:
    config = MiddlewareConfig.build(resolver=RESOLVER, paths=["/chat"])
    assert config.intercepts("/chat")
    assert config.intercepts("/chat/x")
    assert config.intercepts("/chat", "/api")
    assert not config.intercepts("/chatter")
    assert not config.intercepts("/chat", preflight=True)


def test_mode_is_the_two_words() -> None:
    assert MODES == get_args(Mode) == ("strip", "enforce")


def test_names_replace_every_keyword_in_the_messages() -> None:
    names = {keyword: f"AINISA[{keyword.upper()!r}]" for keyword in KEYWORDS}
    problems = collect_problems(
        resolver=object(),
        paths=["chat"],
        mode="x",
        max_body_size=0,
        resolver_timeout=0,
        max_form_fields=0,
        max_upload_size=-1,
        on_decision="not callable",
        names=names,
    )
    assert [problem.split(" ", 1)[0].rstrip(":") for problem in problems] == [
        "AINISA['RESOLVER']",
        "AINISA['PATHS']",
        "AINISA['MODE']",
        "AINISA['MAX_BODY_SIZE']",
        "AINISA['MAX_FORM_FIELDS']",
        "AINISA['MAX_UPLOAD_SIZE']",
        "AINISA['RESOLVER_TIMEOUT']",
        "AINISA['ON_DECISION']",
    ]
    assert collect_problems(**{**GOOD, "resolver": None}, names=names)[0].startswith(
        "AINISA['RESOLVER'] is required"
    )
    with pytest.raises(ConfigurationError, match=r"AINISA\['PATHS'\] is empty"):
        MiddlewareConfig.build(**{**GOOD, "paths": []}, names=names)


def test_djangos_setting_keys_are_the_keywords_upper_cased() -> None:
    from ainisa_middleware.django.conf import KEYS

    keywords = [
        name for name in inspect.signature(MiddlewareConfig.build).parameters if name != "names"
    ]
    assert sorted(keywords) == sorted(KEYWORDS)
    assert {keyword: keyword.upper() for keyword in keywords} == KEYS
