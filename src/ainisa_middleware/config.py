"""The keywords every adapter takes, checked once at construction.

Every problem is collected before raising, so one start shows every mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConfigurationError
from .resolvers import AnyResolver, check_resolver

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_RESOLVER_TIMEOUT",
    "MODES",
    "MiddlewareConfig",
]

#: 1 MiB: a chat message with its user object is a few hundred bytes.
DEFAULT_MAX_BODY_SIZE = 1_048_576
#: Seconds to wait for a resolver before answering 503.
DEFAULT_RESOLVER_TIMEOUT = 5.0
MODES = ("strip", "enforce")


def _normalise_prefix(prefix: str) -> str:
    return prefix.rstrip("/") or "/"


@dataclass(frozen=True, slots=True)
class MiddlewareConfig:
    """The validated settings of one middleware instance."""

    resolver: AnyResolver
    paths: tuple[str, ...]
    mode: str = "strip"
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    resolver_timeout: float | None = DEFAULT_RESOLVER_TIMEOUT

    @classmethod
    def build(
        cls,
        *,
        resolver: object,
        paths: object,
        mode: object = "strip",
        max_body_size: object = DEFAULT_MAX_BODY_SIZE,
        resolver_timeout: object = DEFAULT_RESOLVER_TIMEOUT,
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
            names=names,
        )
        if problems:
            raise ConfigurationError(
                "ainisa-middleware is not configured correctly:\n- " + "\n- ".join(problems)
            )
        prefixes = tuple(_normalise_prefix(p) for p in paths)  # type: ignore[attr-defined]
        return cls(
            resolver=resolver,  # type: ignore[arg-type]
            paths=prefixes,
            mode=mode,  # type: ignore[arg-type]
            max_body_size=max_body_size,  # type: ignore[arg-type]
            resolver_timeout=None if resolver_timeout is None else float(resolver_timeout),  # type: ignore[arg-type]
        )

    def intercepts(self, method: str, path: str) -> bool:
        """Whether a request is the middleware's to inspect (segment-aware prefixes)."""
        if method == "OPTIONS":
            return False
        for prefix in self.paths:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return True
        return False


def collect_problems(
    *,
    resolver: object,
    paths: object,
    mode: object,
    max_body_size: object,
    resolver_timeout: object,
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
    if mode not in MODES:
        problems.append(f"{name('mode')} must be 'strip' or 'enforce', not {mode!r}.")
    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 1:
        problems.append(
            f"{name('max_body_size')} must be a positive number of bytes (default "
            f"{DEFAULT_MAX_BODY_SIZE}), not {max_body_size!r}."
        )
    if resolver_timeout is not None and (
        isinstance(resolver_timeout, bool)
        or not isinstance(resolver_timeout, int | float)
        or not resolver_timeout > 0
        or resolver_timeout == float("inf")
    ):
        problems.append(
            f"{name('resolver_timeout')} must be a positive number of seconds, or None "
            f"for no limit; not {resolver_timeout!r}."
        )
    return problems
