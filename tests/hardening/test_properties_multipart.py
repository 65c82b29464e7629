"""Properties of the multipart spool over generated bodies, honest and mangled.

For any body and any chunking: the spool answers a contract error or hands on a
body that python-multipart (the parser the middleware uses, and Starlette's)
reads as exactly the app's parts of the original, in order, byte for byte, with
only the identity parts the decision kept, and never a second reading of a name.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ainisa_middleware.errors import ERRORS, RequestError
from ainisa_middleware.multipart import MultipartSpool

from .profile import hypothesis_settings
from .views import multipart_parts

BOUNDARY = b"b0und4ry"
WATCHED = {"user_id", "user_hash", "firstname", "lastname", "email", "widget_id"}
NAMES = st.sampled_from(
    ["message", "file", "user_id", "user_hash", "email", "widget_id", "x y", "\u00fc", "a;b"]
)
VALUES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"\r\n--b0und4r", b"--b0und4ry", b"\r\n", b"42", "\u00e9".encode()]),
)


@st.composite
def bodies(draw: Any) -> tuple[bytes, list[tuple[str, str | None, bytes]]]:
    parts: list[tuple[str, str | None, bytes]] = []
    raw = b""
    for _ in range(draw(st.integers(0, 6))):
        name = draw(NAMES)
        filename = draw(st.one_of(st.none(), st.sampled_from(["a.png", "b c.txt", ""])))
        value = draw(VALUES)
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        raw += b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        if draw(st.booleans()):
            raw += b"Content-Type: application/octet-stream\r\n"
        raw += b"\r\n" + value + b"\r\n"
        # As the parser reads header bytes: latin-1.
        wire = name.encode().decode("latin-1")
        parts.append((wire, None if filename is None else filename, value))
    raw += b"--" + BOUNDARY + b"--\r\n"
    mangle = draw(st.sampled_from(["none"] * 4 + ["cut", "flip", "insert"]))
    if mangle != "none" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        if mangle == "cut":
            raw = raw[:at]
        elif mangle == "flip":
            raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
        else:
            raw = raw[:at] + draw(st.sampled_from([b"\r\n", b"--", b'"', b"\x00"])) + raw[at:]
        parts = []  # mangled: only the error, or a well-formed reading, is checked
    return raw, parts


@hypothesis_settings(300)
@given(bodies(), st.integers(1, 97), st.booleans())
def test_spool_hands_on_the_apps_parts_or_a_contract_error(
    generated: tuple[bytes, list[tuple[str, str | None, bytes]]], step: int, keep: bool
) -> None:
    raw, parts = generated
    spool = MultipartSpool(BOUNDARY, max_body_size=4096, max_upload_size=8192, max_parts=5)
    with spool:
        try:
            for start in range(0, len(raw), step):
                spool.feed(raw[start : start + step])
            spool.finish()
            form = spool.identity_form()
        except RequestError as error:
            assert error.code in ERRORS
            return
        # Keep every identity part (a verified decision keeps all but the hash) or none.
        kept = None if keep else b""

        class Decided:
            body = kept

        stream, size = spool.body(Decided())  # type: ignore[arg-type]
        data = stream.read()
    assert len(data) == size
    if not raw:
        assert data == b""
        return
    seen = multipart_parts(data, BOUNDARY)
    others = [p for p in seen if p[0] not in WATCHED]
    identity = [p for p in seen if p[0] in WATCHED]
    assert all(filename is None for _, filename, _ in identity)
    if not keep:
        assert identity == []
    if parts:  # an honest body: the app's parts pass in order, byte for byte
        assert others == [p for p in parts if p[0] not in WATCHED]
        if keep:
            assert identity == [p for p in parts if p[0] in WATCHED]
    names = [name for name, _, _ in identity]
    assert all(name.encode("latin-1") in form for name in names)
