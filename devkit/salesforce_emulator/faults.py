"""Fault injection for the emulator: what can go wrong, and when it fires.

Every fault can fire for the next N requests (or records), deterministic for tests, or
with a probability drawn from a seeded generator, for soak and chaos runs. Set at start
up (`--faults JSON`) or at run time over the admin API (`PUT` replaces, `POST` merges).
"""

from __future__ import annotations

import random
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from devkit.salesforce_emulator.schema import ValidationRule


class FaultCounter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    next: int = Field(default=0, ge=0, description="fire for the next N requests/records")
    probability: float = Field(default=0.0, ge=0.0, le=1.0, description="then fire at random")
    only: list[str] = Field(
        default_factory=list,
        description="request kinds it applies to (e.g. collections_upsert, query); [] = all",
    )
    after_write: bool = Field(
        default=False, description="http_500/503: do the work, then answer the error"
    )


class ValidationRuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sobject: str = "Event"
    field: str
    value: JsonValue
    message: str = "Record rejected by a validation rule"


class Faults(BaseModel):
    """The fault configuration, as JSON: e.g. {"http_503": {"next": 2}}."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0.0, description="added to every API request")
    http_500: FaultCounter = Field(default_factory=FaultCounter)
    http_503: FaultCounter = Field(default_factory=FaultCounter)
    invalid_session: FaultCounter = Field(default_factory=FaultCounter)
    request_limit_exceeded: FaultCounter = Field(default_factory=FaultCounter)
    unable_to_lock_row: FaultCounter = Field(
        default_factory=FaultCounter, description="per record written or deleted"
    )
    validation_rules: list[ValidationRuleSpec] = Field(default_factory=list)
    down_for_s: float | None = Field(
        default=None, ge=0.0, description="refuse every API request for this long from now"
    )
    down_mode: Literal["503", "close"] = "503"
    seed: int | None = None


CounterName = Literal[
    "http_500", "http_503", "invalid_session", "request_limit_exceeded", "unable_to_lock_row"
]


class FaultState:
    """The live faults: counters count down as they fire; `down` ends at a deadline."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._faults = Faults()
        self._rng = random.Random()
        self._down_until = 0.0
        self.replace(faults or Faults())

    @property
    def latency_s(self) -> float:
        return self._faults.latency_ms / 1000.0

    @property
    def down_mode(self) -> Literal["503", "close"]:
        return self._faults.down_mode

    def replace(self, faults: Faults) -> None:
        # Deep: counters count down in place, and must not count down the faults given
        # (a reset's start-up faults, or another org's).
        self._faults = faults.model_copy(update={"down_for_s": None}, deep=True)
        self._rng = random.Random(faults.seed)
        self._down_until = (
            time.monotonic() + faults.down_for_s if faults.down_for_s is not None else 0.0
        )

    def merge(self, patch: dict[str, Any]) -> None:
        current = self._faults.model_dump()
        current["down_for_s"] = None
        if "seed" not in patch:
            current.pop("seed")
        for key, value in patch.items():
            if isinstance(value, dict) and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
        faults = Faults.model_validate(current)
        rng = self._rng
        down_until = self._down_until
        self.replace(faults)
        if "seed" not in patch:
            self._rng = rng
        if faults.down_for_s is None:
            self._down_until = down_until

    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def fire(self, name: CounterName, kind: str | None = None) -> bool:
        counter: FaultCounter = getattr(self._faults, name)
        if counter.only and kind not in counter.only:
            return False
        if counter.next > 0:
            counter.next -= 1
            return True
        return counter.probability > 0 and self._rng.random() < counter.probability

    def after_write(self, name: CounterName) -> bool:
        counter: FaultCounter = getattr(self._faults, name)
        return counter.after_write

    def validation_rules(self) -> tuple[ValidationRule, ...]:
        return tuple(
            ValidationRule(r.sobject, r.field, r.value, r.message)
            for r in self._faults.validation_rules
        )

    def snapshot(self) -> dict[str, Any]:
        out = self._faults.model_dump()
        out["down_for_s"] = max(0.0, self._down_until - time.monotonic()) or None
        return out
