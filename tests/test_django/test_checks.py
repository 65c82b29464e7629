"""System checks: one id per problem, registered with the app, same text as startup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

import ainisa_middleware.django as package
from ainisa_middleware.django.checks import check_middleware_order, check_settings

GOOD: dict[str, Any] = {"RESOLVER": "tests.test_django.resolvers.resolver", "PATHS": ["/chat"]}
MIDDLEWARE_PATH = "ainisa_middleware.django.AinisaMiddleware"


def ids(found: list[checks.CheckMessage]) -> list[str]:
    return [message.id or "" for message in found]


def test_valid_settings_have_no_problems() -> None:
    assert check_settings() == []
    assert check_middleware_order() == []


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, ["ainisa.E001"]),
        (["RESOLVER"], ["ainisa.E002"]),
        ({**GOOD, "PATH": ["/chat"]}, ["ainisa.E003"]),
        ({**GOOD, "RESOLVER": None}, ["ainisa.E004"]),
        ({**GOOD, "RESOLVER": object()}, ["ainisa.E004"]),
        ({**GOOD, "RESOLVER": "tests.test_django.resolvers.missing"}, ["ainisa.E005"]),
        ({**GOOD, "RESOLVER": "no_such_module.resolver"}, ["ainisa.E005"]),
        ({**GOOD, "RESOLVER": "tests.test_django.resolvers.NeedsArguments"}, ["ainisa.E005"]),
        ({**GOOD, "PATHS": "/chat"}, ["ainisa.E006"]),
        ({**GOOD, "PATHS": []}, ["ainisa.E006"]),
        ({**GOOD, "PATHS": ["chat"]}, ["ainisa.E006"]),
        ({**GOOD, "MODE": "block"}, ["ainisa.E007"]),
        ({**GOOD, "MAX_BODY_SIZE": 0}, ["ainisa.E008"]),
        ({**GOOD, "RESOLVER_TIMEOUT": -1}, ["ainisa.E009"]),
        ({**GOOD, "ROTATION_GRACE": "7d"}, ["ainisa.E010"]),
        ({**GOOD, "MAX_FORM_FIELDS": 0}, ["ainisa.E011"]),
        ({**GOOD, "MAX_FORM_FIELDS": "1000"}, ["ainisa.E011"]),
        (
            {"RESOLVER": None, "PATHS": None, "MODE": 1, "MAX_BODY_SIZE": True},
            ["ainisa.E004", "ainisa.E006", "ainisa.E007", "ainisa.E008"],
        ),
    ],
)
def test_each_problem_has_its_own_id(setting: object, expected: list[str]) -> None:
    with override_settings(AINISA=setting):
        found = check_settings()
    assert ids(found) == expected
    for message in found:
        assert isinstance(message, checks.Error)
        assert message.hint


def test_error_text_names_the_key_and_what_to_write() -> None:
    with override_settings(AINISA={**GOOD, "RESOLVER": "no_such_module.resolver"}):
        (error,) = check_settings()
    assert "AINISA['RESOLVER'] = 'no_such_module.resolver' cannot be imported" in error.msg
    assert "ainisa_middleware.django.ModelResolver" in (error.hint or "")


def test_valid_grace_and_class_path_resolvers_pass() -> None:
    from datetime import timedelta

    for grace in (timedelta(days=1), 3600, 0):
        with override_settings(
            AINISA={
                **GOOD,
                "RESOLVER": "ainisa_middleware.django.ModelResolver",
                "ROTATION_GRACE": grace,
            }
        ):
            assert check_settings() == []


def test_no_middleware_and_no_setting_is_only_a_warning() -> None:
    with override_settings(MIDDLEWARE=[], AINISA=None):
        assert check_settings() == []
        assert ids(check_middleware_order()) == ["ainisa.W002"]


def test_template_tag_keys_alone_need_no_middleware_keys() -> None:
    sender_only = {"SECRET": "s", "WIDGET_ID": "wid_1"}
    with override_settings(MIDDLEWARE=[], AINISA=sender_only):
        assert check_settings() == []
    with override_settings(MIDDLEWARE=[], AINISA={**sender_only, "PATH": ["/chat"]}):
        assert ids(check_settings()) == ["ainisa.E003"]
    with override_settings(MIDDLEWARE=[], AINISA={**sender_only, "ROTATION_GRACE": -1}):
        assert ids(check_settings()) == ["ainisa.E010"]
    with override_settings(MIDDLEWARE=[], AINISA=sender_only):
        assert ids(check_middleware_order()) == ["ainisa.W002"]
    # With the middleware installed, its keys are required.
    with override_settings(AINISA=sender_only):
        assert ids(check_settings()) == ["ainisa.E004", "ainisa.E006"]


def test_setting_is_checked_even_without_the_middleware() -> None:
    with override_settings(MIDDLEWARE=[], AINISA={**GOOD, "MODE": "x"}):
        assert ids(check_settings()) == ["ainisa.E007"]


def test_cors_middleware_below_ours_is_a_warning() -> None:
    below = [MIDDLEWARE_PATH, "corsheaders.middleware.CorsMiddleware"]
    above = ["corsheaders.middleware.CorsMiddleware", MIDDLEWARE_PATH]
    with override_settings(MIDDLEWARE=below):
        assert ids(check_middleware_order()) == ["ainisa.W001"]
    with override_settings(MIDDLEWARE=above):
        assert check_middleware_order() == []


def test_checks_are_registered_under_security_and_fail_manage_py_check() -> None:
    registered = checks.registry.registry.get_checks()
    assert check_settings in registered
    assert check_middleware_order in registered
    assert "security" in check_settings.tags  # type: ignore[attr-defined]
    with override_settings(AINISA={**GOOD, "MODE": "x"}), pytest.raises(SystemCheckError) as info:
        call_command("check", tags=["security"])
    assert "ainisa.E007" in str(info.value)


def test_check_ids_are_never_reused() -> None:
    """Each id literal appears once in the sources: one id, one problem."""
    folder = Path(package.__file__).parent
    source = "".join(path.read_text() for path in sorted(folder.glob("*.py")))
    found = re.findall(r'"(ainisa\.[EW]\d{3})"', source)
    assert found, "no check ids found"
    assert len(found) == len(set(found)), sorted(found)
