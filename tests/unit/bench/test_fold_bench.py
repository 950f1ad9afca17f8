"""make bench-fold's options."""

from __future__ import annotations

import pytest

from bench import fold_bench


def test_ingest_only_runs_the_ingest_loop_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    real = fold_bench._ingest
    monkeypatch.setattr(
        fold_bench, "_ingest", lambda messages: runs.append(len(messages)) or real(messages)
    )
    fold_bench.main(["--bookings", "5", "--ingest-only", "2", "--default-gc"])
    out = capsys.readouterr().out
    assert len(runs) == 3  # the warm-up and two runs: no other figure is taken
    assert out == f"ingest loop: {runs[0]:,} events, 2 runs after a warm-up\n"
