"""The token benchmark still runs: a smoke run, every case verified, no timing asserted."""

from __future__ import annotations

import pytest
from bench import tokens as token_bench


def test_token_bench_smoke_run_prints_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert token_bench.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for case in token_bench.cases():
        assert f"| {case} |" in out
    assert "| request, user_hash, 1 secret |" in out and "| 1.00 |" in out
