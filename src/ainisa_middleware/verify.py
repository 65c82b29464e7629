"""The engine: a request in, a decision out, in three steps every adapter calls.

:meth:`Verifier.inspect` parses the request (no I/O); :meth:`Verifier.peek`,
:meth:`Verifier.lookup` or :meth:`Verifier.alookup` find its business, the one
step that may do I/O, through the bridge that suits the host (a worker thread
for a sync resolver on an event loop, the timeout, never failing open);
:meth:`Verifier.decide` judges the identity and says what the app may read.
Each intercepted request produces exactly one log record on the
``ainisa_middleware`` logger, with the widget, the business, the status and the
secret that matched (by id or position), and never a secret, a hash or an email.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, NamedTuple

from .config import MiddlewareConfig
from .models import AinisaUser, Business, Status, verified_user
from .request import BodyKind, ParsedRequest, Source, parse_request
from .resolvers import ASYNCIO, Runtime, _checked, async_caller, resolver_method, sync_caller
from .rewrite import ALL_IDENTITY, HASH_ONLY, rewrite_flat, rewrite_json
from .signing import match_secret
from .tokens import judge_token

__all__ = ["Decision", "Verifier", "logger"]

logger = logging.getLogger("ainisa_middleware")


class Decision(NamedTuple):
    """What to do with an intercepted request once its business is known.

    Adapters only read it. A named tuple: one is built per request, and a tuple
    is built in C, where a dataclass runs its ``__init__`` in Python.
    """

    #: the visitor to put on the request (``None`` when ``error`` is set)
    user: AinisaUser | None
    #: an error code to answer with instead of calling the app
    error: str | None = None
    #: the body the app must read instead of the original (``None``: unchanged)
    body: bytes | None = None
    #: the query string the app must read instead (``None``: unchanged)
    query: bytes | None = None


_decision = tuple.__new__
_JSON, _FORM, _QUERY = Source.JSON, Source.FORM, Source.QUERY
_JSON_BODY, _FORM_BODY = BodyKind.JSON, BodyKind.FORM
_VERIFIED, _DISABLED = Status.VERIFIED, Status.IDENTITY_DISABLED
_NO_FIELDS: dict[str, str] = {}


def _judge(parsed: ParsedRequest, business: Business) -> tuple[Status, dict[str, str], int | None]:
    """The identity's status, its fields as strings when verified, the secret that matched."""
    source = parsed.source
    if source is None:
        return Status.ANONYMOUS, _NO_FIELDS, None
    fields: dict[str, str] = {}
    if source is _JSON:
        raw = parsed.json_body["user"]  # type: ignore[index]  # a JSON source has a body
        if type(raw) is not dict:
            return Status.MALFORMED_USER, _NO_FIELDS, None
        # Loops, not comprehensions: no extra frame on every request.
        for key in _USER_KEYS:
            value = raw.get(key, "")
            if type(value) is not str:
                if key != "user_id" or type(value) is not int:
                    return Status.MALFORMED_USER, _NO_FIELDS, None  # bool, float, None ...
                value = str(value)
            if value:
                fields[key] = value
    else:
        # A flat source holds str -> str. A field that reads one way here and
        # another way in the app's parser cannot be vouched for: malformed.
        if parsed.user_ambiguous:
            return Status.MALFORMED_USER, _NO_FIELDS, None
        for key, value in (parsed.form if source is _FORM else parsed.query).identity.items():  # type: ignore[union-attr]
            if value:
                fields[key] = value
    token = fields.get("user_token")
    if token is not None:
        if "user_hash" in fields:  # two proofs in one source: which one would the app trust?
            return Status.MALFORMED_USER, _NO_FIELDS, None
        return judge_token(parsed, business, fields, token)
    user_id = fields.get("user_id")
    if user_id is None:
        return (Status.MISSING_USER_ID if fields else Status.ANONYMOUS), _NO_FIELDS, None
    given = fields.get("user_hash")
    if given is None:
        return Status.MISSING_HASH, _NO_FIELDS, None
    matched = match_secret(business.secrets, user_id, given)
    if matched is None or _HASH not in business.proofs:
        # Also the answer for a user id with no UTF-8 form (a lone surrogate).
        return Status.INVALID_HASH, _NO_FIELDS, None
    return Status.VERIFIED, fields, matched


_USER_KEYS = ("user_id", "user_hash", "firstname", "lastname", "email", "user_token")
_HASH = "hash"


class Verifier:
    """The request-handling core shared by every adapter; holds no per-request state.

    ``inspect(content_type, widget_header, query_string, body)`` parses a
    request or raises :class:`~ainisa_middleware.errors.RequestError` (log it
    with :meth:`log_error`).
    """

    def __init__(self, config: MiddlewareConfig, runtime: Runtime = ASYNCIO) -> None:
        self.config = config
        self._enforce = config.mode == "enforce"
        resolver = config.resolver
        self._resolver = resolver
        self._timeout = config.resolver_timeout
        self._peek = resolver_method(resolver, "peek")
        self._call = sync_caller(resolver, config.resolver_timeout, runtime)
        self._acall = async_caller(resolver, runtime)
        self._deadline = runtime.deadline
        #: :func:`~ainisa_middleware.request.parse_request` with this configuration's limits
        self.inspect = partial(
            parse_request,
            max_body_size=config.max_body_size,
            max_form_fields=config.max_form_fields,
        )

    # -- the business ----------------------------------------------------------

    def peek(self, widget_id: str) -> Business | str | None:
        """The business, or the error code to answer, when known without I/O; else ``None``.

        A cache hit is answered here, on the event loop, with no coroutine or thread.
        """
        if self._peek is None:
            return None
        try:  # a peek that fails is a resolver that fails: never a 500, never a pass
            found, business = self._peek(widget_id)
            if not found:
                return None
            if business is not None and not isinstance(business, Business):
                _checked(business, self._resolver)  # raises, naming the resolver
        except Exception as exc:
            self.log_error("resolver_unavailable", widget_id, exc)
            return "resolver_unavailable"
        if business is None:
            self.log_error("unknown_widget", widget_id)
            return "unknown_widget"
        return business  # type: ignore[no-any-return]  # checked above to be a Business

    def lookup(self, widget_id: str) -> Business | str:
        """The business, or the error code to answer (logged here): for sync hosts."""
        try:
            result = _checked(self._call(widget_id), self._resolver)
        except Exception as exc:  # a failing or slow store: never fail open
            self.log_error("resolver_unavailable", widget_id, exc)
            return "resolver_unavailable"
        return self._found(widget_id, result)

    async def alookup(self, widget_id: str) -> Business | str:
        """The business, or the error code to answer (logged here): for async hosts.

        Bounded by ``resolver_timeout``; a sync resolver runs in a worker thread
        that a timeout abandons (Python cannot stop it) while the request gets 503.
        """
        try:
            async with self._deadline(self._timeout):
                result = _checked(await self._acall(widget_id), self._resolver)
        except Exception as exc:  # a failing or slow store: never fail open
            self.log_error("resolver_unavailable", widget_id, exc)
            return "resolver_unavailable"
        return self._found(widget_id, result)

    def _found(self, widget_id: str, business: Business | None) -> Business | str:
        if business is None:
            self.log_error("unknown_widget", widget_id)
            return "unknown_widget"
        return business

    # -- the decision -----------------------------------------------------------

    def decide(self, parsed: ParsedRequest, business: Business) -> Decision:
        """Decide the status, whether to reject, and what the app may read."""
        status, fields, matched = _judge(parsed, business)
        error: str | None = None
        if not business.identity_enabled:
            # Judged all the same and thrown away: a business without identity takes
            # as long as one with it, so response time does not reveal its plan.
            status, fields, matched = _DISABLED, _NO_FIELDS, None
        elif status is not _VERIFIED:
            if self._enforce and parsed.source is not None:
                error = "identity_verification_failed"
            elif business.require_identity:
                error = "identity_required"
        level = logging.INFO if error is None else logging.WARNING
        if logger.isEnabledFor(level):  # checked here: most processes log no INFO
            self._log(level, parsed.widget_id, business, status, error, matched)
        if error is not None:
            return _decision(Decision, (None, error, None, None))

        kept = parsed.source if status is _VERIFIED else None
        body: bytes | None = None
        kind = parsed.kind
        if kind is _JSON_BODY:
            body = rewrite_json(parsed.json_body, keep_user=kept is _JSON)  # type: ignore[arg-type]
        elif kind is _FORM_BODY:
            body = rewrite_flat(parsed.form, HASH_ONLY if kept is _FORM else ALL_IDENTITY)  # type: ignore[arg-type]
        query: bytes | None = None
        if parsed.query.identity:  # most query strings hold no identity field at all
            query = rewrite_flat(parsed.query, HASH_ONLY if kept is _QUERY else ALL_IDENTITY)
        if status is _VERIFIED:
            user = verified_user(parsed.widget_id, business.id, fields)
        else:
            user = AinisaUser(parsed.widget_id, business.id, status)
        return _decision(Decision, (user, None, body, query))

    def log_error(
        self, code: str, widget_id: str | None = None, exc: BaseException | None = None
    ) -> None:
        """Log a request the middleware answered before reaching a decision."""
        if logger.isEnabledFor(logging.WARNING):
            extra: dict[str, Any] = {
                "ainisa_widget_id": widget_id,
                "ainisa_business_id": None,
                "ainisa_status": None,
                "ainisa_outcome": code,
                "ainisa_secret": None,
            }
            cause = f" ({type(exc).__name__})" if exc is not None else ""
            logger.warning(
                "ainisa: widget=%s outcome=%s%s", widget_id or "-", code, cause, extra=extra
            )

    def _log(
        self,
        level: int,
        widget_id: str,
        business: Business,
        status: Status,
        error: str | None,
        matched: int | None,
    ) -> None:
        secret = business.secret_label(matched) if matched is not None else None
        outcome = error or "pass"
        logger.log(
            level,
            "ainisa: widget=%s business=%s status=%s outcome=%s secret=%s",
            widget_id,
            business.id,
            status.value,
            outcome,
            secret if secret is not None else "-",
            extra={
                "ainisa_widget_id": widget_id,
                "ainisa_business_id": business.id,
                "ainisa_status": status.value,
                "ainisa_outcome": outcome,
                "ainisa_secret": secret,
            },
        )
