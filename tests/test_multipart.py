"""The multipart spool, sans-IO: boundaries, chunking, memory, and what the core is handed."""

from __future__ import annotations

import tracemalloc

import pytest

from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.errors import RequestError
from ainisa_middleware.multipart import SPOOL_MEMORY, MultipartSpool, multipart_boundary
from ainisa_middleware.request import parse_flat
from ainisa_middleware.verify import Verifier
from tests.cases import GOOD, PATHS, RESOLVER
from tests.multipart_cases import BOUNDARY, attachment, body, part

LIMITS = {"max_body_size": 1_048_576, "max_upload_size": 64 * 1_048_576, "max_parts": 1000}


def spool_of(data: bytes, step: int | None = None, **limits: int) -> MultipartSpool:
    spool = MultipartSpool(BOUNDARY.encode(), **{**LIMITS, **limits})
    step = step or len(data) or 1
    for start in range(0, len(data), step):
        spool.feed(data[start : start + step])
    spool.finish()
    return spool


def handed_on(spool: MultipartSpool, kept_form: bytes | None = None) -> bytes:
    class Decided:
        body = kept_form

    stream, size = spool.body(Decided())  # type: ignore[arg-type]
    data = stream.read()
    assert len(data) == size
    return data


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('Multipart/Form-Data; BOUNDARY="a b:c"', b"a b:c"),
        ("multipart/form-data; boundary=abc; charset=UTF-8", b"abc"),
        ("application/json", None),
        ("multipart/mixed; boundary=abc", None),
        ("multipart/form-data; boundary=abc, application/json", None),
        ("", None),
        (None, None),
    ],
)
def test_boundary_of_a_content_type(content_type: str | None, boundary: bytes | None) -> None:
    assert multipart_boundary(content_type) == boundary


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("multipart/form-data", "malformed_body"),
        ("multipart/form-data; boundary=", "malformed_body"),
        ("multipart/form-data; boundary=" + "b" * 71, "malformed_body"),
        ('multipart/form-data; boundary="ends in a space "', "malformed_body"),
        ("multipart/form-data; boundary=a\x00b", "malformed_body"),
        ("multipart/form-data; boundary=abc; charset=utf-7", "unsupported_media_type"),
        ("multipart/form-data; boundary=abc; charset=latin-1", "unsupported_media_type"),
    ],
)
def test_bad_multipart_content_types(content_type: str, code: str) -> None:
    with pytest.raises(RequestError) as raised:
        multipart_boundary(content_type)
    assert raised.value.code == code


SAMPLE = body(
    part("message", "hi"),
    part("user_id", "42"),
    attachment(),
    part("user_hash", GOOD),
    attachment("second", data=b"\r\n--" + BOUNDARY.encode()[:-1] + b"\r\n", filename="b.bin"),
)


def test_any_chunking_gives_the_same_body() -> None:
    with spool_of(SAMPLE) as whole:
        form = whole.identity_form()
        expected = handed_on(whole)
    for step in (1, 2, 3, 7, 64, 1000):
        with spool_of(SAMPLE, step) as spool:
            assert spool.identity_form() == form
            assert handed_on(spool) == expected


def test_identity_parts_come_last_and_only_those_kept() -> None:
    with spool_of(SAMPLE) as spool:
        assert spool.identity_form() == b"user_id=42&user_hash=" + GOOD.encode()
        data = handed_on(spool, b"user_id=42")  # the hash dropped, as a verified decision has it
    tail = data[data.index(b"shot.png") :]
    assert b'name="user_id"\r\n\r\n42\r\n--' + BOUNDARY.encode() + b"--\r\n" in tail
    assert GOOD.encode() not in data and b"user_hash" not in data


def test_a_part_value_cannot_smuggle_a_form_field() -> None:
    with spool_of(body(part("email", "x&user_id=evil+1=2;user_hash=0"))) as spool:
        fields = parse_flat(spool.identity_form()).fields
    assert [(field.name, field.value) for field in fields] == [
        ("email", "x&user_id=evil+1=2;user_hash=0")
    ]


def test_the_core_judges_the_parts_with_the_form_rules() -> None:
    verifier = Verifier(MiddlewareConfig.build(resolver=RESOLVER, paths=PATHS))
    with spool_of(body(part("widget_id", "w_pro"), part("user_id", "42"))) as spool:
        parsed = spool.inspect(verifier, None, b"")
    assert parsed.widget_id == "w_pro"
    assert parsed.form is not None and parsed.form.identity == {"user_id": "42"}


def test_file_data_is_spooled_to_disk_not_held_in_memory() -> None:
    chunk = bytes(range(256)) * 256  # 64 KiB
    head = body(part("message", "hi"), close=False)
    head += b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="f"; '
    head += b'filename="big.bin"\r\n\r\n'
    tail = b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    spool = MultipartSpool(BOUNDARY.encode(), **LIMITS)
    tracemalloc.start()
    try:
        spool.feed(head)
        for _ in range(8 * 16):  # 8 MiB of file
            spool.feed(chunk)
        spool.feed(tail)
        spool.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with spool:
        stream, size = spool.body(type("Decided", (), {"body": None})())  # type: ignore[arg-type]
        assert size > 8 * 1_048_576
        assert stream.fileno() >= 0  # rolled over to a file on disk
    assert peak < SPOOL_MEMORY + 512 * 1024


@pytest.mark.parametrize(
    ("data", "limits", "code"),
    [
        (body(*[part(f"f{i}", "", headers=(b"X: " + b"a" * 400,)) for i in range(20)]),
         {"max_body_size": 4096}, "body_too_large"),
        (body(attachment(data=b"x" * 5000)), {"max_upload_size": 4096}, "body_too_large"),
        (body(part("x", "1", headers=(b"X: " + b"a" * 4000,) * 3)), {}, "malformed_body"),
        (body(*[part("x", "") for _ in range(6)]), {"max_parts": 5}, "malformed_body"),
        (b"--" + BOUNDARY.encode() + b"\r\nno colon here\r\n\r\nx\r\n", {}, "malformed_body"),
        (b"\x00" * 100, {}, "malformed_body"),
        (body(part("user_id", "42", content_type="application/octet-stream")), {},
         "malformed_body"),
        (body(part("x", "1", disposition=b'attachment; name="x"')), {}, "malformed_body"),
    ],
)  # fmt: skip
def test_hostile_bodies(data: bytes, limits: dict[str, int], code: str) -> None:
    spool = MultipartSpool(BOUNDARY.encode(), **{**LIMITS, **limits})
    with spool, pytest.raises(RequestError) as raised:
        for start in range(0, len(data), 512):
            spool.feed(data[start : start + 512])
        spool.finish()
    assert raised.value.code == code


def test_an_empty_body_is_no_body() -> None:
    with spool_of(b"") as spool:
        assert spool.identity_form() == b""
        assert handed_on(spool) == b""


def test_a_file_name_with_a_quote_is_passed_on_with_it_replaced() -> None:
    data = body(part("f", "x", disposition=b'form-data; name="f"; filename="a\\"b\\\\c.txt"'))
    with spool_of(data) as spool:
        assert b'filename="a_b_c.txt"' in handed_on(spool)


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("multipart/form-data", "malformed_body"),
        ("multipart/form-data; boundary=x; charset=utf-7", "unsupported_media_type"),
    ],
)
def test_a_bad_content_type_refuses_a_body_but_not_an_empty_one(
    content_type: str, code: str
) -> None:
    config = MiddlewareConfig.build(resolver=RESOLVER, paths=PATHS)
    empty = MultipartSpool.for_request(content_type, config)
    assert empty is not None
    with empty:
        empty.feed(b"")
        empty.finish()
        assert handed_on(empty) == b""
    spool = MultipartSpool.for_request(content_type, config)
    assert spool is not None
    with spool, pytest.raises(RequestError) as raised:
        spool.feed(b"--x--\r\n")
    assert raised.value.code == code


def test_no_spool_for_other_content_types() -> None:
    config = MiddlewareConfig.build(resolver=RESOLVER, paths=PATHS, max_upload_size=99)
    assert MultipartSpool.for_request("application/json", config) is None
    spool = MultipartSpool.for_request("multipart/form-data; boundary=x", config)
    assert spool is not None
    with spool:
        assert (spool.max_upload_size, spool.max_body_size) == (99, config.max_body_size)
