"""Salesforce: the sink's client (simple-salesforce based); the emulator is in devkit/."""

from streams.salesforce.client import SalesforceClient
from streams.salesforce.errors import (
    RequestLimitExceeded,
    SalesforceAuthenticationError,
    SalesforceClientError,
    SalesforceRequestError,
    SalesforceUnavailable,
)
from streams.salesforce.related import RelatedRecord
from streams.salesforce.session import RecordError
from streams.salesforce.settings import SalesforceSettings
from streams.salesforce.upserts import UpsertOutcome

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
