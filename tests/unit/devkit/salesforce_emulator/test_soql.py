"""The emulator's SOQL subset parser."""

from __future__ import annotations

import pytest
from simple_salesforce.format import format_soql

from devkit.salesforce_emulator.soql import Condition, OrderBy, Query, SoqlError, parse


def test_full_query() -> None:
    query = parse(
        "SELECT Id, Email FROM Contact WHERE Email IN ('a@x.io', 'b@x.io') AND IsDeleted = false "
        "AND Age__c >= 3 ORDER BY CreatedDate DESC NULLS LAST, Id LIMIT 10"
    )
    assert query == Query(
        fields=("Id", "Email"),
        sobject="Contact",
        where=(
            Condition("Email", "IN", ("a@x.io", "b@x.io")),
            Condition("IsDeleted", "=", False),
            Condition("Age__c", ">=", 3),
        ),
        order_by=(OrderBy("CreatedDate", True, True), OrderBy("Id", False, False)),
        limit=10,
    )


@pytest.mark.parametrize(
    "value",
    ["o'brien@x.io", "back\\slash", 'double"quote', "new\nline\ttab", "') OR Id != ('", "\\'"],
)
def test_values_quoted_by_simple_salesforce_round_trip(value: str) -> None:
    query = parse(
        format_soql("SELECT Id FROM Lead WHERE Email = {} AND Name IN {}", value, [value])
    )
    assert query.where == (Condition("Email", "=", value), Condition("Name", "IN", (value,)))


@pytest.mark.parametrize(
    ("soql", "condition"),
    [
        ("SELECT Id FROM Lead WHERE Email = null", Condition("Email", "=", None)),
        ("SELECT Id FROM Lead WHERE Email <> 'x'", Condition("Email", "!=", "x")),
        ("SELECT Id FROM Lead WHERE Email NOT IN ('x')", Condition("Email", "NOT IN", ("x",))),
        ("select id from lead where name like 'A\\_%'", Condition("name", "LIKE", "A\\_%")),
        ("SELECT Id FROM Lead WHERE Score__c = -1.5", Condition("Score__c", "=", -1.5)),
    ],
)
def test_conditions(soql: str, condition: Condition) -> None:
    assert parse(soql).where == (condition,)


@pytest.mark.parametrize(
    "soql",
    [
        "",
        "SELECT FROM Lead",
        "SELECT Id Lead",
        "SELECT Id FROM Lead WHERE",
        "SELECT Id FROM Lead WHERE Email = 'open",
        "SELECT Id FROM Lead WHERE Email = 'bad \\q escape'",
        "SELECT Id FROM Lead WHERE Email = 'a' OR Email = 'b'",
        "SELECT Owner.Name FROM Lead",
        "SELECT Id FROM Lead WHERE Email IN ('a' 'b')",
        "SELECT Id FROM Lead LIMIT -1",
        "SELECT Id FROM Lead LIMIT 5 extra",
        "SELECT Id FROM Lead WHERE Email ~ 'a'",
    ],
)
def test_unsupported_or_malformed(soql: str) -> None:
    with pytest.raises(SoqlError):
        parse(soql)
