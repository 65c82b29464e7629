"""Write the seed corpus: real chat requests and known-hostile ones.

    python fuzz/seeds.py        # (re)writes fuzz/corpus/

Each seed is one request in the format of ``common.py``. The hashes are real
HMACs under the secrets the fuzz targets' resolver knows, so the fuzzer starts
from verified visitors as well as from broken ones.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hardening.strategies import SECRET_NEW, SECRET_OLD  # noqa: E402

from ainisa_middleware import user_hash  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
H42 = user_hash(SECRET_NEW, "42")
OLD42 = user_hash(SECRET_OLD, "42")
HE = user_hash(SECRET_NEW, "é")
JSON = "content-type: application/json"
ACRM = "access-control-request-method: POST"
# A message long enough to put a body past the 2 KiB the hooked JSON path takes:
# such bodies are parsed by _parse_large.
PAD = "x" * 2100
FORM = "content-type: application/x-www-form-urlencoded"
WID = "x-ainisa-widget-id: w_pro"


def request(line: str, *headers: str, body: bytes | str = b"") -> bytes:
    raw = body.encode() if isinstance(body, str) else body
    return ("\n".join([line, *headers]) + "\n\n").encode() + raw


def user(**fields: object) -> str:
    return json.dumps({"message": "hi", "user": fields})


def large(rest: str) -> str:
    """A JSON object over 2 KiB whose members after the message are ``rest``."""
    return '{"message":"' + PAD + '",' + rest + "}"


def framed(body: str) -> str:
    return f"content-length: {len(body.encode())}"


SEEDS: dict[str, bytes] = {
    # real chat requests
    "json-verified": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body=user(user_id="42", user_hash=H42, firstname="Ada", email="ada@example.com"),
    ),
    "json-verified-old-secret": request(
        "POST /chat HTTP/1.1", JSON, WID, body=user(user_id="42", user_hash=OLD42)
    ),
    "json-int-user-id": request(
        "POST /chat HTTP/1.1", JSON, WID, body=user(user_id=42, user_hash=H42)
    ),
    "json-upper-hash": request(
        "POST /chat HTTP/1.1", JSON, WID, body=user(user_id="42", user_hash=H42.upper())
    ),
    "json-guest": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body=user(user_id="", user_hash="", firstname="", lastname="", email=""),
    ),
    "json-widget-in-body": request(
        "POST /chat HTTP/1.1", JSON, body=json.dumps({"widget_id": "w_pro", "message": "x"})
    ),
    "json-tampered": request(
        "POST /chat HTTP/1.1", JSON, WID, body=user(user_id="43", user_hash=H42)
    ),
    "form-verified": request(
        "POST /chat HTTP/1.1",
        FORM,
        body=f"widget_id=w_pro&message=hi+there&user_id=42&user_hash={H42}&firstname=Ada",
    ),
    "form-percent-names": request(
        "POST /chat HTTP/1.1", FORM, WID, body=f"user%5Fid=42&%75ser_hash={H42}"
    ),
    "form-utf8-escaped": request(
        "POST /chat HTTP/1.1", FORM, WID, body=f"user_id=%C3%A9&user_hash={HE}"
    ),
    "query-verified": request(f"GET /chat?widget_id=w_pro&user_id=42&user_hash={H42} HTTP/1.1"),
    "query-and-json": request(
        f"POST /chat?user_id=42&user_hash={H42} HTTP/1.1", JSON, WID, body='{"message":"hi"}'
    ),
    "options-preflight": request(
        "OPTIONS /chat HTTP/1.1", WID, "access-control-request-method: POST"
    ),
    "other-path": request(
        f"POST /chatter?user_id=42&user_hash={H42} HTTP/1.1", JSON, body=user(user_id="1")
    ),
    "head-with-body": request(
        "HEAD /chat HTTP/1.1", JSON, WID, body=user(user_id="42", user_hash=H42)
    ),
    # hostile: JSON
    "dup-keys-user": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body=f'{{"user":{{"user_id":"1","user_id":"42","user_hash":"{H42}"}}}}',
    ),
    "dup-keys-deep": request("POST /chat HTTP/1.1", JSON, WID, body='{"a":{"b":{"c":1,"c":2}}}'),
    "deep-nesting": request(
        "POST /chat HTTP/1.1", JSON, WID, body='{"a":' + "[" * 40 + "]" * 40 + "}"
    ),
    "lone-surrogate-escape": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body=f'{{"user":{{"user_id":"\\ud800","user_hash":"{H42}"}}}}',
    ),
    "lone-surrogate-raw": request(
        "POST /chat HTTP/1.1", JSON, WID, body=b'{"user":{"user_id":"\xed\xa0\x80"}}'
    ),
    "overlong-utf8": request("POST /chat HTTP/1.1", JSON, WID, body=b'{"a":"\xc0\xaf"}'),
    "bom-json": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body=b"\xef\xbb\xbf" + user(user_id="42", user_hash=H42).encode(),
    ),
    "utf16-json": request(
        "POST /chat HTTP/1.1",
        "content-type: application/json; charset=utf-16",
        WID,
        body=user(user_id="42").encode("utf-16"),
    ),
    "nul-in-string": request(
        "POST /chat HTTP/1.1", JSON, WID, body='{"user":{"user_id":"4\\u00002"}}'
    ),
    "nul-raw": request("POST /chat HTTP/1.1", JSON, WID, body=b'{"a":"\x00"}'),
    "huge-int": request(
        "POST /chat HTTP/1.1", JSON, WID, body='{"user":{"user_id":' + "9" * 4400 + "}}"
    ),
    "huge-float": request("POST /chat HTTP/1.1", JSON, WID, body='{"a":1e999999}'),
    "nan": request("POST /chat HTTP/1.1", JSON, WID, body='{"a":NaN}'),
    "proto-keys": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body='{"__proto__":{"user_id":"42"},"constructor":{"prototype":{"user_hash":"x"}}}',
    ),
    "top-level-hash": request(
        "POST /chat HTTP/1.1", JSON, WID, body=json.dumps({"user_hash": H42, "user_id": "42"})
    ),
    "user-not-object": request("POST /chat HTTP/1.1", JSON, WID, body='{"user":["42"]}'),
    "bool-user-id": request("POST /chat HTTP/1.1", JSON, WID, body='{"user":{"user_id":true}}'),
    "json-as-form": request("POST /chat HTTP/1.1", FORM, WID, body=user(user_id="victim")),
    # hostile: flat data and headers
    "semicolon-glued": request(f"GET /chat?widget_id=w_pro&user_id=42;x&user_hash={H42} HTTP/1.1"),
    "semicolon-hidden": request("GET /chat?widget_id=w_pro&x=1;user_id=evil HTTP/1.1"),
    "raw-utf8-value": request(
        "POST /chat HTTP/1.1", FORM, WID, body=f"user_id=é&user_hash={HE}".encode()
    ),
    "bad-escape": request(f"GET /chat?widget_id=w_pro&user_id=4%FF&user_hash={H42} HTTP/1.1"),
    "utf7-query": request(
        "GET /chat?user+AF8-id=victim HTTP/1.1", WID, "content-type: text/plain; charset=utf-7"
    ),
    "utf7-form": request(
        "POST /chat HTTP/1.1",
        "content-type: application/x-www-form-urlencoded; charset=utf-7",
        WID,
        body="user+AF8-id=victim",
    ),
    "repeated-identity": request("GET /chat?widget_id=w_pro&user_id=1&user_id=42 HTTP/1.1"),
    "empty-key": request("POST /chat HTTP/1.1", FORM, WID, body="=x&&=&user_id"),
    "plus-in-key": request("GET /chat?widget_id=w_pro&user+id=1&user_id=4+2 HTTP/1.1"),
    "repeated-widget-header": request(
        "POST /chat HTTP/1.1", JSON, WID, "x-ainisa-widget-id: w_basic", body="{}"
    ),
    "conflicting-widget": request("POST /chat?widget_id=w_basic HTTP/1.1", JSON, WID, body="{}"),
    "repeated-content-type": request(
        "POST /chat HTTP/1.1", FORM, JSON, WID, body='{"x&user_id=victim&y":1}'
    ),
    "content-type-case": request(
        "POST /chat HTTP/1.1",
        "content-type: Application/JSON",
        WID,
        body=user(user_id="42", user_hash=H42),
    ),
    "content-type-spaces": request(
        "POST /chat HTTP/1.1",
        "content-type: application/x-www-form-urlencoded ; charset=UTF-8",
        WID,
        body=f"user_id=42&user_hash={H42}",
    ),
    "multipart": request(
        "POST /chat HTTP/1.1",
        "content-type: multipart/form-data; boundary=x",
        WID,
        body='--x\r\ncontent-disposition: form-data; name="user_id"\r\n\r\nvictim\r\n--x--\r\n',
    ),
    "multipart-verified-with-file": request(
        "POST /chat HTTP/1.1",
        "content-type: multipart/form-data; boundary=b0",
        WID,
        body=(
            '--b0\r\ncontent-disposition: form-data; name="message"\r\n\r\nhi\r\n'
            '--b0\r\ncontent-disposition: form-data; name="user_id"\r\n\r\n42\r\n'
            f'--b0\r\ncontent-disposition: form-data; name="user_hash"\r\n\r\n{H42}\r\n'
            '--b0\r\ncontent-disposition: form-data; name="file"; filename="a.png"\r\n'
            "content-type: image/png\r\n\r\n\x89PNG\r\n--b\r\n--b0--\r\n"
        ),
    ),
    "multipart-identity-as-file": request(
        "POST /chat HTTP/1.1",
        "content-type: multipart/form-data; boundary=b0",
        WID,
        body=(
            '--b0\r\ncontent-disposition: form-data; name="user_id"; filename="x"\r\n\r\n'
            '42\r\n--b0\r\ncontent-disposition: form-data; name="user_id "\r\n\r\n42\r\n'
            "--b0--\r\n"
        ),
    ),
    "no-content-type": request("POST /chat HTTP/1.1", WID, body=user(user_id="42")),
    "content-length-lie": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        "content-length: 2",
        body=user(user_id="42", user_hash=H42),
    ),
    "content-length-huge": request(
        "POST /chat HTTP/1.1", JSON, WID, "content-length: 99999999999", body="{}"
    ),
    "chunked": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        "transfer-encoding: chunked",
        body=user(user_id="42", user_hash=H42),
    ),
    "unknown-widget": request(
        "POST /chat HTTP/1.1", JSON, "x-ainisa-widget-id: w_unknown", body="{}"
    ),
    "identity-disabled": request(
        "POST /chat HTTP/1.1",
        JSON,
        "x-ainisa-widget-id: w_basic",
        body=user(user_id="42", user_hash=H42),
    ),
    "require-identity": request(
        "POST /chat HTTP/1.1", JSON, "x-ainisa-widget-id: w_strict", body="{}"
    ),
    # paths a router sends to /chat, and methods around the CORS preflight
    "path-repeated-slash": request(
        "POST //chat HTTP/1.1", JSON, WID, body=user(user_id="42", user_hash=H42)
    ),
    "path-dot-segments": request(
        "POST /x/../chat/ HTTP/1.1", JSON, WID, body=user(user_id="1", user_hash=H42)
    ),
    "path-encoded-slash": request(f"GET /%2Fchat?widget_id=w_pro&user_hash={H42} HTTP/1.1"),
    "path-merged-dots": request(f"GET //chat/..?widget_id=w_pro&user_hash={H42} HTTP/1.1"),
    "options-no-preflight-header": request(
        "OPTIONS /chat HTTP/1.1", JSON, WID, body=user(user_id="1", user_hash=H42)
    ),
    "options-preflight-header-and-body": request(
        "OPTIONS /chat HTTP/1.1",
        JSON,
        WID,
        ACRM,
        framed(user(user_id="1")),
        body=user(user_id="1"),
    ),
    "options-preflight-header-chunked": request(
        "OPTIONS /chat HTTP/1.1",
        FORM,
        WID,
        ACRM,
        "transfer-encoding: chunked",
        body="user_id=1&firstname=Eve",
    ),
    # JSON bodies over 2 KiB: parsed by _parse_large, checked against the hooked path
    "large-json-verified": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body=large(f'"user":{{"user_id":"42","user_hash":"{H42}","firstname":"Ada"}}'),
    ),
    "large-dup-keys-deep": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a":{"b":{"c":1,"c":2}}')
    ),
    "large-dup-keys-escaped": request(
        "POST /chat HTTP/1.1",
        JSON,
        WID,
        body=large(f'"user":{{"user_id":"1","user\\u005fid":"42","user_hash":"{H42}"}}'),
    ),
    "large-dup-keys-quoted": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a\\"":1,"a\\\\":2,"a\\"":3')
    ),
    "large-dup-surrogate-keys": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"\\ud800":1,"\\ud800":2')
    ),
    "large-depth-32": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a":' + "[" * 31 + "]" * 31)
    ),
    "large-depth-33": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a":' + "[" * 32 + "]" * 32)
    ),
    "large-brackets-in-strings": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a":"' + '[{:\\"' * 40 + '"')
    ),
    "large-huge-float": request("POST /chat HTTP/1.1", JSON, WID, body=large('"a":1e400')),
    "large-max-float": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a":1.7976931348623157e308')
    ),
    "large-int-4300-digits": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a":' + "9" * 4300)
    ),
    "large-int-4301-digits": request(
        "POST /chat HTTP/1.1", JSON, WID, body=large('"a":-' + "9" * 4301)
    ),
    "large-top-level-array": request(
        "POST /chat HTTP/1.1", JSON, WID, body="[" + large('"a":{"b":1,"b":2}') + "]"
    ),
    # flat data around the field cap (1000)
    "form-at-field-cap": request(
        "POST /chat HTTP/1.1", FORM, WID, body="a=1&" * 998 + f"user_id=42&user_hash={H42}"
    ),
    "form-over-field-cap": request(
        "POST /chat HTTP/1.1", FORM, WID, body="a=1;" * 1000 + "user_id=42"
    ),
    "query-over-field-cap": request("GET /chat?" + "x=1;" * 1000 + "widget_id=w_pro HTTP/1.1"),
}


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, data in SEEDS.items():
        digest = hashlib.sha1(data).hexdigest()[:8]
        (CORPUS / f"{name}-{digest}").write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {CORPUS}")


if __name__ == "__main__":
    main()
