"""The version fence: Salesforce itself refuses an older projection over a newer one.

Every projection carries `Projection_Version__c`, a number that grows with the set of
booking events folded (streams/core/fold.py). The org's validation rule
`Event.Projection_Version_Never_Decreases` (`BLANKVALUE(Projection_Version__c, -1) <
BLANKVALUE(PRIORVALUE(Projection_Version__c), -1)`, shipped in salesforce/force-app)
refuses a write whose version is lower than the Event's, and one that blanks it (a bare
comparison with a blank is blank, never true, and would reset the fence). Whatever the
order of workers, pauses and rebalances, an Event never goes back: a late write from a
worker that lost its partition is refused, and the sink counts it as done ("Salesforce
already has newer").

The refusal is recognised by this rule's message or by its field, never by just any
validation error: a different rule's refusal is a rejected record for the DLQ.
tests/unit/salesforce/test_fence.py checks these constants against the metadata files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

VERSION_FIELD = "Projection_Version__c"
RULE_NAME = "Projection_Version_Never_Decreases"
RULE_MESSAGE = (
    "Salesforce already has a newer projection of this booking "
    "(Projection_Version__c may not decrease)."
)
VALIDATION_CODE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"


class _Error(Protocol):
    @property
    def status_code(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def fields(self) -> tuple[str, ...]: ...


def is_fence_refusal(errors: Iterable[_Error]) -> bool:
    """Whether a record's errors are (only) the version fence's refusal."""
    found = list(errors)
    return bool(found) and all(
        error.status_code == VALIDATION_CODE
        and (error.message == RULE_MESSAGE or VERSION_FIELD in error.fields)
        for error in found
    )
