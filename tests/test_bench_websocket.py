"""The WebSocket frame benchmark still runs (a smoke run; no timing asserted)."""

from __future__ import annotations

import pytest
from bench import websocket


def test_smoke_run_prints_a_row_per_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert websocket.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for label in websocket.FRAMES:
        assert f"| {label} |" in out
