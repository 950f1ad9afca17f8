"""The org registry's records: the Salesforce orgs a deployment writes to besides its
default org, and how to connect to each. Pure: no Kafka, no HTTP.

The registry is a compacted Kafka topic (`ACTIVITY_SYNC_TOPIC_ORGS`, default
`salesforce-orgs`) managed by `activity-sync orgs add|list|remove|check`
(streams/commands/orgs.py): the key is the org's name, the value an `OrgConnection` as
JSON, and a tombstone (no value) removes the org. The default org is not in it: it is
the deployment's `ACTIVITY_SYNC_SALESFORCE_*` settings, named `default` (reserved).

Guarantees:
- A record never holds a secret. `client_secret`, `password` and `security_token` are
  references, `env:NAME` (an environment variable of the process that connects) or
  `file:/absolute/path` (a mounted secret), resolved only by `OrgConnection.settings`;
  a value that is neither is refused when the record is built, so a pasted secret never
  reaches Kafka. Errors name the reference, never what it holds.
- `decode(encode(c))` gives back `c`; `decode` raises `BadOrgRecord` for a value that is
  not a record of this format (a reader skips it and says so, it never stops on it).
- `OrgConnection.settings` takes every connection field from the record and only the
  tuning (timeouts, retries, batch size, API version, sObject) from the default org's
  settings: nothing of the default org's credentials leaks into another org.

    >>> c = OrgConnection(name="acme", login_url="https://acme.my.salesforce.com",
    ...                   client_id="3MVG9", client_secret="env:ACME_SF_SECRET")
    >>> decode(*encode(c)) == c
    True
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from streams.salesforce.settings import LoginUrl, SalesforceSettings

RECORD_FORMAT = 1
DEFAULT_ORG = "default"  # the deployment's own ACTIVITY_SYNC_SALESFORCE_* org
ORG_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OrgSecretError(ValueError):
    """A secret reference that cannot be resolved here; the message names the reference
    (`env:NAME`, `file:PATH`) and why, never a value."""


def _is_reference(value: str) -> str:
    kind, _, target = value.partition(":")
    if kind == "env" and _ENV_NAME.match(target):
        return value
    if kind == "file" and target.startswith("/"):
        return value
    # Not echoed: what was given may be the secret itself.
    raise ValueError(
        "must be a reference, env:VARIABLE or file:/absolute/path, never the secret itself"
    )


# `env:NAME` or `file:/absolute/path`: where the connecting process finds the secret.
SecretRef = Annotated[str, AfterValidator(_is_reference)]


def _not_reserved(name: str) -> str:
    if name == DEFAULT_ORG:
        raise ValueError(
            f"{DEFAULT_ORG!r} is the deployment's own org (ACTIVITY_SYNC_SALESFORCE_*)"
        )
    return name


OrgName = Annotated[str, Field(pattern=ORG_NAME_PATTERN), AfterValidator(_not_reserved)]


def resolve(reference: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret a reference points at, from `environ` (default: this process's) or a
    file (stripped of surrounding whitespace, as `*_FILE` settings are)."""
    kind, _, target = reference.partition(":")
    if kind == "env":
        value = (os.environ if environ is None else environ).get(target)
        if not value:
            raise OrgSecretError(f"{reference}: the variable is not set")
        return value
    try:
        return Path(target).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise OrgSecretError(f"{reference}: cannot read it: {reason}") from None


class OrgConnection(BaseModel):
    """One registered org: where it logs in, with which flow and credentials (secrets by
    reference), who owns an Event whose owner the org refuses, and its field preset."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: OrgName
    login_url: LoginUrl
    auth: Literal["client_credentials", "password", "jwt"] = "client_credentials"
    client_id: str = ""
    client_secret: SecretRef | None = None
    username: str = ""
    password: SecretRef | None = None
    security_token: SecretRef | None = None
    # A path, itself a reference: the key file is read where the worker runs.
    private_key_file: str | None = None
    jwt_audience: str = ""
    fallback_owner_id: str = ""
    field_mapping: Literal["default", "oncehub"] = "default"
    # PEM bundle to trust instead of the system store (a test org, the emulator).
    ca_file: str | None = None

    @model_validator(mode="after")
    def _credentials_for_auth(self) -> Self:
        needs = {
            "client_credentials": ("client_id", "client_secret"),
            "password": ("client_id", "client_secret", "username", "password"),
            "jwt": ("client_id", "username", "private_key_file"),
        }[self.auth]
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth {self.auth} needs {', '.join(missing)}")
        return self

    def references(self) -> dict[str, str]:
        """The secret references set, by field (what `orgs list` may show)."""
        found = {
            "client_secret": self.client_secret,
            "password": self.password,
            "security_token": self.security_token,
        }
        return {name: ref for name, ref in found.items() if ref is not None}

    def secret_digest(self, environ: Mapping[str, str] | None = None) -> str:
        """A digest of what the references resolve to here (an `OrgSecretError` when one
        cannot be): it changes when a secret is rotated behind the same reference. Never
        the secrets themselves, so it may be kept and compared."""
        digest = hashlib.blake2b(digest_size=16)
        for name, ref in sorted(self.references().items()):
            digest.update(f"{name}\0{resolve(ref, environ)}\0".encode())
        return digest.hexdigest()

    def settings(
        self, base: SalesforceSettings, environ: Mapping[str, str] | None = None
    ) -> SalesforceSettings:
        """The Salesforce settings to connect to this org: its references resolved (an
        `OrgSecretError` when one cannot be), the tuning taken from `base`."""
        secrets = {
            name: SecretStr(resolve(ref, environ)) for name, ref in self.references().items()
        }
        return base.model_copy(
            update={
                "login_url": self.login_url,
                "auth": self.auth,
                "client_id": self.client_id,
                "client_secret": secrets.get("client_secret", SecretStr("")),
                "username": self.username,
                "password": secrets.get("password", SecretStr("")),
                "security_token": secrets.get("security_token", SecretStr("")),
                "private_key_file": Path(self.private_key_file) if self.private_key_file else None,
                "jwt_audience": self.jwt_audience,
                "fallback_owner_id": self.fallback_owner_id,
                "ca_file": Path(self.ca_file) if self.ca_file else None,
            }
        )


class BadOrgRecord(ValueError):
    """A registry record that is not an `OrgConnection` of this format; `reason` says why."""

    def __init__(self, key: bytes | None, reason: str) -> None:
        super().__init__(f"org record {key!r}: {reason}")
        self.reason = reason


def encode(connection: OrgConnection) -> tuple[bytes, bytes]:
    """The registry record (key, value) that adds or replaces `connection`."""
    body = connection.model_dump_json(exclude_defaults=True)
    return connection.name.encode(), f'{{"format":{RECORD_FORMAT},"org":{body}}}'.encode()


def tombstone(name: str) -> tuple[bytes, None]:
    """The record that removes org `name` (compaction then forgets it)."""
    return name.encode(), None


def decode(key: bytes | None, value: bytes | None) -> OrgConnection | None:
    """The connection a record holds, or None for a tombstone."""
    if value is None:
        return None
    try:
        envelope = RegistryRecord.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(record)"
        raise BadOrgRecord(key, f"{where}: {first['msg']}") from None
    if key is not None and key != envelope.org.name.encode():
        raise BadOrgRecord(key, f"the key differs from the org's name {envelope.org.name!r}")
    return envelope.org


class RegistryRecord(BaseModel):
    """A registry record's value: its format, then the connection."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    format: Literal[1]
    org: OrgConnection


@dataclass
class OrgRegistry:
    """The registry as read so far from its topic, record by record in topic order: the
    orgs registered, by name, and the records that did not decode (position and why),
    which a reader reports and skips rather than stopping on them."""

    orgs: dict[str, OrgConnection] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def apply(self, key: bytes | None, value: bytes | None, position: str = "") -> None:
        try:
            connection = decode(key, value)
        except BadOrgRecord as exc:
            self.unreadable.append(f"{position}: {exc.reason}" if position else exc.reason)
            return
        if connection is not None:
            self.orgs[connection.name] = connection
        elif key is not None:
            self.orgs.pop(key.decode(errors="replace"), None)


def registry(records: Iterable[tuple[bytes | None, bytes | None]]) -> OrgRegistry:
    """The registry as of the last of `records` (in topic order)."""
    found = OrgRegistry()
    for key, value in records:
        found.apply(key, value)
    return found
