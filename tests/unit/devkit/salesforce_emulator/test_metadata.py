"""The emulator's reader of the product's Salesforce DX project (salesforce/): custom
fields and validation rules, enforced as a deployed org enforces them, or refused
loudly when the emulator cannot evaluate them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devkit.salesforce_emulator import metadata
from devkit.salesforce_emulator.metadata import MetadataError, PriorValueRule
from devkit.salesforce_emulator.schema import EVENT, deserialize, validate

RULE_FILE = (
    "force-app/main/default/objects/Event/validationRules/"
    "Projection_Version_Never_Decreases.validationRule-meta.xml"
)
FIELD_FILE = "force-app/main/default/objects/Activity/fields/Projection_Version__c.field-meta.xml"
EXISTING = {
    "Booking_Id__c": "b-1",
    "StartDateTime": "2026-11-24T09:30:00.000+0000",
    "EndDateTime": "2026-11-24T10:00:00.000+0000",
    "Projection_Version__c": 5,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped DX project, to change."""
    return Path(shutil.copytree(metadata.DEFAULT_PROJECT, tmp_path / "salesforce"))


def _edit(project: Path, relative: str, old: str, new: str) -> None:
    path = project / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _errors(org: metadata.OrgMetadata, version: object, prior: dict[str, object] | None) -> list:
    metadata.deploy(org)
    changes = deserialize(EVENT, {"Booking_Id__c": "b-1", "Projection_Version__c": version})
    _, errors = validate(EVENT, changes, prior, rules=org.rules_for("Event"))
    return [(e.code, e.message, e.fields) for e in errors if e.code.startswith("FIELD_CUSTOM")]


def test_the_shipped_project_has_the_version_field_and_its_fence() -> None:
    org = metadata.load()
    # Defined on Activity: a field of Event.
    (field,) = [f for f in org.fields["Event"] if f.name == "Projection_Version__c"]
    assert (field.name, field.kind, field.scale, field.required) == (
        "Projection_Version__c",
        "double",
        0,
        False,
    )
    (rule,) = org.rules
    assert (rule.sobject, rule.name, rule.field, rule.op) == (
        "Event",
        "Projection_Version_Never_Decreases",
        "Projection_Version__c",
        "<",
    )
    assert rule.fields == ("Projection_Version__c",)
    assert org.tracked_fields("Event") == ("Projection_Version__c",)


# A blank on an update with a prior version is refused too: it would reset the fence.
@pytest.mark.parametrize(("version", "refused"), [(4, True), (5, False), (6, False), (None, True)])
def test_a_lower_version_is_refused_with_the_rules_message(
    version: int | None, refused: bool
) -> None:
    org = metadata.load()
    errors = _errors(org, version, EXISTING)
    if refused:
        assert errors == [
            (
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                org.rules[0].message,
                ("Projection_Version__c",),
            )
        ]
    else:
        assert errors == []


def test_an_insert_and_a_blank_prior_pass() -> None:
    org = metadata.load()
    assert _errors(org, 1, None) == []  # PRIORVALUE on insert is the new value
    assert _errors(org, None, None) == []
    assert _errors(org, 1, {**EXISTING, "Projection_Version__c": None}) == []
    assert _errors(org, None, {**EXISTING, "Projection_Version__c": None}) == []


def test_the_bare_comparison_lets_a_blank_through(project: Path) -> None:
    """Why the shipped formula wraps both sides in BLANKVALUE: the bare form (the
    formula before the org kit's fix) is blank, so silent, when the new value is."""
    _edit(
        project,
        RULE_FILE,
        "BLANKVALUE(Projection_Version__c, -1) &lt; "
        "BLANKVALUE(PRIORVALUE(Projection_Version__c), -1)",
        "Projection_Version__c &lt; PRIORVALUE(Projection_Version__c)",
    )
    org = metadata.load(project)
    assert org.rules[0].blank_as is None
    assert _errors(org, None, EXISTING) == []
    assert len(_errors(org, 4, EXISTING)) == 1


def test_the_rule_comes_from_the_file(project: Path) -> None:
    _edit(project, RULE_FILE, "-1) &lt; BLANKVALUE(PRIORVALUE", "-1) &gt; BLANKVALUE(PRIORVALUE")
    _edit(project, RULE_FILE, "may not decrease", "may not increase")
    org = metadata.load(project)
    assert org.rules[0].op == ">"
    assert _errors(org, 4, EXISTING) == []
    assert [e[1] for e in _errors(org, 6, EXISTING)] == [org.rules[0].message]
    assert "may not increase" in org.rules[0].message


def test_an_inactive_rule_enforces_nothing_but_its_field_is_still_logged(project: Path) -> None:
    _edit(project, RULE_FILE, "<active>true</active>", "<active>false</active>")
    org = metadata.load(project)
    assert org.rules_for("Event") == ()
    assert org.tracked_fields("Event") == ("Projection_Version__c",)


@pytest.mark.parametrize(
    "formula",
    [
        "Projection_Version__c &lt; PRIORVALUE(Subject)",
        "ISCHANGED(Projection_Version__c)",
        "Projection_Version__c &lt; PRIORVALUE(Projection_Version__c) &amp;&amp; ISNEW()",
        "Projection_Version__c &lt; 3",
        # BLANKVALUE with different blanks on the two sides compares unlike things.
        "BLANKVALUE(Projection_Version__c, 0) &lt; "
        "BLANKVALUE(PRIORVALUE(Projection_Version__c), -1)",
    ],
)
def test_a_formula_it_cannot_evaluate_fails_loudly(project: Path, formula: str) -> None:
    path = project / RULE_FILE
    text = path.read_text()
    start = text.index("<errorConditionFormula>") + len("<errorConditionFormula>")
    end = text.index("</errorConditionFormula>")
    path.write_text(text[:start] + formula + text[end:])
    with pytest.raises(MetadataError, match="cannot evaluate the formula"):
        metadata.load(project)


def test_a_field_type_it_does_not_model_fails_loudly(project: Path) -> None:
    _edit(project, FIELD_FILE, "<type>Number</type>", "<type>Geolocation</type>")
    with pytest.raises(MetadataError, match="Geolocation"):
        metadata.load(project)


def test_a_rule_on_a_field_that_does_not_exist_fails_loudly(project: Path) -> None:
    (project / FIELD_FILE).unlink()
    with pytest.raises(MetadataError, match="has no field Projection_Version__c"):
        metadata.load(project)


def test_a_folder_that_is_not_a_dx_project_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="not a Salesforce DX project"):
        metadata.load(tmp_path)


def test_prior_value_comparisons() -> None:
    rule = PriorValueRule("Event", "r", "V", "<", "no", None)
    assert rule.violated({"V": 1}, {"V": 2})
    assert not rule.violated({"V": 2}, {"V": 2})
    assert not rule.violated({"V": 1}, None)
    assert not rule.violated({"V": None}, {"V": 2})
    assert rule.fields == ()
    blank_low = PriorValueRule("Event", "r", "V", "<", "no", None, blank_as=-1)
    assert blank_low.violated({"V": None}, {"V": 2})
    assert not blank_low.violated({"V": 2}, {"V": None})
    assert not blank_low.violated({"V": None}, None)
