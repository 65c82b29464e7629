"""``multipart/form-data`` on a chat path: attachments pass, identity parts are judged.

A visitor who attaches a screenshot sends a multipart body. Its text parts named
like identity fields (and ``widget_id``) are user data under the form-body rules;
its file parts are the visitor's files, passed on unchanged. The body is parsed
as it arrives by python-multipart (the parser Starlette uses) and written out
again, part by part, to a temporary file that keeps at most
:data:`SPOOL_MEMORY` bytes in memory, so a 25 MiB upload never sits whole in
memory. The identity parts are held aside (they are small: ``max_body_size``
bounds every non-file byte) and turned into the form body the core already
knows how to judge, :meth:`MultipartSpool.inspect`; once the engine has decided,
:meth:`MultipartSpool.body` appends the identity parts it kept and the closing
delimiter. The app gets a well-formed multipart body with the same boundary:
every part as sent but for its ``Content-Disposition``, which is written out
again from what was parsed, so the app's parser reads the very names and file
names the middleware read; the identity parts come last.

Needs the ``multipart`` extra (``pip install "ainisa-middleware[multipart]"``;
the framework extras include it). Without it a multipart body stays what it was
before: ``415 unsupported_media_type``.
"""

from __future__ import annotations

import re
import tempfile
from typing import IO, TYPE_CHECKING, Final
from urllib.parse import quote

from .errors import RequestError
from .request import USER_DATA_FIELDS, WIDGET_ID_FIELD, parse_flat

if TYPE_CHECKING:
    from .config import MiddlewareConfig
    from .request import ParsedRequest
    from .verify import Decision, Verifier

try:
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # pragma: no cover - exercised only without the extra
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = [
    "AVAILABLE",
    "MAX_PART_HEADER_SIZE",
    "READ_CHUNK",
    "SPOOL_MEMORY",
    "MultipartSpool",
    "multipart_boundary",
]

#: Bytes of a spooled body kept in memory; past it the spool is a file on disk.
SPOOL_MEMORY: Final = 1024 * 1024
#: The headers of one part, all lines together: a browser sends about 100 bytes.
MAX_PART_HEADER_SIZE: Final = 8 * 1024
#: How much a host reads, and the app is handed, at a time.
READ_CHUNK: Final = 64 * 1024

#: The parts that are user data: judged, never passed on unverified.
_WATCHED: Final = frozenset((*USER_DATA_FIELDS, WIDGET_ID_FIELD))
#: The form body the core judges (see :meth:`MultipartSpool.inspect`).
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
# RFC 2046 section 5.1.1: 1 to 70 characters, no space at the end.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_UTF8_NAMES: Final = frozenset({b"utf-8", b"utf8"})
# A name or file name holding a quote or a backslash is unescaped differently by
# Django, werkzeug and python-multipart: its parts could be read under two names.
_UNQUOTABLE: Final = re.compile(rb'["\\]')
_TEXT_TYPES: Final = frozenset({b"", b"text/plain"})
_PADDING: Final = b" \t\x00"


def multipart_boundary(content_type: str | None) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type; ``None`` for any other type.

    Raises ``unsupported_media_type`` for a charset other than UTF-8 (Django
    decodes field names and values with it: ``utf-7`` would turn a name the
    middleware never saw into ``user_id``) and ``malformed_body`` for a missing
    or invalid boundary. ``None`` also when python-multipart is not installed.
    """
    if not AVAILABLE or not content_type or "multipart/form-data" not in content_type.lower():
        return None
    if "," in content_type:
        return None  # two content types joined: refused as any other type is (415)
    media, options = parse_options_header(content_type)
    if media != b"multipart/form-data":
        return None
    charset = options.get(b"charset")
    if charset is not None and charset.lower() not in _UTF8_NAMES:
        raise RequestError("unsupported_media_type")
    boundary = options.get(b"boundary")
    if boundary is None or _BOUNDARY.fullmatch(boundary) is None:
        raise RequestError("malformed_body")
    return boundary


class _Part:
    __slots__ = ("data", "disposition", "file", "header_size", "headers", "name")

    def __init__(self) -> None:
        #: (name in lower case, name as sent, value)
        self.headers: list[tuple[bytes, bytes, bytes]] = []
        self.header_size = 0
        self.name: bytes | None = None
        #: the identity part's value, held until the decision (``None``: streamed to the spool)
        self.data: bytearray | None = None
        self.disposition = b""
        self.file = False


class MultipartSpool:
    """One multipart body: fed as it arrives, judged, then handed to the app from a spool.

    Sans-IO: the host reads its body and calls :meth:`feed` with each chunk,
    then :meth:`finish`. Errors are :class:`~ainisa_middleware.errors.RequestError`:
    ``body_too_large`` past ``max_upload_size`` for the whole body or past
    ``max_body_size`` for its non-file bytes (part headers and text parts),
    ``malformed_body`` for anything python-multipart refuses, a part without a
    name, more than ``max_parts`` parts, an identity field in a file part or
    not in UTF-8, and a body that ends before its closing delimiter.
    Close it (or use it as a context manager) once the app is done with the body.
    """

    def __init__(
        self,
        boundary: bytes,
        *,
        max_body_size: int,
        max_upload_size: int,
        max_parts: int,
        refused: str | None = None,
    ) -> None:
        self.boundary = boundary
        # RFC 2046 5.1.1: the delimiter never occurs inside a part. A part whose
        # bytes hold it anyway was cut where python-multipart saw no delimiter
        # (a "--boundary" line ending in something other than CRLF), and written
        # out whole, another parser may cut it there and read the rest as parts.
        self._marker = b"--" + boundary
        self._tail = b""  # the end of the part's bytes so far, for a marker across chunks
        #: the error a non-empty body gets (a bad boundary or charset): an empty
        #: body is no body, whatever its content type
        self.refused = refused
        self.max_body_size = max_body_size
        self.max_upload_size = max_upload_size
        self.max_parts = max_parts
        #: bytes fed so far
        self.size = 0
        self._text = 0  # non-file bytes: part headers and text parts
        self._parts = 0
        self._ended = False
        self._part = _Part()
        self._field = bytearray()
        self._value = bytearray()
        self._held: list[_Part] = []
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - closed by close()
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    @classmethod
    def for_request(
        cls, content_type: str | None, config: MiddlewareConfig
    ) -> MultipartSpool | None:
        """A spool for a ``multipart/form-data`` request under ``config``'s limits;
        ``None`` for any other content type (or without python-multipart)."""
        refused = None
        try:
            boundary = multipart_boundary(content_type)
        except RequestError as error:
            boundary, refused = b"-", error.code
        if boundary is None:
            return None
        return cls(
            boundary,
            max_body_size=config.max_body_size,
            max_upload_size=config.max_upload_size,
            max_parts=config.max_form_fields,
            refused=refused,
        )

    # -- feeding ------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Parse ``chunk``; file data goes to the spool, identity parts are held aside."""
        self.size += len(chunk)
        if self.size > self.max_upload_size:
            raise RequestError("body_too_large")
        if self.refused is not None and chunk:
            raise RequestError(self.refused)
        try:
            self._parser.write(chunk)
        except RequestError:
            raise
        except (FormParserError, ValueError):  # python-multipart's errors are ValueErrors
            raise RequestError("malformed_body") from None

    def finish(self) -> None:
        """The body has ended: ``malformed_body`` unless its closing delimiter came.

        An empty body is no body, as Django and Starlette read it: an empty form.
        """
        if not self._ended and self.size:
            raise RequestError("malformed_body")

    @property
    def wanted(self) -> int:
        """How much more to read, at most: one byte past the limit proves it oversized."""
        return self.max_upload_size + 1 - self.size

    def _count_text(self, size: int) -> None:
        self._text += size
        if self._text > self.max_body_size:
            raise RequestError("body_too_large")

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.max_parts:
            raise RequestError("malformed_body")
        self._part = _Part()
        self._tail = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(end - start)
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(end - start)
        self._value += data[start:end]

    def _header_bytes(self, size: int) -> None:
        part = self._part
        part.header_size += size
        if part.header_size > MAX_PART_HEADER_SIZE:
            raise RequestError("malformed_body")
        self._count_text(size)

    def _header_end(self) -> None:
        # Kept as sent (the app gets them back), compared in lower case.
        field = bytes(self._field).strip()
        self._part.headers.append((field.lower(), field, bytes(self._value).strip()))
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        part = self._part
        dispositions = [v for f, _, v in part.headers if f == b"content-disposition"]
        if len(dispositions) != 1:
            raise RequestError("malformed_body")  # none, or two that parsers pick between
        kind, options = parse_options_header(dispositions[0])
        name = options.get(b"name")
        if kind != b"form-data" or not name or _UNQUOTABLE.search(name):
            raise RequestError("malformed_body")  # a part without a name (or two readings of it)
        if name != name.strip(_PADDING) and name.strip(_PADDING).decode("latin-1") in _WATCHED:
            raise RequestError("malformed_body")  # "user_id " is user_id to a parser that strips
        filename = options.get(b"filename")
        try:  # a header (a name, a file name) not in UTF-8 reads differently in each parser
            for _, _, value in part.headers:
                value.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("malformed_body") from None
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            # Browsers escape a quote as %22; one that got here is replaced, not refused.
            disposition += b'; filename="' + _UNQUOTABLE.sub(b"_", filename) + b'"'
        part.name = name
        part.disposition = disposition
        part.file = filename is not None
        if name.decode("latin-1") in _WATCHED:
            others = [f for f, _, _ in part.headers if f != b"content-disposition"]
            content_type, type_options = parse_options_header(
                next((v for f, _, v in part.headers if f == b"content-type"), b"")
            )
            charset = type_options.get(b"charset")
            if (
                filename is not None  # a file to some parsers, a field to others
                or any(field != b"content-type" for field in others)  # Content-Transfer-Encoding
                or content_type not in _TEXT_TYPES
                or (charset is not None and charset.lower() not in _UTF8_NAMES)
            ):
                raise RequestError("malformed_body")
            part.data = bytearray()
            self._held.append(part)
            return
        write = self._spool.write
        write(b"--" + self.boundary + b"\r\n")
        write(b"Content-Disposition: " + disposition + b"\r\n")
        for lowered, field, value in part.headers:
            if lowered != b"content-disposition":
                write(field + b": " + value + b"\r\n")
        write(b"\r\n")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        seen = self._tail + data[start:end]
        if self._marker in seen:
            raise RequestError("malformed_body")
        self._tail = seen[1 - len(self._marker) :]
        part = self._part
        if part.data is not None:
            self._count_text(end - start)
            part.data += data[start:end]
            return
        if not part.file:
            self._count_text(end - start)
        self._spool.write(data[start:end])

    def _part_end(self) -> None:
        part = self._part
        if part.data is None and part.name is not None:
            self._spool.write(b"\r\n")
        elif part.data is not None:
            try:
                bytes(part.data).decode("utf-8")
            except UnicodeDecodeError:
                raise RequestError("malformed_body") from None

    def _end(self) -> None:
        self._ended = True

    # -- judging and handing on ----------------------------------------------------

    def identity_form(self) -> bytes:
        """The identity and ``widget_id`` parts as the form body the core judges."""
        return b"&".join(
            quote(part.name or b"", safe="").encode("ascii")
            + b"="
            + quote(bytes(part.data or b""), safe="").encode("ascii")
            for part in self._held
        )

    def inspect(
        self, verifier: Verifier, widget_header: str | None, query_string: bytes
    ) -> ParsedRequest:
        """The request as the core sees it: its identity parts as a form body.

        Every form rule applies as written in the core (repeats, conflicts with
        the query string, the widget ID): none is copied here.
        """
        return verifier.inspect(_FORM_TYPE, widget_header, query_string, self.identity_form())

    def body(self, decision: Decision) -> tuple[IO[bytes], int]:
        """The body for the app, from the start of the spool, and its length.

        The identity parts the decision keeps are those its rewritten form body
        holds (all of them when the form body is unchanged): the core's rewrite
        rule, read back rather than written again.
        """
        if not self.size:
            return self._spool, 0  # no body: none to hand on either
        kept = None if decision.body is None else {f.name for f in parse_flat(decision.body).fields}
        write = self._spool.write
        for part in self._held:
            if kept is not None and (part.name or b"").decode("latin-1") not in kept:
                continue
            write(b"--" + self.boundary + b"\r\n")
            write(b"Content-Disposition: " + part.disposition + b"\r\n\r\n")
            write(bytes(part.data or b"") + b"\r\n")
        write(b"--" + self.boundary + b"--\r\n")
        self._held.clear()
        size = self._spool.tell()
        self._spool.seek(0)
        return self._spool, size

    def close(self) -> None:
        """Drop the spool (and its file on disk, if it rolled over)."""
        self._spool.close()

    def __enter__(self) -> MultipartSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
