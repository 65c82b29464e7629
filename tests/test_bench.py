"""The benchmark still runs: a smoke run with tiny counts, no network, no timing asserted.

``make bench`` is slow and not part of ``make test``; this keeps its drivers,
peers and tables from rotting as the middleware changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from bench import inprocess, workload
from bench.__main__ import MARK_END, MARK_START, OutcomeError, _check, main
from bench.drivers import ASGIDriver
from bench.variants import ASGI_VARIANTS, asgi_app


def test_smoke_run_writes_every_table(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"intro\n{MARK_START}\nold\n{MARK_END}\noutro\n", encoding="utf-8")

    assert main(["--smoke", "--no-network", "--out", str(tmp_path), "--docs", str(page)]) == 0

    text = (tmp_path / "smoke-latest.md").read_text(encoding="utf-8")
    for heading in ("### Targets", "in process", "what each variant answered", "### Resolver"):
        assert heading in text
    for label in ("verified 200 B", "invalid_hash 10 KB", "anonymous 200 B", "hostile 10 KB"):
        assert f"| {label} |" in text
    # ours and the floor refuse duplicate keys; the naive peer lets them through.
    assert (
        "| hostile 200 B | 200 | 400 malformed_body | 400 malformed_body | 200 verified |" in text
    )
    docs = page.read_text(encoding="utf-8")
    assert docs.startswith(f"intro\n{MARK_START}\n") and docs.endswith(f"{MARK_END}\noutro\n")
    assert "\nold\n" not in docs and "### Targets" in docs


def test_smoke_run_leaves_the_logger_as_it_was(tmp_path: Path) -> None:
    log = logging.getLogger("ainisa_middleware")
    before = (list(log.handlers), log.propagate)
    main(["--smoke", "--no-network", "--out", str(tmp_path)])
    assert (list(log.handlers), log.propagate) == before


@pytest.mark.parametrize("variant", ASGI_VARIANTS)
@pytest.mark.parametrize("kind", workload.KINDS)
def test_every_asgi_variant_answers_the_workload(variant: str, kind: str) -> None:
    driver = ASGIDriver(asgi_app(variant))
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
