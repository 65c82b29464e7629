"""The attachments table every host runs (CONTRACT.md section 6).

Each row is a ``multipart/form-data`` request and what must come of it. A host
suite builds an echo app that parses the body with the host's own form parser
(Starlette's ``request.form()``, werkzeug's ``request.form``/``files``, Django's
``request.POST``/``FILES``) and returns :func:`multipart_payload`; :func:`check`
then asserts that the app saw the file parts unchanged and no identity field
the middleware did not verify.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from ainisa_middleware import AinisaUser
from ainisa_middleware.errors import ERRORS

from .cases import ALL_HASHES, ALL_TOKENS, FOREIGN, GOOD, TOK, WH, user_dict

BOUNDARY = "ainisa-b0undary"
TYPE = f"multipart/form-data; boundary={BOUNDARY}"
#: an attachment whose bytes look like the start of a delimiter, again and again
PNG = b"\x89PNG\r\n\x1a\n" + b"\r\n--ainisa-b0und\r\n-" * 50 + bytes(range(256)) * 4


def part(
    name: str | bytes,
    value: str | bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    headers: tuple[bytes, ...] = (),
    disposition: bytes | None = None,
) -> bytes:
    """One part, delimiter included, as a browser writes it."""
    raw_name = name.encode() if isinstance(name, str) else name
    head = disposition or b'form-data; name="' + raw_name + b'"'
    if filename is not None:
        head += b'; filename="' + filename.encode() + b'"'
    lines = [b"--" + BOUNDARY.encode(), b"Content-Disposition: " + head]
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type.encode())
    lines.extend(headers)
    data = value.encode() if isinstance(value, str) else value
    return b"\r\n".join(lines) + b"\r\n\r\n" + data + b"\r\n"


def body(*parts: bytes, close: bool = True) -> bytes:
    return b"".join(parts) + (b"--" + BOUNDARY.encode() + b"--\r\n" if close else b"")


def attachment(name: str = "file", data: bytes = PNG, filename: str = "shot.png") -> bytes:
    return part(name, data, filename=filename, content_type="image/png")


@dataclass(frozen=True)
class MultipartCase:
    """One multipart request through the middleware and what the app must see."""

    body: bytes
    content_type: str = TYPE
    query: str = ""
    headers: tuple[tuple[str, str], ...] = WH
    mode: str = "strip"
    #: middleware keywords for this row (``max_body_size``, ``max_upload_size``...)
    options: dict[str, int] = field(default_factory=dict)
    status: int = 200
    error: str | None = None
    user_status: str | None = "anonymous"
    user_id: str | None = None
    #: every text field the app's parser finds, sorted
    fields: list[tuple[str, str]] = field(default_factory=list)
    #: every file part the app's parser finds: (name, file name, content), sorted
    files: list[tuple[str, str, bytes]] = field(default_factory=list)
    app_query: str | None = None


def file_entry(name: str, filename: str, data: bytes) -> list[Any]:
    return [name, filename, hashlib.sha256(data).hexdigest(), len(data)]


def multipart_payload(
    fields: list[tuple[str, str]],
    files: list[tuple[str, str, bytes]],
    query: str,
    user: AinisaUser | None,
) -> dict[str, Any]:
    """What an echo app returns: the form as its own parser read it."""
    return {
        "fields": sorted([name, value] for name, value in fields),
        "files": sorted(file_entry(*entry) for entry in files),
        "query": query,
        "user": user_dict(user),
    }


def check(case: MultipartCase, status: int, payload: Any) -> None:
    """Assert that a response to ``case`` is what the contract says."""
    assert status == case.status, payload
    if case.error is not None:
        assert payload == {"error": case.error, "detail": ERRORS[case.error].detail}
        return
    assert payload["fields"] == sorted([n, v] for n, v in case.fields)
    assert payload["files"] == sorted(file_entry(*entry) for entry in case.files)
    if case.app_query is not None:
        assert payload["query"] == case.app_query
    user = payload["user"]
    assert user is not None and user["status"] == case.user_status
    assert user["user_id"] == case.user_id
    for secret_hash in ALL_HASHES:
        assert secret_hash not in repr(payload)
    for token in ALL_TOKENS:
        assert token.split(".")[2] not in repr(payload)


P = pytest.param
_FILE = ("file", "shot.png", PNG)
_MSG = part("message", "hello, see the screenshot")
_MSG_SEEN = ("message", "hello, see the screenshot")
_ID = part("user_id", "42")
_UTF8 = "caf\xe9 \u2713"
_RFC2231 = b"form-data; name=\"x\"; name*=UTF-8''user_id"
_TWICE = b"Content-Disposition: form-data; name=user_id"
_HASH = part("user_hash", GOOD)

# fmt: off
MULTIPART_ROWS = [
    # --- attachments pass, identity parts are judged -----------------------------------
    P(MultipartCase(body(_MSG, attachment()), fields=[_MSG_SEEN], files=[_FILE]),
      id="anonymous-message-and-file"),
    P(MultipartCase(body(_MSG, _ID, _HASH, part("email", "ada@example.com"), attachment()),
                    user_status="verified", user_id="42",
                    fields=[_MSG_SEEN, ("user_id", "42"), ("email", "ada@example.com")],
                    files=[_FILE]), id="verified-parts-kept-hash-removed"),
    P(MultipartCase(body(_ID, part("user_hash", FOREIGN), part("firstname", "Eve"), attachment()),
                    user_status="invalid_hash", files=[_FILE]),
      id="invalid-hash-strips-every-identity-part"),
    P(MultipartCase(body(_MSG, part("user_token", TOK), attachment()),
                    headers=(("X-Ainisa-Widget-Id", "w_tok"),), user_status="verified",
                    user_id="42", fields=[_MSG_SEEN], files=[_FILE]),
      id="verified-token-part-removed"),
    P(MultipartCase(body(_MSG, part("user_token", TOK[:-2] + "AA"), part("user_id", "7"),
                         attachment()),
                    headers=(("X-Ainisa-Widget-Id", "w_tok"),), user_status="invalid_token",
                    fields=[_MSG_SEEN], files=[_FILE]),
      id="forged-token-strips-every-identity-part"),
    P(MultipartCase(body(_ID, part("user_hash", FOREIGN), attachment()), mode="enforce",
                    status=401, error="identity_verification_failed"), id="invalid-hash-enforce"),
    P(MultipartCase(body(_ID, attachment()), user_status="missing_hash", files=[_FILE]),
      id="missing-hash"),
    P(MultipartCase(body(_MSG), headers=(("X-Ainisa-Widget-Id", "w_req"),), status=401,
                    error="identity_required"), id="require-identity-anonymous"),
    P(MultipartCase(body(_ID, _HASH, _MSG), headers=(("X-Ainisa-Widget-Id", "w_free"),),
                    user_status="identity_disabled", fields=[_MSG_SEEN]),
      id="identity-disabled-strips"),
    P(MultipartCase(body(_MSG, attachment()), query=f"user_id=42&user_hash={GOOD}&x=1",
                    user_status="verified", user_id="42", fields=[_MSG_SEEN], files=[_FILE],
                    app_query="user_id=42&x=1"), id="identity-in-query-beside-a-file"),
    P(MultipartCase(body(part("widget_id", "w_pro"), _MSG), headers=(),
                    fields=[("widget_id", "w_pro"), _MSG_SEEN]), id="widget-id-part"),
    P(MultipartCase(body(part("widget_id", "w_free"), _MSG), status=400,
                    error="conflicting_widget_id"), id="widget-id-part-conflicts-with-header"),
    P(MultipartCase(body(_MSG), headers=(("X-Ainisa-Widget-Id", "w_nope"),), status=404,
                    error="unknown_widget"), id="unknown-widget"),
    # A "--boundary" line that python-multipart does not take for a delimiter (it
    # ends in CR and a control byte, not CRLF) but werkzeug does: written out whole
    # it would give the app an unverified user_id part. The delimiter inside a part
    # is refused whatever follows it.
    P(MultipartCase(body(part("message", "hi\r\n--" + BOUNDARY + "\r\x01\n"
                                         'content-disposition: form-data; name="user_id"'
                                         "\r\n\r\n42"), attachment()),
                    status=400, error="malformed_body"),
      id="delimiter-inside-a-part"),
    P(MultipartCase(body(part("message", "see --" + BOUNDARY + " inline")), status=400,
                    error="malformed_body"), id="delimiter-mid-line-inside-a-part"),
    P(MultipartCase(body(_MSG, part("file", b"x" * 70_000 + b"--" + BOUNDARY.encode(),
                                    filename="a.bin")), status=400, error="malformed_body"),
      id="delimiter-inside-a-large-file"),
    # Names and file names are UTF-8 (browsers send them so): another byte makes
    # werkzeug skip the whole body, the verified identity with it.
    P(MultipartCase(body(part(b"\x94message", "hi"), _ID, _HASH), status=400,
                    error="malformed_body"), id="name-not-utf8"),
    P(MultipartCase(body(_MSG, part("file", PNG, disposition=b'form-data; name="file"; '
                                    b'filename="caf\xe9.png"')),
                    status=400, error="malformed_body"), id="file-name-not-utf8"),
    P(MultipartCase(body(_MSG, part("file", PNG, filename="a.png",
                                    headers=(b"Content-Type: image/\xafpng",)),
                         _ID, _HASH), status=400, error="malformed_body"),
      id="part-header-not-utf8"),
    P(MultipartCase(body(), fields=[]), id="no-parts"),
    P(MultipartCase(b"", fields=[]), id="empty-body"),
    # An empty body is no body, whatever its content type says.
    P(MultipartCase(b"", content_type=TYPE + "; charset=utf-7"), id="empty-body-in-utf-7"),
    P(MultipartCase(body(_MSG) + b"epilogue after the close", fields=[_MSG_SEEN]),
      id="epilogue-dropped"),
    P(MultipartCase(body(part("message", _UTF8)), fields=[("message", _UTF8)]),
      id="utf-8-text-part"),
    # --- the form rules, written once in the core ---------------------------------------
    P(MultipartCase(body(_ID, part("user_id", "43"), _HASH), status=400,
                    error="malformed_request"), id="duplicate-identity-parts"),
    P(MultipartCase(body(_ID, _HASH), query="email=eve@example.com", status=400,
                    error="conflicting_user_data"), id="identity-in-parts-and-query"),
    # --- hostile bodies ---------------------------------------------------------------
    P(MultipartCase(body(attachment("user_id")), status=400, error="malformed_body"),
      id="identity-in-a-file-part"),
    P(MultipartCase(body(part("user_id", b"4\xff2"), _HASH), status=400, error="malformed_body"),
      id="identity-part-not-utf-8"),
    P(MultipartCase(body(part("user_id", "42", content_type="text/plain; charset=utf-7"),
                         _HASH), status=400, error="malformed_body"),
      id="identity-part-in-another-charset"),
    P(MultipartCase(body(part("user_id", "NDI=", headers=(b"Content-Transfer-Encoding: base64",)),
                         _HASH), status=400, error="malformed_body"),
      id="identity-part-transfer-encoded"),
    P(MultipartCase(body(part("x", "1", disposition=_RFC2231)),
                    fields=[("x", "1")]), id="rfc2231-name-is-not-read"),
    P(MultipartCase(body(part("x", "1", disposition=b'form-data; name="a\\"b"')), status=400,
                    error="malformed_body"), id="quote-in-a-name"),
    P(MultipartCase(body(part("user_id ", "42"), part("\x00email", "e@x")), status=400,
                    error="malformed_body"), id="identity-name-with-padding"),
    P(MultipartCase(body(part("x", "1", disposition=b"form-data")), status=400,
                    error="malformed_body"), id="part-without-a-name"),
    P(MultipartCase(body(part("x", "1", headers=(_TWICE,))),
                    status=400, error="malformed_body"), id="two-dispositions"),
    P(MultipartCase(body(_MSG, close=False), status=400, error="malformed_body"),
      id="truncated-before-the-close"),
    P(MultipartCase(body(_MSG, attachment())[:-300], status=400, error="malformed_body"),
      id="truncated-inside-a-file"),
    P(MultipartCase(b"preamble\r\n" + body(_MSG), status=400, error="malformed_body"),
      id="preamble"),
    P(MultipartCase(body(_MSG), content_type="multipart/form-data", status=400,
                    error="malformed_body"), id="missing-boundary"),
    P(MultipartCase(body(_MSG), content_type="multipart/form-data; boundary=" + "b" * 71,
                    status=400, error="malformed_body"), id="boundary-too-long"),
    P(MultipartCase(body(_MSG), content_type=TYPE + "; charset=utf-7", status=415,
                    error="unsupported_media_type"), id="charset-utf-7"),
    P(MultipartCase(body(_MSG), content_type=f"multipart/mixed; boundary={BOUNDARY}", status=415,
                    error="unsupported_media_type"), id="multipart-mixed"),
    P(MultipartCase(body(part("x", "1", headers=(b"X-Pad: " + b"a" * 9000,))), status=400,
                    error="malformed_body"), id="huge-part-headers"),
    P(MultipartCase(body(*[part(f"f{i}", "") for i in range(11)]), options={"max_form_fields": 10},
                    status=400, error="malformed_body"), id="too-many-parts"),
    P(MultipartCase(body(*[part(f"f{i}", "") for i in range(10)]), options={"max_form_fields": 10},
                    fields=[(f"f{i}", "") for i in range(10)]), id="as-many-parts-as-allowed"),
    # --- limits -----------------------------------------------------------------------
    P(MultipartCase(body(part("message", "x" * 5000)), options={"max_body_size": 4096},
                    status=413, error="body_too_large"), id="text-part-over-max-body-size"),
    P(MultipartCase(body(_MSG, attachment(data=PNG * 20)), options={"max_body_size": 4096},
                    fields=[_MSG_SEEN], files=[("file", "shot.png", PNG * 20)]),
      id="file-part-over-max-body-size-passes"),
    P(MultipartCase(body(attachment(data=b"x" * 70_000)), options={"max_upload_size": 65_536},
                    status=413, error="body_too_large"), id="body-over-max-upload-size"),
]
# fmt: on
