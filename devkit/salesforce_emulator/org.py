"""The emulated org: its identity, records, faults, daily limit and API-call count.

Every API area (tls_auth, sobjects, query, composite, admin) of an org holds its `Org`,
so state that several of them read or change lives in one place. The emulator hosts
the default org and any number of named ones (orgs.py), each with an `Org` of its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from devkit.salesforce_emulator.faults import FaultState
from devkit.salesforce_emulator.metadata import EMPTY, OrgMetadata
from devkit.salesforce_emulator.responses import error_response
from devkit.salesforce_emulator.schema import ApiError
from devkit.salesforce_emulator.store import Store

# The oldest API version served; the newest is the configured one.
MIN_API_VERSION = 20.0


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    org_id: str
    user_id: str


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


class Org:
    def __init__(
        self,
        credentials: Credentials,
        store: Store,
        faults: FaultState,
        daily_limit: int,
        max_version: float,
        metadata: OrgMetadata = EMPTY,
        modify_all_data: bool = True,
        name: str = "",
    ) -> None:
        # "" is the default org (served at the root); others are named (orgs.py).
        self.name = name
        self.credentials = credentials
        # What an admin reset restores (a rotated client secret is undone by it).
        self.start_credentials = credentials
        self.store = store
        self.faults = faults
        self.daily_limit = daily_limit
        self.max_version = max_version
        # Custom fields and validation rules of the DX project (metadata.py).
        self.metadata = metadata
        # The integration user's profile: like an admin's, it holds Modify All Data
        # (Events of every owner are editable) unless started --without-modify-all-data.
        # Its other access comes from the project's permission sets (metadata.py), kept
        # apart so each check-salesforce line can be seen failing; in a real org Modify
        # All Data brings View All Data, read on every object and Edit Events with it.
        self.modify_all_data = modify_all_data
        # Where clients log in, and the `instance_url` the token answer gives them; the
        # same URL for the default org, known once listening. A named org logs in at
        # URL/orgs/<name> and is served on a port of its own (orgs.py says why).
        self.login_url = ""
        self.instance_url = ""
        self.usage_day = ""
        self._usage: dict[str, int] = {}

    def user_permissions(self) -> dict[str, bool]:
        """The context user's effective user permissions, as `UserPermissionAccess`
        answers them (the ones the emulator models)."""
        return {
            "ModifyAllData": self.modify_all_data,
            "EditEvent": self.metadata.has_user_permission("EditEvent"),
        }

    # Usage counting -------------------------------------------------------------

    def usage_today(self) -> dict[str, int]:
        day = _today()
        if day != self.usage_day:
            self.usage_day = day
            self._usage = self.store.calls(day)
        return self._usage

    def used(self) -> int:
        return sum(self.usage_today().values())

    def count(self, kind: str) -> None:
        usage = self.usage_today()
        usage[kind] = usage.get(kind, 0) + 1
        self.store.count_call(self.usage_day, kind)

    def reread_usage(self) -> None:
        """Read today's count from the store again on next use (after it was reset)."""
        self.usage_day = ""

    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.used()}/{self.daily_limit}"}

    # Faults shared by the token endpoint and the API ------------------------------

    async def outage(self, request: web.Request) -> web.StreamResponse | None:
        """The answer while the org is down (or the connection is dropped); else None,
        after the configured latency."""
        if self.faults.is_down():
            if self.faults.down_mode == "close" and request.transport is not None:
                request.transport.abort()
                raise asyncio.CancelledError
            return error_response(
                503, ApiError("SERVER_UNAVAILABLE", "Service Unavailable: org is down")
            )
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        return None
