"""The keywords every adapter takes, checked once at construction.

Every problem is collected before raising, so one start shows every mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeGuard, get_args

from .errors import ConfigurationError
from .paths import PathMatcher
from .resolvers import AnyResolver, check_resolver

if TYPE_CHECKING:
    from .decisions import DecisionHook

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_FORM_FIELDS",
    "DEFAULT_MAX_UPLOAD_SIZE",
    "DEFAULT_RESOLVER_TIMEOUT",
    "MODES",
    "MiddlewareConfig",
    "Mode",
    "collect_problems",
]

#: 1 MiB: a chat message with its user object is a few hundred bytes.
DEFAULT_MAX_BODY_SIZE = 1_048_576
#: Fields a form body or query string may hold, as werkzeug's ``max_form_parts``
#: and Django's ``DATA_UPLOAD_MAX_NUMBER_FIELDS``: a chat request has a handful.
DEFAULT_MAX_FORM_FIELDS = 1000
#: 25 MiB: a multipart body (a visitor's screenshot or file) whole, file parts included.
DEFAULT_MAX_UPLOAD_SIZE = 25 * 1024 * 1024
#: Seconds to wait for a resolver before answering 503.
DEFAULT_RESOLVER_TIMEOUT = 5.0
#: ``strip``: unverified visitors continue anonymous; ``enforce``: they get 401.
Mode = Literal["strip", "enforce"]
MODES: tuple[Mode, ...] = get_args(Mode)


@dataclass(frozen=True, slots=True)
class MiddlewareConfig:
    """The validated settings of one middleware instance."""

    resolver: AnyResolver
    paths: tuple[str, ...]
    mode: Mode = "strip"
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    resolver_timeout: float | None = DEFAULT_RESOLVER_TIMEOUT
    max_form_fields: int = DEFAULT_MAX_FORM_FIELDS
    max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE
    #: called with a :class:`~ainisa_middleware.decisions.DecisionRecord` per decision
    on_decision: DecisionHook | None = None
    matcher: PathMatcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", PathMatcher(self.paths))

    @classmethod
    def build(
        cls,
        *,
        resolver: object,
        paths: object,
        mode: object = "strip",
        max_body_size: object = DEFAULT_MAX_BODY_SIZE,
        resolver_timeout: object = DEFAULT_RESOLVER_TIMEOUT,
        max_form_fields: object = DEFAULT_MAX_FORM_FIELDS,
        max_upload_size: object = DEFAULT_MAX_UPLOAD_SIZE,
        on_decision: object = None,
        names: dict[str, str] | None = None,
    ) -> MiddlewareConfig:
        """Validate the keywords; raise one :class:`ConfigurationError` naming every problem.

        ``names`` maps a keyword to the name the user wrote (Django's ``PATHS``).
        """
        problems = collect_problems(
            resolver=resolver,
            paths=paths,
            mode=mode,
            max_body_size=max_body_size,
            resolver_timeout=resolver_timeout,
            max_form_fields=max_form_fields,
            max_upload_size=max_upload_size,
            on_decision=on_decision,
            names=names,
        )
        if (
            problems
            or not _is_resolver(resolver)
            or not _is_paths(paths)
            or not _is_mode(mode)
            or not _is_count(max_body_size)
            or not _is_count(max_form_fields)
            or not _is_count(max_upload_size)
            or not _is_timeout(resolver_timeout)
            or not _is_hook(on_decision)
        ):
            raise ConfigurationError(
                "ainisa-middleware is not configured correctly:\n- " + "\n- ".join(problems)
            )
        return cls(
            resolver=resolver,
            paths=PathMatcher(paths).prefixes,
            mode=mode,
            max_body_size=max_body_size,
            resolver_timeout=None if resolver_timeout is None else float(resolver_timeout),
            max_form_fields=max_form_fields,
            max_upload_size=max_upload_size,
            on_decision=on_decision,
        )

    def intercepts(self, path: str, root: str = "", *, preflight: bool = False) -> bool:
        """Whether a request is the middleware's to inspect.

        ``path`` is the decoded path, ``root`` the mount point (ASGI ``root_path``,
        WSGI ``SCRIPT_NAME``), ``preflight`` what :func:`~.paths.is_cors_preflight`
        said: only a genuine CORS preflight passes untouched.
        """
        return not preflight and self.matcher.matches(path, root)


# Each check is the validator's own rule, as a type guard: a value that passes
# is the type the configuration holds, with no cast.
def _is_resolver(value: object) -> TypeGuard[AnyResolver]:
    return value is not None and not check_resolver(value)


def _is_paths(value: object) -> TypeGuard[Sequence[str]]:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str | bytes)
        and bool(value)
        and all(isinstance(prefix, str) and prefix.startswith("/") for prefix in value)
    )


def _is_mode(value: object) -> TypeGuard[Mode]:
    return value in MODES


def _is_count(value: object) -> TypeGuard[int]:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def _is_timeout(value: object) -> TypeGuard[float | int | None]:
    return value is None or (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and value > 0
        and value != float("inf")
    )


def _is_hook(value: object) -> TypeGuard[DecisionHook | None]:
    return value is None or callable(value)


def collect_problems(
    *,
    resolver: object,
    paths: object,
    mode: object,
    max_body_size: object,
    resolver_timeout: object,
    max_form_fields: object = DEFAULT_MAX_FORM_FIELDS,
    max_upload_size: object = DEFAULT_MAX_UPLOAD_SIZE,
    on_decision: object = None,
    names: dict[str, str] | None = None,
) -> list[str]:
    """Every configuration problem as one sentence each; shared with Django's checks."""
    names = names or {}

    def name(key: str) -> str:
        return names.get(key, key)

    problems: list[str] = []
    if resolver is None:
        problems.append(
            f"{name('resolver')} is required: pass a resolver such as "
            "StaticResolver({widget_id: Business(...)})."
        )
    else:
        problems.extend(f"{name('resolver')}: {p}" for p in check_resolver(resolver))
    if isinstance(paths, str | bytes) or not isinstance(paths, Sequence):
        problems.append(
            f"{name('paths')} must be a list of path prefixes such as ['/chat'], not "
            f"{type(paths).__name__}."
        )
    elif not paths:
        problems.append(
            f"{name('paths')} is empty, so nothing would be verified; list the chat "
            "endpoints, e.g. ['/chat']."
        )
    else:
        for prefix in paths:
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                problems.append(
                    f"{name('paths')} entries must be strings starting with '/', such as "
                    f"'/chat'; got {prefix!r}."
                )
    if not _is_mode(mode):
        problems.append(f"{name('mode')} must be 'strip' or 'enforce', not {mode!r}.")
    if not _is_count(max_body_size):
        problems.append(
            f"{name('max_body_size')} must be a positive number of bytes (default "
            f"{DEFAULT_MAX_BODY_SIZE}), not {max_body_size!r}."
        )
    if not _is_count(max_form_fields):
        problems.append(
            f"{name('max_form_fields')} must be a positive number of fields (default "
            f"{DEFAULT_MAX_FORM_FIELDS}), not {max_form_fields!r}."
        )
    if not _is_count(max_upload_size):
        problems.append(
            f"{name('max_upload_size')} must be a positive number of bytes (default "
            f"{DEFAULT_MAX_UPLOAD_SIZE}, 25 MiB), not {max_upload_size!r}."
        )
    if not _is_timeout(resolver_timeout):
        problems.append(
            f"{name('resolver_timeout')} must be a positive number of seconds, or None "
            f"for no limit; not {resolver_timeout!r}."
        )
    if not _is_hook(on_decision):
        problems.append(
            f"{name('on_decision')} must be a callable taking a DecisionRecord, or None; "
            f"not a {type(on_decision).__name__}."
        )
    return problems
