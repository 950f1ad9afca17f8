"""Salesforce: the sink's client (simple-salesforce based) and a local emulator."""

from streams.salesforce.client import RecordError, RelatedRecord, SalesforceClient, UpsertOutcome
from streams.salesforce.errors import (
    RequestLimitExceeded,
    SalesforceAuthenticationError,
    SalesforceClientError,
    SalesforceRequestError,
    SalesforceUnavailable,
)
from streams.salesforce.settings import SalesforceSettings

__all__ = [
    "RecordError",
    "RelatedRecord",
    "RequestLimitExceeded",
    "SalesforceAuthenticationError",
    "SalesforceClient",
    "SalesforceClientError",
    "SalesforceRequestError",
    "SalesforceSettings",
    "SalesforceUnavailable",
    "UpsertOutcome",
]
