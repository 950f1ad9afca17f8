"""`make bench-orgs`' pure parts (bench/orgs_bench.py): the orgs it registers (names the
registry takes, secrets only by reference), the API-call deltas, the per-org latency
judgement (the blocked orgs left out, an org without a sample never passes) and the
table's verdicts. The run's timings are the bench's, never asserted."""

from __future__ import annotations

from typing import Any

import pytest

from bench import orgs_bench as ob
from streams.salesforce.org_registry import decode, encode


def test_org_names_are_registry_names_and_two_of_them_are_blocked() -> None:
    names = ob.org_names(200)
    assert names[:2] == ["org-000", "org-001"]
    assert names[-1] == "org-199"
    assert len(set(names)) == 200
    assert ob.blocked_orgs(names) == {"down": "org-000", "over_limit": "org-001"}
    assert ob.org_names(1000)[-1] == "org-999"
    with pytest.raises(ValueError, match="at least 3"):
        ob.org_names(2)


def test_an_org_is_registered_with_its_secret_by_reference_only() -> None:
    record = ob.connection("org-007", "https://127.0.0.1:8443/orgs/org-007", "cid", "/ca.pem")
    key, value = encode(record)
    assert key == b"org-007"
    assert decode(key, value) == record
    assert record.client_secret == "env:BENCH_SF_SECRET_ORG_007"
    assert ob.secret_variable("org-007") == "BENCH_SF_SECRET_ORG_007"


def test_counts_delta_keeps_what_grew() -> None:
    before = {"collections_upsert": 3, "query": 2, "describe": 4}
    after = {"collections_upsert": 10, "query": 2, "describe": 4, "composite": 1}
    assert ob.counts_delta(before, after) == {"collections_upsert": 7, "composite": 1}


def test_the_latency_judgement_leaves_the_blocked_orgs_out() -> None:
    by_org = {
        "org-000": [30.0],  # down: its late writes are not judged
        "org-001": [],
        "org-002": [0.2, 0.4, 0.9],
        "org-003": [0.1, 0.3],
    }
    summary = ob.latency_summary(by_org, {"org-000", "org-001"}, 1.0)
    assert summary["met"] is True
    assert summary["orgs_judged"] == 2
    assert summary["orgs_within_target"] == 2
    assert (summary["worst_org"], summary["worst_org_p99_s"]) == ("org-002", 0.9)
    assert summary["pooled_samples"] == 5
    assert summary["per_org"]["org-001"] == {
        "samples": 0,
        "p50_s": None,
        "p99_s": None,
        "max_s": None,
    }


def test_an_org_over_the_target_or_without_a_sample_misses_it() -> None:
    over = ob.latency_summary({"a": [0.5], "b": [0.2, 1.7]}, set(), 1.0)
    assert over["met"] is False
    assert over["orgs_over_target"] == ["b"]
    assert over["orgs_within_target"] == 1
    silent = ob.latency_summary({"a": [0.5], "b": []}, set(), 1.0)
    assert silent["met"] is False
    assert silent["orgs_without_samples"] == ["b"]
    assert ob.latency_summary({}, set(), 1.0)["met"] is False


def _results(per_event: float, p99s: dict[str, list[float]], converged: dict[str, float]) -> Any:
    return {
        "setup": {"orgs": 4},
        "blocked": {"down": "org-000", "over_limit": "org-001"},
        "backfill": {
            "events": 2000,
            "fold_ev_s": 1000.0,
            "end_to_end_ev_s": 800.0,
            "api_calls_per_event": per_event,
            "matches_fold": True,
        },
        "live": {
            "rate_ev_s": 500.0,
            "duration_s": 60.0,
            "achieved_ev_s": 499.0,
            "healthy_match": True,
            "latency": ob.latency_summary(p99s, {"org-000", "org-001"}, 1.0),
        },
        "recovery": {"converged_after_s": converged},
        "final": {"ok": len(converged) == 2, "problems": {"lost": 2 - len(converged)}},
    }


def _verdicts(rows: list[tuple[str, str, str, str]]) -> dict[str, str]:
    return {name.strip(): verdict for name, _, _, verdict in rows if verdict}


def test_the_table_says_met_when_every_target_is() -> None:
    results = _results(
        1 / 400, {"org-002": [0.4], "org-003": [0.6]}, {"org-000": 70.0, "org-001": 65.0}
    )
    verdicts = _verdicts(ob.report(results))
    assert set(verdicts.values()) == {"met"}, verdicts
    assert len(verdicts) == 6


def test_the_table_names_each_missed_target() -> None:
    results = _results(1 / 100, {"org-002": [0.4], "org-003": [1.6]}, {"org-000": 70.0})
    verdicts = _verdicts(ob.report(results))
    assert verdicts["API calls per event"] == "MISSED"
    assert verdicts["orgs with p99 ≤ 1 s (down, over-limit org left out)"] == "MISSED"
    assert verdicts["worst org's p99"] == "MISSED"
    assert verdicts["down org (org-000) converged after it recovered"] == "met"
    assert verdicts["over_limit org (org-001) converged after it recovered"] == "MISSED"
    assert verdicts["nothing lost: every org = fold at the end"] == "MISSED"


def test_a_quick_run_scales_the_backfill_with_the_orgs() -> None:
    default = ob.parse_args([])
    assert (default.orgs, default.rate, default.broker, default.workers) == (200, 500.0, "kafka", 2)
    assert (default.backfill_bookings, default.backfill_events) == (20_000, 200_000)
    quick = ob.parse_args(["--orgs", "10", "--rate", "100"])
    assert (quick.backfill_bookings, quick.backfill_events, quick.rate) == (1_000, 10_000, 100.0)
