"""The engine: a request in, a decision out, in three steps every adapter calls.

:meth:`Verifier.inspect` parses the request (no I/O); :meth:`Verifier.peek`,
:meth:`Verifier.lookup` or :meth:`Verifier.alookup` find its business, the one
step that may do I/O, through the bridge that suits the host (a worker thread
for a sync resolver on an event loop, the timeout, never failing open);
:meth:`Verifier.decide` judges the identity and says what the app may read.
Each intercepted request produces exactly one log record on the
``ainisa_middleware`` logger, with the widget, the business, the status and the
secret that matched (by id or position), and never a secret, a hash or an email.
The same moments call the ``on_decision`` hook, when one is configured, with a
:class:`~ainisa_middleware.decisions.DecisionRecord` (see :mod:`.decisions`).
Records of rejected requests are warnings, at most :data:`WARNINGS_PER_INTERVAL`
per outcome every :data:`WARNING_INTERVAL` seconds; past that they are logged at
DEBUG and counted, and one warning gives the count: a flood of made-up widget
IDs writes a few lines, not one per request.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any, NamedTuple

from .config import MiddlewareConfig
from .decisions import DecisionRecord, Outcome, Transport, call_hook, resolver_time
from .models import AinisaUser, Business, Status, verified_user
from .request import BodyKind, ParsedRequest, Source, parse_request
from .resolvers import ASYNCIO, Runtime, _checked, async_caller, resolver_method, sync_caller
from .rewrite import ALL_IDENTITY, HASH_ONLY, rewrite_flat, rewrite_json
from .signing import match_secret
from .tokens import judge_token

__all__ = ["WARNINGS_PER_INTERVAL", "WARNING_INTERVAL", "Decision", "Verifier", "logger"]

logger = logging.getLogger("ainisa_middleware")

#: Rejected requests logged as warnings per outcome and interval; the rest go to DEBUG.
WARNINGS_PER_INTERVAL = 10
#: Seconds of that interval.
WARNING_INTERVAL = 10.0


class _Throttle:
    """The level of a rejected request's record: WARNING within the allowance, else DEBUG.

    Keyed by outcome (a short fixed set, whatever the requests carry), so a flood
    cannot grow it. The count of records sent to DEBUG is logged as one warning
    by the first rejection after the interval.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # outcome -> [start, count]
        self._lock = threading.Lock()

    def level(self, outcome: str) -> int:
        now = self._clock()
        with self._lock:
            window = self._windows.get(outcome)
            if window is not None and now - window[0] < WARNING_INTERVAL:
                window[1] += 1
                return logging.WARNING if window[1] <= WARNINGS_PER_INTERVAL else logging.DEBUG
            self._windows[outcome] = [now, 1]
        if window is not None and window[1] > WARNINGS_PER_INTERVAL:
            logger.warning(
                "ainisa: %d more requests with outcome=%s in %.0f s were logged at DEBUG "
                "only (at most %d warnings per %.0f s)",
                window[1] - WARNINGS_PER_INTERVAL,
                outcome,
                now - window[0],
                WARNINGS_PER_INTERVAL,
                WARNING_INTERVAL,
                # Not ainisa_outcome: a handler counting requests must not count this line.
                extra={"ainisa_suppressed": (outcome, int(window[1]) - WARNINGS_PER_INTERVAL)},
            )
        return logging.WARNING


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


_decision = _record = tuple.__new__
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
        #: the ``on_decision`` hook; ``None`` costs each request one attribute test
        self._on_decision = config.on_decision
        #: what the hook's records name as the transport (see :meth:`for_transport`)
        self.transport: Transport = "http"
        limit, fields = config.max_body_size, config.max_form_fields

        def inspect(
            content_type: str | None, widget_header: str | None, query_string: bytes, body: bytes
        ) -> ParsedRequest:
            # A closure, not functools.partial: a partial holding keywords merges
            # them into a new dict on every call, twice the cost of this frame.
            return parse_request(
                content_type,
                widget_header,
                query_string,
                body,
                max_body_size=limit,
                max_form_fields=fields,
            )

        self._throttle = _Throttle()
        #: :func:`~ainisa_middleware.request.parse_request` with this configuration's limits
        self.inspect = inspect

    def for_transport(self, transport: Transport) -> Verifier:
        """This verifier, its records naming ``transport``: a WebSocket guard's own.

        A shallow copy: the configuration, the resolver bridges and the parser
        are shared (a verifier holds no per-request state).
        """
        twin = copy.copy(self)
        twin.transport = transport
        return twin

    # -- the business ----------------------------------------------------------

    def peek(self, widget_id: str) -> Business | str | None:
        """The business, or the error code to answer, when known without I/O; else ``None``.

        A cache hit is answered here, on the event loop, with no coroutine or thread.
        """
        if self._peek is None:
            return None
        if self._on_decision is not None and resolver_time.get() is not None:
            resolver_time.set(None)  # answered from memory: no earlier request's time
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

    def find(self, widget_id: str) -> Business | str:
        """The business, or the error code to answer: from memory, else through the
        sync bridge (:meth:`peek`, then :meth:`lookup`). For sync hosts."""
        business = self.peek(widget_id)
        return self.lookup(widget_id) if business is None else business

    async def afind(self, widget_id: str) -> Business | str:
        """:meth:`find` for async hosts: a cache hit answers without leaving the loop."""
        business = self.peek(widget_id)
        return await self.alookup(widget_id) if business is None else business

    def lookup(self, widget_id: str) -> Business | str:
        """The business, or the error code to answer (logged here): for sync hosts."""
        start = perf_counter() if self._on_decision is not None else None
        try:
            result = _checked(self._call(widget_id), self._resolver)
        except Exception as exc:  # a failing or slow store: never fail open
            _timed(start)
            self.log_error("resolver_unavailable", widget_id, exc)
            return "resolver_unavailable"
        _timed(start)
        return self._found(widget_id, result)

    async def alookup(self, widget_id: str) -> Business | str:
        """The business, or the error code to answer (logged here): for async hosts.

        Bounded by ``resolver_timeout``; a sync resolver runs in a worker thread
        that a timeout abandons (Python cannot stop it) while the request gets 503.
        """
        start = perf_counter() if self._on_decision is not None else None
        try:
            async with self._deadline(self._timeout):
                result = _checked(await self._acall(widget_id), self._resolver)
        except Exception as exc:  # a failing or slow store: never fail open
            _timed(start)
            self.log_error("resolver_unavailable", widget_id, exc)
            return "resolver_unavailable"
        _timed(start)
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
            if error is not None:
                level = self._throttle.level(error)  # WARNING, or DEBUG past the allowance
            if level != logging.DEBUG or logger.isEnabledFor(level):
                self._log(level, parsed.widget_id, business, status, error, matched)
        if self._on_decision is not None:
            self._report(parsed, business, status, error, matched)
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
        """Log a request the middleware answered before reaching a decision (throttled)."""
        if self._on_decision is not None:
            self._report_error(code, widget_id)
        if not logger.isEnabledFor(logging.WARNING):  # then DEBUG is off too
            return
        level = self._throttle.level(code)
        if level != logging.DEBUG or logger.isEnabledFor(level):
            extra: dict[str, Any] = {
                "ainisa_widget_id": widget_id,
                "ainisa_business_id": None,
                "ainisa_status": None,
                "ainisa_outcome": code,
                "ainisa_secret": None,
            }
            cause = f" ({type(exc).__name__})" if exc is not None else ""
            logger.log(
                level, "ainisa: widget=%s outcome=%s%s", widget_id or "-", code, cause, extra=extra
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

    def _report(
        self,
        parsed: ParsedRequest,
        business: Business,
        status: Status,
        error: str | None,
        matched: int | None,
    ) -> None:
        outcome: Outcome
        if error is not None:
            outcome = "rejected"
        elif status is _VERIFIED or parsed.source is None:
            outcome = "passed"  # nothing unverified to remove
        else:
            outcome = "stripped"
        record = _record(
            DecisionRecord,
            (
                parsed.widget_id,
                business.id,
                status,
                outcome,
                error,
                self.transport,
                business.secret_label(matched) if matched is not None else None,
                resolver_time.get(),
            ),
        )
        call_hook(self._on_decision, record)  # type: ignore[arg-type]  # tested not None

    def _report_error(self, code: str, widget_id: str | None) -> None:
        # Only the resolver's own answers took resolver time; any other refusal came
        # before the resolver was asked (a value left by an earlier request is not ours).
        seconds = resolver_time.get() if code in _RESOLVER_CODES else None
        record = _record(
            DecisionRecord, (widget_id, None, None, "rejected", code, self.transport, None, seconds)
        )
        call_hook(self._on_decision, record)  # type: ignore[arg-type]  # tested not None


_RESOLVER_CODES = frozenset({"unknown_widget", "resolver_unavailable"})


def _timed(start: float | None) -> None:
    """Record the resolver's time for the hook (``start`` is ``None`` without one)."""
    if start is not None:
        resolver_time.set(perf_counter() - start)
