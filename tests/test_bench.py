"""The benchmark still runs: a smoke run with tiny counts, no network, no timing asserted.

``make bench`` is slow and not part of ``make test``; this keeps its drivers,
peers and tables from rotting as the middleware changes.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench import inprocess, workload
from bench import parse as parse_bench
from bench.__main__ import MARK_END, MARK_START, ROOT, OutcomeError, _check, main
from bench.drivers import ASGIDriver, WSGIDriver
from bench.variants import ASGI_VARIANTS, WSGI_VARIANTS, asgi_app, wsgi_app


def test_smoke_run_writes_every_table(tmp_path: Path) -> None:
    # Its own process: the Django host needs its own settings module.
    page = tmp_path / "performance.md"
    page.write_text(f"intro\n{MARK_START}\nold\n{MARK_END}\noutro\n", encoding="utf-8")
    command = [sys.executable, "-m", "bench", "--smoke", "--no-network"]
    command += ["--out", str(tmp_path), "--docs", str(page)]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    text = (tmp_path / "smoke-latest.md").read_text(encoding="utf-8")
    for heading in ("### Targets", "### Resolver", "### django: what each variant answered"):
        assert heading in text
    for host in ("asgi", "wsgi", "django"):
        assert f"### {host}: in process" in text
    for label in ("verified 200 B", "invalid_hash 200 B", "anonymous 200 B", "hostile 200 B"):
        assert f"| {label} |" in text
    # ours (static and SQL stores) and the floor refuse duplicate keys; the naive peer does not.
    hostile = "| hostile 200 B | 200 | 400 malformed_body | 400 malformed_body | 400 malformed_body"
    assert text.count(hostile + " | 200 verified |") == 2  # ASGI and WSGI
    assert (
        "| hostile 200 B | 200 | 400 malformed_body | 400 malformed_body | 200 verified |" in text
    )
    docs = page.read_text(encoding="utf-8")
    assert docs.startswith(f"intro\n{MARK_START}\n") and docs.endswith(f"{MARK_END}\noutro\n")
    assert "\nold\n" not in docs and "### Targets" in docs


def test_main_leaves_the_loggers_as_they_were(tmp_path: Path) -> None:
    names = ("ainisa_middleware", "django.request")
    before = [(list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names]
    main(["--smoke", "--no-network", "--hosts", "asgi", "--out", str(tmp_path)])
    after = [(list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names]
    assert after == before


@pytest.mark.parametrize("kind", workload.KINDS)
@pytest.mark.parametrize(
    ("host", "variant"),
    [("asgi", v) for v in ASGI_VARIANTS] + [("wsgi", v) for v in WSGI_VARIANTS],
)
def test_every_variant_answers_the_workload(host: str, variant: str, kind: str) -> None:
    driver: ASGIDriver | WSGIDriver
    driver = ASGIDriver(asgi_app(variant)) if host == "asgi" else WSGIDriver(wsgi_app(variant))
    try:
        status, word = driver.outcome(workload.build(kind, 200))
    finally:
        driver.close()
    if variant == "bare":
        assert (status, word) == (200, None)
    elif variant == "naive" and kind == "hostile":
        assert (status, word) == (200, "verified")  # json.loads keeps the last duplicate
    elif kind == "hostile":
        assert (status, word) == (400, "malformed_body")
    else:
        assert (status, word) == (200, workload.EXPECTED_USER[kind])


def test_a_variant_that_answers_wrongly_is_refused() -> None:
    request = workload.build("verified", 200)
    cell = inprocess.Cell(host="asgi", request=request, count=1)
    cell.outcomes = {"bare": (200, None), "ours": (200, "anonymous")}
    with pytest.raises(OutcomeError, match="ours answered 200 anonymous"):
        _check(cell)
    cell.outcomes = {"bare": (500, None)}
    with pytest.raises(OutcomeError, match="bare answered 500"):
        _check(cell)


@pytest.mark.parametrize("size", workload.SIZES)
def test_bodies_have_the_size_they_claim(size: int) -> None:
    for kind in workload.KINDS:
        assert len(workload.body_for(kind, size)) == size


def test_parse_bench_smoke_run_prints_every_table(capsys: pytest.CaptureFixture[str]) -> None:
    hooks_up_to = parse_bench.request_module._HOOKS_UP_TO
    assert parse_bench.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for heading in ("### Parse cost", "### The collector", "### Thread hop", "### Small JSON"):
        assert heading in out
    # The form field cap answers before any loop; a chat request passes.
    assert "| form: a& | 16,384 |" in out and "| 400 malformed_body |" in out
    assert "| JSON: chat request (benign) | 1,024 |" in out
    assert "_off_loop" in out
    # What it changes for a while is as it was.
    assert hooks_up_to == parse_bench.request_module._HOOKS_UP_TO
    assert gc.isenabled()


def test_callgrind_ratios_subtract_the_bare_app() -> None:
    from bench.callgrind import format_report, ratios

    counts = {
        "bare": {200: 100.0},
        "ours": {200: 220.0},
        "floor": {200: 200.0},
        "naive": {200: 250.0},
    }
    found = ratios(counts)
    assert found["ours added"] == 120.0
    assert found["ours / floor"] == 1.2
    assert found["ours / naive"] == 0.8
    table = format_report({"asgi": {"instructions": counts, "200 B": found}}, [200])
    assert "| asgi | 200 B | 100 | 120 | 100 | 150 | 1.20x | 0.80x |" in table


def test_callgrind_counts_instructions_of_every_variant(tmp_path: Path) -> None:
    import shutil

    from bench import callgrind

    if shutil.which("valgrind") is None:  # pragma: no cover - valgrind is on every CI machine
        pytest.fail("valgrind is missing: apt-get install valgrind")
    page = tmp_path / "page.md"
    page.write_text(f"before\n{callgrind.MARK_START}\nold\n{callgrind.MARK_END}\nafter\n")
    assert callgrind.main(["--hosts", "wsgi", "--count", "3", "--docs", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    row = next(line for line in text.splitlines() if line.startswith("| wsgi | 200 B"))
    bare, ours, floor = (float(cell.replace(",", "")) for cell in row.split("|")[3:6])
    assert bare > 50_000 and ours > 0 and floor > 0  # real counts, not zeros


@pytest.mark.parametrize("host", ["asgi", "wsgi"])
def test_the_hook_variants_answer_as_ours_and_the_table_compares_them(host: str) -> None:
    from bench import hooks
    from bench.variants import HOOK_VARIANTS

    build, drive = (asgi_app, ASGIDriver) if host == "asgi" else (wsgi_app, WSGIDriver)
    request = workload.build("verified", 200)
    for variant in HOOK_VARIANTS:
        driver = drive(build(variant))
        try:
            assert driver.outcome(request) == (200, "verified"), variant
        finally:
            driver.close()
    per = {"bare": 10.0, "ours": 30.0, "ours-hook": 31.0, "ours-prom": 32.0, "ours-otel": 33.0}
    table = hooks.table({host: per}, "µs")
    assert f"| {host} | no-op hook | 21.0 | +1.0 (+5.0%) |" in table
    assert f"| {host} | OpenTelemetry | 23.0 | +3.0 (+15.0%) |" in table
