"""A short run of every fuzz target (``make fuzz`` runs them longer).

The targets run in parallel for ``AINISA_FUZZ_SMOKE_SECONDS`` (default 20)
each, from the committed seed corpus; any crash, any target that fails to
start or executes nothing, fails this test with the fuzzer's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .profile import EXTRA_LINES

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("AINISA_FUZZ_SMOKE_SECONDS", "20"))


@pytest.mark.slow
def test_fuzz_targets_survive_a_smoke_run() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "run.py"), "--seconds", str(SECONDS)],
        capture_output=True,
        text=True,
        timeout=SECONDS * 3 + 120,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("fuzz")]
    EXTRA_LINES.extend(lines)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert lines and lines[-1].startswith("fuzz: ") and ", 0 crashes" in lines[-1]
