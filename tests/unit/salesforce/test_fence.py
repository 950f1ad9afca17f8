"""The sink's side of the version fence agrees with the org metadata that enforces it
(salesforce/force-app), and recognises that rule's refusal, not any other."""

from __future__ import annotations

from devkit.salesforce_emulator import metadata
from streams.core.projection import PRESETS
from streams.salesforce import RecordError
from streams.salesforce.fence import (
    RULE_MESSAGE,
    RULE_NAME,
    VALIDATION_CODE,
    VERSION_FIELD,
    is_fence_refusal,
)
from streams.salesforce.upserts import outcome_of


def test_the_constants_are_the_shipped_metadata() -> None:
    loaded = metadata.load()
    (rule,) = [r for r in loaded.rules if r.name == RULE_NAME]
    assert (rule.sobject, rule.field, rule.op) == ("Event", VERSION_FIELD, "<")
    assert rule.message == RULE_MESSAGE
    assert rule.display_field == VERSION_FIELD
    assert rule.active
    # A blank counts as lower than any version (they start at 1): blanking is refused.
    assert rule.blank_as is not None
    assert rule.blank_as < 1
    assert rule.violated({VERSION_FIELD: None}, {VERSION_FIELD: 1})
    assert VERSION_FIELD in {f.name for f in loaded.fields["Event"]}
    assert {mapping.version_field for mapping in PRESETS.values()} == {VERSION_FIELD}


def test_the_refusal_is_recognised_by_its_message_or_its_field() -> None:
    assert is_fence_refusal([RecordError(VALIDATION_CODE, RULE_MESSAGE, ())])
    assert is_fence_refusal([RecordError(VALIDATION_CODE, "edited by an admin", (VERSION_FIELD,))])


def test_other_validation_errors_are_not_the_fence() -> None:
    assert not is_fence_refusal([])
    assert not is_fence_refusal([RecordError(VALIDATION_CODE, "Subject is required", ())])
    assert not is_fence_refusal(
        [RecordError("FIELD_INTEGRITY_EXCEPTION", RULE_MESSAGE, (VERSION_FIELD,))]
    )
    # The fence and another rule at once: a real rejection, for the dead-letter topic.
    assert not is_fence_refusal(
        [
            RecordError(VALIDATION_CODE, RULE_MESSAGE, (VERSION_FIELD,)),
            RecordError(VALIDATION_CODE, "Subject is required", ()),
        ]
    )


def test_a_collections_item_refused_by_the_fence_is_fenced_not_rejected() -> None:
    fence = {"statusCode": VALIDATION_CODE, "message": RULE_MESSAGE, "fields": [VERSION_FIELD]}
    other = {"statusCode": VALIDATION_CODE, "message": "No", "fields": []}
    assert outcome_of("b-1", {"success": False, "errors": [fence]}).status == "fenced"
    assert outcome_of("b-1", {"success": False, "errors": [other]}).status == "rejected"
