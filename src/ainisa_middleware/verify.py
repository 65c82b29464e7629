"""The engine: a parsed request and its business in, a decision out.

Adapters call :meth:`Verifier.inspect`, resolve the business themselves (the
one step that may do I/O, sync or async by host), then :meth:`Verifier.decide`.
Each intercepted request produces exactly one log record on the
``ainisa_middleware`` logger, with the widget, the business, the status and the
secret that matched (by id or position), and never a secret, a hash or an email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .config import MiddlewareConfig
from .models import AinisaUser, Business, Status
from .request import BodyKind, ParsedRequest, Source, parse_request
from .rewrite import ALL_IDENTITY, HASH_ONLY, rewrite_flat, rewrite_json
from .signing import match_secret

__all__ = ["Decision", "Verifier", "logger"]

logger = logging.getLogger("ainisa_middleware")

_STRINGS_ONLY = ("user_hash", "firstname", "lastname", "email")


@dataclass(slots=True)
class Decision:
    """What to do with an intercepted request once its business is known.

    Adapters only read it. Not frozen: one is built per request, and a frozen
    dataclass costs more than twice as much to build.
    """

    #: the visitor to put on the request (``None`` when ``error`` is set)
    user: AinisaUser | None
    #: an error code to answer with instead of calling the app
    error: str | None = None
    #: the body the app must read instead of the original (``None``: unchanged)
    body: bytes | None = None
    #: the query string the app must read instead (``None``: unchanged)
    query: bytes | None = None


def _fields(raw: object, source: Source) -> dict[str, str] | None:
    """Normalise user data to strings; ``None`` when its types are wrong."""
    if source is not Source.JSON:
        assert isinstance(raw, dict)  # flat sources always hold str -> str
        return {k: v for k, v in raw.items() if v}
    if not isinstance(raw, dict):
        return None
    out: dict[str, str] = {}
    user_id = raw.get("user_id", "")
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        return None
    if user_id != "":
        out["user_id"] = str(user_id)
    for key in _STRINGS_ONLY:
        value = raw.get(key, "")
        if not isinstance(value, str):
            return None
        if value:
            out[key] = value
    return out


def _identity_status(
    parsed: ParsedRequest, business: Business
) -> tuple[Status, dict[str, str], int | None]:
    judged = _judge(parsed, business)
    if not business.identity_enabled:
        # Judged all the same and thrown away: a business without identity takes
        # as long as one with it, so response time does not reveal its plan.
        return Status.IDENTITY_DISABLED, {}, None
    return judged


def _judge(parsed: ParsedRequest, business: Business) -> tuple[Status, dict[str, str], int | None]:
    source = parsed.source
    if source is None:
        return Status.ANONYMOUS, {}, None
    json_body = parsed.json_body
    raw = json_body.get("user") if source is Source.JSON and json_body else parsed.raw_user
    fields = _fields(raw, source)
    # A field that reads one way here and another way in the app's parser
    # cannot be vouched for: treat it as malformed user data.
    if fields is None or parsed.user_ambiguous:
        return Status.MALFORMED_USER, {}, None
    user_id = fields.get("user_id")
    given = fields.get("user_hash")
    if not fields:
        return Status.ANONYMOUS, {}, None
    if user_id is None:
        return Status.MISSING_USER_ID, {}, None
    if given is None:
        return Status.MISSING_HASH, {}, None
    matched = match_secret(business.secrets, user_id, given)
    if matched is None:
        # Also the answer for a user id with no UTF-8 form (a lone surrogate).
        return Status.INVALID_HASH, {}, None
    return Status.VERIFIED, fields, matched


class Verifier:
    """The request-handling core shared by every adapter; holds no per-request state."""

    def __init__(self, config: MiddlewareConfig) -> None:
        self.config = config

    def inspect(
        self,
        *,
        content_type: str | None,
        widget_header: str | None,
        query_string: bytes,
        body: bytes,
    ) -> ParsedRequest:
        """Parse a request; raises :class:`RequestError` (log it with :meth:`log_error`)."""
        return parse_request(
            content_type=content_type,
            widget_header=widget_header,
            query_string=query_string,
            body=body,
            max_body_size=self.config.max_body_size,
            max_form_fields=self.config.max_form_fields,
        )

    def decide(self, parsed: ParsedRequest, business: Business) -> Decision:
        """Decide the status, whether to reject, and what the app may read."""
        status, fields, matched = _identity_status(parsed, business)
        verified = status is Status.VERIFIED
        error: str | None = None
        if status is not Status.IDENTITY_DISABLED:
            if self.config.mode == "enforce" and parsed.source is not None and not verified:
                error = "identity_verification_failed"
            elif business.require_identity and not verified:
                error = "identity_required"
        level = logging.INFO if error is None else logging.WARNING
        if logger.isEnabledFor(level):  # checked here: most processes log no INFO
            self._log(level, parsed.widget_id, business, status, error, matched)
        if error is not None:
            return Decision(user=None, error=error)

        source = parsed.source if verified else None
        body: bytes | None = None
        if parsed.kind is BodyKind.JSON:
            assert parsed.json_body is not None
            body = rewrite_json(parsed.json_body, keep_user=source is Source.JSON)
        elif parsed.kind is BodyKind.FORM:
            assert parsed.form is not None
            body = rewrite_flat(parsed.form, HASH_ONLY if source is Source.FORM else ALL_IDENTITY)
        query: bytes | None = None
        if parsed.query.identity:  # most query strings hold no identity field at all
            query = rewrite_flat(
                parsed.query, HASH_ONLY if source is Source.QUERY else ALL_IDENTITY
            )

        if verified:
            user = AinisaUser(
                widget_id=parsed.widget_id,
                business_id=business.id,
                status=status,
                user_id=fields["user_id"],
                firstname=fields.get("firstname"),
                lastname=fields.get("lastname"),
                email=fields.get("email"),
            )
        else:
            user = AinisaUser(widget_id=parsed.widget_id, business_id=business.id, status=status)
        return Decision(user=user, body=body, query=query)

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
