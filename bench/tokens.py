"""``python -m bench.tokens``: what a ``user_token`` costs per request, against a ``user_hash``.

python -m bench.tokens            # the table, about twenty seconds
python -m bench.tokens --smoke    # a second: checks that it runs, not speed

Each figure is the median, over interleaved repetitions, of the process's CPU
time per request for the engine's own work on a JSON chat request (parse,
judge, re-serialise: ``Verifier.inspect`` then ``decide``), and for the proof
check alone. A token costs more than a hash: its segments are decoded and
parsed as strict JSON, the signature compared, then PyJWT decodes and checks
it again with the one secret that matched.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from ainisa_middleware import Business, StaticResolver, user_hash, user_token
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.signing import match_secret
from ainisa_middleware.tokens import check_token
from ainisa_middleware.verify import Verifier

SECRET = "sk_live_bench_current_0123456789abcdef"
OLD = "sk_live_bench_previous_fedcba9876543210"
WIDGET = "w_bench"
HEADERS = "application/json"


@dataclass(frozen=True)
class Profile:
    reps: int
    count: int


FULL = Profile(reps=15, count=2000)
SMOKE = Profile(reps=2, count=20)


def _business(proofs: str, secrets: tuple[str, ...]) -> Business:
    ids = tuple(str(i + 1) for i in range(len(secrets)))
    return Business(id="bench", secrets=secrets, secret_ids=ids, proofs=frozenset({proofs}))


def _body(user: dict[str, str]) -> bytes:
    return json.dumps({"widget_id": WIDGET, "message": "Where is my order?", "user": user}).encode()


def cases() -> dict[str, Callable[[], object]]:
    """Name -> one request's work; each returns what it decided, checked before timing."""
    one, two = (SECRET,), (SECRET, OLD)
    hash_user = {"user_id": "42", "user_hash": user_hash(SECRET, "42"), "firstname": "Ada"}
    token = user_token(SECRET, "42", widget_id=WIDGET, firstname="Ada")
    token_kid = user_token(OLD, "42", widget_id=WIDGET, firstname="Ada", kid="2")
    result: dict[str, Callable[[], object]] = {}
    rows = [
        ("request, user_hash, 1 secret", _business("hash", one), _body(hash_user)),
        ("request, user_hash, 2 secrets", _business("hash", two), _body(hash_user)),
        ("request, user_token, 1 secret", _business("token", one), _body({"user_token": token})),
        ("request, user_token, 2 secrets", _business("token", two), _body({"user_token": token})),
        (
            "request, user_token with kid, 2 secrets",
            _business("token", two),
            _body({"user_token": token_kid}),
        ),
    ]
    for name, business, body in rows:
        config = MiddlewareConfig(resolver=StaticResolver({WIDGET: business}), paths=("/chat",))
        engine = Verifier(config)

        def request(
            engine: Verifier = engine, business: Business = business, body: bytes = body
        ) -> object:
            parsed = engine.inspect(HEADERS, None, b"", body)
            return engine.decide(parsed, business).user.status.value  # type: ignore[union-attr]

        result[name] = request
    business = _business("token", one)
    result["proof only: match_secret (hash)"] = lambda: match_secret(
        one, "42", hash_user["user_hash"]
    )
    result["proof only: check_token (token)"] = lambda: check_token(token, business, WIDGET).status
    return result


def measure(profile: Profile) -> dict[str, float]:
    """Median microseconds of CPU time per call, per case."""
    work = cases()
    for name, fn in work.items():
        outcome = fn()
        assert str(outcome) in ("verified", "0", "Status.VERIFIED"), (name, outcome)
    samples: dict[str, list[float]] = {name: [] for name in work}
    gc.collect()
    for _ in range(profile.reps):
        for name, fn in work.items():
            start = time.process_time()
            for _ in range(profile.count):
                fn()
            samples[name].append((time.process_time() - start) / profile.count * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def table(results: dict[str, float]) -> str:
    base = results["request, user_hash, 1 secret"]
    lines = ["| case | µs per request (CPU) | × user_hash request |", "|---|---:|---:|"]
    for name, value in results.items():
        lines.append(f"| {name} | {value:.1f} | {value / base:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tokens", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: check it runs")
    args = parser.parse_args(argv)
    profile = SMOKE if args.smoke else FULL
    print(f"### Token verification against hash verification ({profile.reps} × {profile.count})")
    print()
    print(table(measure(profile)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
