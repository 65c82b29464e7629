"""``python -m bench.parse``: what parsing a body costs, hostile or benign, against the stdlib.

python -m bench.parse               # every table, about a minute
python -m bench.parse --smoke       # seconds: checks that everything runs, not speed
python -m bench.parse --callgrind   # also the crossover in instructions (valgrind, minutes)

Tables, every figure a median over interleaved repetitions of the process's CPU
time (what a busy machine does not inflate), except the thread hop, which is
wall time:

1. Parse cost per body and size: ``json.loads`` or ``urllib.parse.parse_qsl``
   (what an app would run), :func:`~ainisa_middleware.request.parse_request`,
   and the whole of ``Verifier.inspect`` and ``decide`` (the re-serialised body
   included), with the answer the middleware gives.
2. What the cyclic garbage collector adds to ``json.loads`` of a body of many
   containers: it runs while the C scanner holds the GIL.
3. A thread hop (``anyio.to_thread.run_sync`` of a no-op), against the cost of
   a hostile body at ``OFF_LOOP_BODY_SIZE``: why bodies past it leave the loop.
4. Small JSON bodies, checked by hooks (``_HOOKS_UP_TO``) or by passes over
   the text: where the two cost the same, per shape of body.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread

from ainisa_middleware import request as request_module
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.errors import RequestError
from ainisa_middleware.request import parse_request
from ainisa_middleware.verify import Verifier

from .logs import quieted
from .workload import BUSINESS, WIDGET_ID, body_for, resolver

CLOCK = time.process_time
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
KIB = 1024
SIZES = (KIB, 16 * KIB, 128 * KIB, 1024 * KIB)
SIZE_LABELS = {KIB: "1 KiB", 16 * KIB: "16 KiB", 128 * KIB: "128 KiB", 1024 * KIB: "1 MiB"}
#: Sizes at which the two ways of checking small JSON are compared.
CROSSOVER_SIZES = (128, 256, 512, 1024, 1536, 2048, 3072, 4096, 8192)
#: Fewer under callgrind: each count is a run of Python under valgrind, seconds long.
CALLGRIND_SIZES = (128, 256, 512, 1024, 2048, 4096)
# getattr: the bench also runs against releases without these (PYTHONPATH=old/src).
OFF_LOOP_BODY_SIZE: int = getattr(request_module, "OFF_LOOP_BODY_SIZE", 16 * KIB)
HOOKS_UP_TO: int | None = getattr(request_module, "_HOOKS_UP_TO", None)


@dataclass(frozen=True)
class Profile:
    reps: int  # interleaved repetitions per cell
    target: float  # seconds of CPU per batch
    sizes: tuple[int, ...]
    hops: int  # thread hops per repetition
    crossover_sizes: tuple[int, ...]


FULL = Profile(reps=7, target=0.02, sizes=SIZES, hops=2000, crossover_sizes=CROSSOVER_SIZES)
SMOKE = Profile(reps=1, target=0.0005, sizes=(KIB, 16 * KIB), hops=20, crossover_sizes=(256,))


# Bodies: a JSON object whose "a" holds ``unit`` repeated to fill ``size`` bytes,
# or a form of ``unit`` repeated.


def _json_filled(unit: bytes, size: int) -> bytes:
    head, tail = b'{"message":"hi","a":[', b"]}"
    count = max(1, (size - len(head) - len(tail) + 1) // (len(unit) + 1))
    return head + b",".join([unit] * count) + tail


def _json_string(size: int) -> bytes:
    head, tail = b'{"message":"', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def _form_filled(unit: bytes, size: int) -> bytes:
    return (unit * (size // len(unit) + 1))[:size]


def _benign_form(size: int) -> bytes:
    head = b"widget_id=" + WIDGET_ID.encode() + b"&user_id=&message="
    return (head + b"hello+widget+" * ((size - len(head)) // 13 + 1))[:size]


@dataclass(frozen=True)
class Body:
    label: str
    content_type: str
    make: Callable[[int], bytes]

    def stdlib(self) -> Callable[[bytes], object]:
        if self.content_type == JSON_TYPE:
            return json.loads
        # Starlette's form parser splits on '&' as parse_qsl does.
        return lambda body: parse_qsl(body.decode("latin-1"), keep_blank_values=True)


BODIES = (
    Body("JSON: empty arrays []", JSON_TYPE, lambda n: _json_filled(b"[]", n)),
    Body("JSON: empty objects {}", JSON_TYPE, lambda n: _json_filled(b"{}", n)),
    Body("JSON: small ints 1", JSON_TYPE, lambda n: _json_filled(b"1", n)),
    Body('JSON: objects {"a":1}', JSON_TYPE, lambda n: _json_filled(b'{"a":1}', n)),
    Body('JSON: short strings "x"', JSON_TYPE, lambda n: _json_filled(b'"x"', n)),
    Body("JSON: one long string", JSON_TYPE, _json_string),
    Body("JSON: chat request (benign)", JSON_TYPE, lambda n: body_for("verified", n)),
    Body("form: ;", FORM_TYPE, lambda n: _form_filled(b";", n)),
    Body("form: a&", FORM_TYPE, lambda n: _form_filled(b"a&", n)),
    Body("form: a=1&", FORM_TYPE, lambda n: _form_filled(b"a=1&", n)),
    Body("form: chat request (benign)", FORM_TYPE, _benign_form),
)


def _verifier() -> Verifier:
    return Verifier(MiddlewareConfig.build(resolver=resolver(), paths=["/chat"]))


def _batch(fn: Callable[[], object], count: int) -> float:
    start = CLOCK()
    for _ in range(count):
        fn()
    return CLOCK() - start


def _calibrate(fn: Callable[[], object], target: float) -> int:
    elapsed = _batch(fn, 1)
    return max(1, int(target / max(elapsed, 1e-7)))


def interleaved(cases: dict[str, Callable[[], object]], profile: Profile) -> dict[str, float]:
    """Median seconds per call of each case, batches interleaved A B C A B C..."""
    counts = {name: _calibrate(fn, profile.target) for name, fn in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    for _ in range(profile.reps):
        for name, fn in cases.items():
            samples[name].append(_batch(fn, counts[name]) / counts[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def _swallowing(fn: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        try:
            return fn()
        except RequestError as error:
            return error

    return call


def _answer(verifier: Verifier, content_type: str, body: bytes) -> str:
    try:
        parsed = verifier.inspect(
            content_type=content_type, widget_header=WIDGET_ID, query_string=b"", body=body
        )
    except RequestError as error:
        return f"{error.status} {error.code}"
    decision = verifier.decide(parsed, BUSINESS)
    return "200" if decision.error is None else f"4xx {decision.error}"


@dataclass
class ParseRow:
    body: str
    size: int
    stdlib: float
    parse: float
    full: float
    answer: str


def parse_costs(profile: Profile) -> list[ParseRow]:
    verifier = _verifier()
    rows = []
    for kind in BODIES:
        for size in profile.sizes:
            body = kind.make(size)
            content_type = kind.content_type
            stdlib = kind.stdlib()

            def ours(body: bytes = body, content_type: str = content_type) -> object:
                return parse_request(
                    content_type=content_type,
                    widget_header=WIDGET_ID,
                    query_string=b"",
                    body=body,
                    max_body_size=2 * 1024 * KIB,
                )

            def full(body: bytes = body, content_type: str = content_type) -> object:
                parsed = verifier.inspect(
                    content_type=content_type, widget_header=WIDGET_ID, query_string=b"", body=body
                )
                return verifier.decide(parsed, BUSINESS)

            medians = interleaved(
                {
                    "stdlib": lambda body=body, stdlib=stdlib: stdlib(body),
                    "parse": _swallowing(ours),
                    "full": _swallowing(full),
                },
                profile,
            )
            rows.append(
                ParseRow(
                    kind.label,
                    len(body),
                    medians["stdlib"],
                    medians["parse"],
                    medians["full"],
                    _answer(verifier, content_type, body),
                )
            )
            print(f"parse: {kind.label} {len(body)} B done", file=sys.stderr)
    return rows


@contextmanager
def collector(enabled: bool) -> Iterator[None]:
    was = gc.isenabled()
    if enabled:
        gc.enable()
    else:
        gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def gc_costs(profile: Profile) -> list[tuple[str, float, float]]:
    """``json.loads`` of the largest container-heavy bodies, collector on and off."""
    size = max(profile.sizes)
    out = []
    for kind in BODIES[:4]:
        body = kind.make(size)
        timings = []
        for enabled in (True, False):
            with collector(enabled):
                timings.append(interleaved({"loads": lambda body=body: json.loads(body)}, profile))
        out.append((kind.label, timings[0]["loads"], timings[1]["loads"]))
    return out


def _noop() -> None:
    return None


def hop_costs(profile: Profile) -> dict[str, float]:
    """Median wall seconds of a call made directly and through a worker thread."""

    from ainisa_middleware import asgi

    # The adapter's own hop (one at a time, then a pause), where it has one.
    off_loop: Callable[[Callable[[], None]], Awaitable[None]] | None
    off_loop = getattr(asgi, "_off_loop", None)

    async def run() -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {"direct": [], "thread": [], "adapter": []}
        await anyio.to_thread.run_sync(_noop)  # start the worker thread first
        for _ in range(profile.reps):
            start = time.perf_counter()
            for _ in range(profile.hops):
                _noop()
            samples["direct"].append((time.perf_counter() - start) / profile.hops)
            start = time.perf_counter()
            for _ in range(profile.hops):
                await anyio.to_thread.run_sync(_noop)
            samples["thread"].append((time.perf_counter() - start) / profile.hops)
            if off_loop is not None:
                start = time.perf_counter()
                for _ in range(profile.hops):
                    await off_loop(_noop)
                samples["adapter"].append((time.perf_counter() - start) / profile.hops)
        return samples

    samples = anyio.run(run)
    return {name: statistics.median(values) for name, values in samples.items() if values}


# Small JSON: the two ways parse_json_object checks a body, chosen by size.

CROSSOVER_SHAPES: dict[str, Callable[[int], bytes]] = {
    "chat request (benign)": lambda n: body_for("verified", n),
    "small ints": lambda n: _json_filled(b"1", n),
    'objects {"a":1}': lambda n: _json_filled(b'{"a":1}', n),
    'short strings "x"': lambda n: _json_filled(b'"x"', n),
    "empty arrays": lambda n: _json_filled(b"[]", n),
}


@contextmanager
def hooks_up_to(size: int) -> Iterator[None]:
    """Make parse_json_object take the hook path up to ``size`` bytes."""
    saved = request_module._HOOKS_UP_TO
    request_module._HOOKS_UP_TO = size  # type: ignore[misc]
    try:
        yield
    finally:
        request_module._HOOKS_UP_TO = saved  # type: ignore[misc]


def _path(path: str, body: bytes) -> Callable[[], object]:
    limit = sys.maxsize if path == "hooks" else 0

    def call() -> object:
        with hooks_up_to(limit):
            return request_module.parse_json_object(body)

    return call


@dataclass
class CrossRow:
    shape: str
    size: int
    hooks: float  # seconds, or instructions with --callgrind
    large: float


def crossover(profile: Profile) -> list[CrossRow]:
    rows = []
    for shape, make in CROSSOVER_SHAPES.items():
        for size in profile.crossover_sizes:
            body = make(size)
            medians = interleaved({p: _path(p, body) for p in ("hooks", "large")}, profile)
            rows.append(CrossRow(shape, len(body), medians["hooks"], medians["large"]))
    return rows


_CALLGRIND_SCRIPT = textwrap.dedent(
    """
    import sys
    from bench.parse import CROSSOVER_SHAPES, _path
    shape, size, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    call = _path(path, CROSSOVER_SHAPES[shape](size))
    call()
    for _ in range(count):
        call()
    """
)
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _instructions(shape: str, size: int, path: str, count: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, "-c", _CALLGRIND_SCRIPT, shape, str(size), path, str(count)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind failed: {done.stderr[-1000:]}")
    return int(found.group(1))


def crossover_instructions(profile: Profile, count: int = 20) -> list[CrossRow]:
    """Instructions per call of each path: runs of ``count`` calls minus runs of none."""
    sizes = [size for size in CALLGRIND_SIZES if size <= max(profile.crossover_sizes)]
    jobs = [
        (shape, size, path, n)
        for shape in CROSSOVER_SHAPES
        for size in sizes
        for path in ("hooks", "large")
        for n in (0, count)
    ]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = dict(zip(jobs, pool.map(lambda job: _instructions(*job), jobs), strict=True))
    rows = []
    for shape, make in CROSSOVER_SHAPES.items():
        for size in sizes:

            def per_call(path: str, shape: str = shape, size: int = size) -> float:
                return (results[shape, size, path, count] - results[shape, size, path, 0]) / count

            rows.append(CrossRow(shape, len(make(size)), per_call("hooks"), per_call("large")))
    return rows


def crossing_size(rows: Sequence[CrossRow]) -> float | None:
    """The size at which the large path starts costing no more than the hooks (interpolated)."""
    previous: CrossRow | None = None
    for row in rows:
        if row.large <= row.hooks:
            if previous is None:
                return float(row.size)
            gap_before = previous.large - previous.hooks
            gap_after = row.hooks - row.large
            share = gap_before / (gap_before + gap_after)
            return previous.size + share * (row.size - previous.size)
        previous = row
    return None


# Tables


def _table(header: Sequence[str], rows: list[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.3f}"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def parse_table(rows: list[ParseRow]) -> list[str]:
    header = (
        "body",
        "bytes",
        "stdlib ms",
        "parse_request ms",
        "x stdlib",
        "inspect + decide ms",
        "answer",
    )
    return _table(
        header,
        [
            (
                r.body,
                f"{r.size:,}",
                _ms(r.stdlib),
                _ms(r.parse),
                f"{r.parse / r.stdlib:.1f}" if r.stdlib > 0 else "n/a",
                _ms(r.full),
                r.answer,
            )
            for r in rows
        ],
    )


def gc_table(rows: list[tuple[str, float, float]], size: int) -> list[str]:
    return _table(
        ("body", "bytes", "json.loads ms, collector on", "collector off", "collector's share"),
        [
            (label, f"~{size:,}", _ms(on), _ms(off), f"{(on - off) / on:.0%}" if on else "n/a")
            for label, on, off in rows
        ],
    )


def hop_table(hops: dict[str, float], rows: list[ParseRow]) -> list[str]:
    at_threshold = [r for r in rows if r.size == OFF_LOOP_BODY_SIZE or r.size == 16 * KIB]
    worst = max(at_threshold, key=lambda r: r.full, default=None)
    lines = _table(
        ("what", "us"),
        [
            ("direct call of a no-op", _us(hops["direct"])),
            ("anyio.to_thread.run_sync of a no-op (wall)", _us(hops["thread"])),
            *(
                [("the ASGI adapter's hop (_off_loop) of a no-op (wall)", _us(hops["adapter"]))]
                if "adapter" in hops
                else []
            ),
        ],
    )
    if worst is not None:
        lines += [
            "",
            f"The costliest body at OFF_LOOP_BODY_SIZE ({OFF_LOOP_BODY_SIZE:,} bytes) is "
            f"{worst.body}: {_us(worst.full)} us to inspect and decide, "
            f"{worst.full / max(hops['thread'], 1e-9):.0f} thread hops.",
        ]
    return lines


def cross_table(rows: list[CrossRow], unit: str) -> list[str]:
    scale = 1e6 if unit == "us" else 1.0
    digits = 1 if unit == "us" else 0
    lines = _table(
        ("shape", "bytes", f"hooks {unit}", f"passes {unit}", "passes / hooks"),
        [
            (
                r.shape,
                f"{r.size:,}",
                f"{r.hooks * scale:,.{digits}f}",
                f"{r.large * scale:,.{digits}f}",
                f"{r.large / r.hooks:.2f}" if r.hooks > 0 else "n/a",
            )
            for r in rows
        ],
    )
    lines.append("")
    for shape in CROSSOVER_SHAPES:
        crossing = crossing_size([r for r in rows if r.shape == shape])
        where = "never, in these sizes" if crossing is None else f"about {crossing:,.0f} bytes"
        lines.append(f"- {shape}: passes cost no more than hooks from {where}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parse", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: check it runs")
    parser.add_argument(
        "--callgrind", action="store_true", help="also count the crossover's instructions"
    )
    parser.add_argument("--reps", type=int, help="repetitions per cell (default 7)")
    args = parser.parse_args(argv)
    profile = SMOKE if args.smoke else FULL
    if args.reps:
        profile = replace(profile, reps=args.reps)
    # Releases without the two ways of checking JSON have no crossover to measure.
    crossing = HOOKS_UP_TO is not None
    with quieted():
        rows = parse_costs(profile)
        gc_rows = gc_costs(profile)
        hops = hop_costs(profile)
        cross = crossover(profile) if crossing else []
        counted = None
        if args.callgrind and crossing:
            if shutil.which("valgrind") is None:
                print("valgrind is not installed: no instruction counts", file=sys.stderr)
            else:
                counted = crossover_instructions(profile)
    lines = [
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; "
        f"{'smoke' if args.smoke else 'full'} profile, median of {profile.reps} "
        "interleaved repetitions of CPU time per call.",
        "",
        "### Parse cost",
        "",
        *parse_table(rows),
        "",
        "### The collector inside json.loads",
        "",
        *gc_table(gc_rows, max(profile.sizes)),
        "",
        "### Thread hop",
        "",
        *hop_table(hops, rows),
    ]
    if crossing:
        lines += [
            "",
            "### Small JSON: hooks or passes over the text (median CPU time)",
            "",
            f"`_HOOKS_UP_TO` is {HOOKS_UP_TO:,} bytes.",
            "",
            *cross_table(cross, "us"),
        ]
    if counted is not None:
        lines += [
            "",
            "### Small JSON: hooks or passes, instructions per call (callgrind)",
            "",
            *cross_table(counted, "instructions"),
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
