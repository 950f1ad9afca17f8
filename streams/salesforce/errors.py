"""What the Salesforce client raises. Messages carry Salesforce's error codes and texts,
never credentials, tokens or record payloads."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.salesforce.upserts import UpsertOutcome


class SalesforceClientError(Exception):
    """Base class; `outcomes` holds records finished before the failure (upserts only)."""

    def __init__(self, message: str, *, outcomes: list[UpsertOutcome] | None = None) -> None:
        super().__init__(message)
        self.outcomes: list[UpsertOutcome] = outcomes or []


class RequestLimitExceeded(SalesforceClientError):
    """The org's API request limit is used up (403 REQUEST_LIMIT_EXCEEDED): pause."""


class SalesforceUnavailable(SalesforceClientError):
    """Whole calls kept failing (5xx, timeouts, connection errors, repeated 401) until
    the caller's deadline passed. Nothing in the failed call is known to be written."""


class SalesforceAuthenticationError(SalesforceClientError):
    """The token endpoint refused the credentials: a configuration problem, not retried."""


class SalesforceRequestError(SalesforceClientError):
    """An answer retrying cannot fix (404 on the sObject, 403 other than the limit, an
    unexpected body): configuration or programming error. `status`: the HTTP status,
    when there was an error answer."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcomes: list[UpsertOutcome] | None = None,
    ) -> None:
        super().__init__(message, outcomes=outcomes)
        self.status = status


class SalesforceUntrusted(SalesforceRequestError):
    """Salesforce's TLS certificate failed verification: the CA file setting is wrong
    or missing (a setting to fix, not a fault to retry)."""
