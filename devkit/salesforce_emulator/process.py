"""A Salesforce emulator process and its admin API, for the demo, the tests and benches.

Runs `python -m devkit salesforce-emulator` as a child process on a data dir, reads its
ready line (URL, CA file, credentials) and talks to its `/__admin/` endpoints; a named
org (`add_org`) is an `OrgHandle` with the same connection details and admin helpers.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import requests

from streams.salesforce.settings import SalesforceSettings

EMULATOR_START_TIMEOUT_S = 30.0
# The checkout holding the devkit package, which is not installed: `python -m devkit` runs
# from here.
CHECKOUT = Path(__file__).resolve().parents[2]


class DevkitRun(TypedDict):
    args: list[str]
    cwd: Path
    env: dict[str, str]


def devkit_process_args(*args: str) -> DevkitRun:
    """`subprocess` arguments that run `python -m devkit ARGS` from the checkout, whatever
    the caller's working directory (give it absolute paths)."""
    pythonpath = [str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return DevkitRun(
        args=[sys.executable, "-m", "devkit", *args],
        cwd=CHECKOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)},
    )


class OrgAdmin:
    """One org's connection details (`info`: the ready line's fields) and admin API."""

    def __init__(self, info: dict[str, Any], http: requests.Session) -> None:
        self.info = info
        self._http = http

    # Connection details ----------------------------------------------------------

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca_file(self) -> str:
        return str(self.info["ca_file"])

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def client_secret(self) -> str:
        if "client_secret" not in self.info:  # given to it, so not printed
            raise KeyError(f"client_secret: from {self.info.get('client_secret_from')}")
        return str(self.info["client_secret"])

    @property
    def username(self) -> str:
        return str(self.info["username"])

    @property
    def password(self) -> str:
        return str(self.info["password"])

    @property
    def security_token(self) -> str:
        return str(self.info["security_token"])

    @property
    def jwt_private_key_file(self) -> str:
        """The private key of the certificate the emulator checks JWT assertions with
        (empty when started with --jwt-certificate)."""
        return str(self.info.get("jwt_private_key_file", ""))

    def settings(self, **overrides: Any) -> SalesforceSettings:
        """Client settings for this emulator, with backoff short enough for tests."""
        values: dict[str, Any] = {
            "login_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "ca_file": self.ca_file,
            "retry_base_s": 0.01,
            "retry_cap_s": 0.2,
            "timeout_s": 10.0,
        }
        values.update(overrides)
        return SalesforceSettings(**values)

    # Admin API -------------------------------------------------------------------

    def admin(self, method: str, path: str, body: object = None) -> Any:
        # A named org's url is URL/orgs/<name>, under which the emulator serves its admin.
        response = self._http.request(method, f"{self.url}/__admin/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def records(self, sobject: str = "Event") -> list[dict[str, Any]]:
        return list(self.admin("GET", f"records/{sobject}")["records"])

    def changes(
        self,
        sobject: str = "Event",
        after: int = 0,
        *,
        fields: Sequence[str] = (),
        limit: int = 10_000,
    ) -> tuple[list[dict[str, Any]], int]:
        """Every record of `sobject` changed after change `after` (deleted ones with
        `IsDeleted: true`), read in pages of `limit`; `fields` narrows each record to
        those (and Id, IsDeleted). Returns the records and the next read's `after`."""
        narrowed = f"&fields={','.join(fields)}" if fields else ""
        records: list[dict[str, Any]] = []
        while True:
            page = self.admin(
                "GET", f"records/{sobject}?changed_after={after}&limit={limit}{narrowed}"
            )
            records.extend(page["records"])
            after = int(page["cursor"])
            if not page["more"]:
                return records, after

    def insert(self, sobject: str, *records: dict[str, Any]) -> list[str]:
        """Seed records without spending API calls; returns their ids."""
        results = self.admin("POST", f"records/{sobject}", {"records": list(records)})
        assert all(r["success"] for r in results), results
        return [str(r["id"]) for r in results]

    def update(self, sobject: str, record_id: str, **fields: Any) -> dict[str, Any]:
        """Change a record's fields: `update("User", uid, IsActive=False)` deactivates."""
        result: dict[str, Any] = self.admin("PATCH", f"records/{sobject}/{record_id}", fields)
        return result

    def delete(self, sobject: str, record_id: str) -> None:
        self.admin("DELETE", f"records/{sobject}/{record_id}")

    def merge(self, sobject: str, master: str, *duplicates: str) -> None:
        self.admin("POST", f"merge/{sobject}", {"master": master, "duplicates": list(duplicates)})

    def convert_lead(self, lead_id: str, contact_id: str | None = None) -> str:
        """Convert a Lead; returns the Contact it became (new unless `contact_id`)."""
        body = {"contact": contact_id} if contact_id else {}
        return str(self.admin("POST", f"convert/{lead_id}", body)["contact"])

    def writes(self, sobject: str = "Event", after: int = 0) -> list[dict[str, Any]]:
        """The write log of fields a PRIORVALUE rule guards (Projection_Version__c):
        {seq, at, id, external_id, field, old, new, outcome: written|refused}."""
        return list(self.admin("GET", f"writes/{sobject}?after={after}")["records"])

    def api_calls(self) -> dict[str, Any]:
        return dict(self.admin("GET", "api-calls"))

    def total_api_calls(self) -> int:
        return int(self.api_calls()["total"])

    def set_faults(self, faults: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
        """Merge faults into the current ones, e.g. set_faults(http_503={"next": 2})."""
        return dict(self.admin("POST", "faults", {**(faults or {}), **more}))

    def replace_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        return dict(self.admin("PUT", "faults", faults))

    def down(self, for_s: float, mode: str = "503") -> None:
        self.admin("POST", "down", {"for_s": for_s, "mode": mode})

    def set_daily_limit(self, limit: int) -> None:
        self.admin("POST", "limits", {"daily_limit": limit})

    def expire_tokens(self) -> int:
        return int(self.admin("POST", "expire-tokens")["expired"])

    def rotate_client_secret(self, secret: str) -> None:
        """The org refuses its old client secret from now on and takes `secret`."""
        self.admin("POST", "client-secret", {"client_secret": secret})

    def reset(self) -> None:
        """The org as it started; on the emulator's handle, orgs added since are removed."""
        self.admin("POST", "reset")


class OrgHandle(OrgAdmin):
    """A named org of a running emulator: `url` is its login URL (URL/orgs/<name>),
    `instance_url` where its API calls go (a port of its own)."""

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def instance_url(self) -> str:
        return str(self.info["instance_url"])


class SalesforceEmulator(OrgAdmin):
    """A running `python -m devkit salesforce-emulator` process: its default org's
    connection details and admin API, and its named orgs (`add_org`, `org`)."""

    def __init__(self, data_dir: Path, *extra_args: str) -> None:
        http = requests.Session()
        http.trust_env = False  # REQUESTS_CA_BUNDLE must not replace our CA
        super().__init__({}, http)
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[str] | None = None
        self._port = 0
        self.start()

    # Process control -------------------------------------------------------------

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stderr = open(self.data_dir / "emulator.stderr.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            **devkit_process_args(
                "salesforce-emulator",
                "--port",
                str(self._port),
                "--data-dir",
                str(self.data_dir.resolve()),
                *self.extra_args,
            ),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        stderr.close()
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], EMULATOR_START_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            log = (self.data_dir / "emulator.stderr.log").read_text()
            raise RuntimeError(f"Salesforce emulator did not start:\n{log[-3000:]}")
        self.info = json.loads(line)
        # A restart binds the same port, so clients keep their login and instance URLs.
        self._port = int(self.url.rsplit(":", 1)[1])
        self._http.verify = self.ca_file

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._http.close()

    # Named orgs (devkit/salesforce_emulator/orgs.py) -----------------------------------

    def add_org(self, name: str) -> OrgHandle:
        """Create an org of its own records, credentials, limits and faults."""
        return OrgHandle(self.admin("POST", "orgs", {"name": name}), self._http)

    def org(self, name: str) -> OrgHandle:
        """An org that exists (made by `add_org`, `--orgs` or before a restart)."""
        return OrgHandle(self.admin("GET", f"orgs/{name}"), self._http)

    def orgs(self) -> list[dict[str, Any]]:
        """Every named org: name, url, instance_url, client_id, api_calls, daily_limit."""
        return list(self.admin("GET", "orgs")["orgs"])

    def remove_org(self, name: str) -> None:
        self.admin("DELETE", f"orgs/{name}")
