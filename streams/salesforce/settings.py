"""Salesforce connection settings, from `ACTIVITY_SYNC_SALESFORCE_*` environment variables.

Secrets (client_secret, password, security_token) can also come from files: set
`ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET_FILE=/run/secrets/sf_secret` (the Docker/Kubernetes
convention); the file's content, stripped of surrounding whitespace, is the value. They
are `SecretStr`, so neither `repr()` nor logging the settings shows them, and validation
errors hide their input (`hide_input_in_errors`). Like the worker's settings, these are
also read from a `.env` file in the working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "ACTIVITY_SYNC_SALESFORCE_"
SECRET_FIELDS = ("client_secret", "password", "security_token")


class SecretFileError(ValueError):
    """A `*_FILE` setting names a file that cannot be read; the message names the
    variable and the path, never the content."""


class SecretFilesSource(PydanticBaseSettingsSource):
    """`<PREFIX><FIELD>_FILE` names a file holding the value of a secret field: looked
    up in the environment, then in the env file (`.env`)."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        prefix: str,
        fields: tuple[str, ...],
        dotenv: PydanticBaseSettingsSource | None = None,
    ) -> None:
        super().__init__(settings_cls)
        self.prefix = prefix
        self.fields = fields
        # DotEnvSettingsSource.env_vars: the env file's variables, names lowercased.
        self.dotenv_vars: Mapping[str, str | None] = getattr(dotenv, "env_vars", None) or {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name not in self.fields:
            return None, field_name, False
        name = f"{self.prefix}{field_name.upper()}_FILE"
        path = os.environ.get(name) or self.dotenv_vars.get(name.lower())
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise SecretFileError(f"{name}: cannot read {path}: {reason}") from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(info, name)
            if value is not None:
                values[key] = value
        return values


class SettingsWithSecretFiles(BaseSettings):
    """Settings whose `secret_fields` may also come from `<env_prefix><FIELD>_FILE`.

    Subclasses set their `env_prefix`; pydantic merges it into this config."""

    # One `.env` for the worker's and the Salesforce settings; a validation error never
    # echoes its input (it may be a secret).
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )
    secret_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments, then env vars, then the env file, then *_FILE secrets.
        prefix = str(cls.model_config.get("env_prefix", ""))
        secret_files = SecretFilesSource(settings_cls, prefix, cls.secret_fields, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, secret_files


def _https_without_trailing_slash(value: str) -> str:
    # Salesforce answers HTTPS only: an http:// URL would only time out in retries.
    if not value.lower().startswith("https://"):
        raise ValueError("must be an https:// URL (Salesforce speaks HTTPS only)")
    return value.rstrip("/")


# Where an org's tokens come from: https://, no trailing slash (`{url}/services/...`).
LoginUrl = Annotated[str, AfterValidator(_https_without_trailing_slash)]


class SalesforceSettings(SettingsWithSecretFiles):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)
    secret_fields = SECRET_FIELDS

    login_url: LoginUrl = Field(
        default="https://login.salesforce.com",
        description="where tokens come from: login/test.salesforce.com, My Domain, emulator",
    )
    auth: Literal["client_credentials", "password", "jwt"] = "client_credentials"
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    username: str = ""
    password: SecretStr = SecretStr("")
    security_token: SecretStr = SecretStr("")
    private_key_file: Path | None = Field(
        default=None, description="JWT bearer flow: the PEM private key signing assertions"
    )
    jwt_audience: str = Field(
        default="",
        description="JWT bearer flow: aud claim (empty: the login URL; "
        "https://test.salesforce.com for a sandbox)",
    )
    fallback_owner_id: str = Field(
        default="",
        description="OwnerId for an Event whose owner Salesforce refuses (inactive, unknown) "
        "and that has no owner yet (empty: the integration user)",
    )
    api_version: str = Field(default="62.0", pattern=r"^\d+\.\d$")
    ca_file: Path | None = Field(
        default=None, description="PEM bundle to trust instead of the system store"
    )
    sobject: str = "Event"
    external_id_field: str = "Booking_Id__c"
    create_missing_leads: bool = False
    lead_company: str = Field(
        default="[not provided]", description="Company for Leads created from a booking"
    )
    timeout_s: float = Field(default=30.0, gt=0, description="per HTTP request")
    retry_base_s: float = Field(default=0.3, gt=0)
    retry_cap_s: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=200, ge=1, le=200, description="records per collection")
    related_cache_size: int = Field(default=10_000, ge=0)
    related_cache_ttl_s: float = Field(default=3600.0, ge=0)
    related_miss_ttl_s: float = Field(
        default=300.0,
        ge=0,
        description="how long an email without Contact or Lead is remembered (0: not)",
    )

    @model_validator(mode="after")
    def _credentials_for_auth(self) -> SalesforceSettings:
        if self.auth == "jwt" and not (self.username and self.private_key_file):
            raise ValueError(
                f"{ENV_PREFIX}AUTH=jwt needs {ENV_PREFIX}USERNAME (the integration user) "
                f"and {ENV_PREFIX}PRIVATE_KEY_FILE"
            )
        if self.auth == "password" and not self.username:
            raise ValueError(
                f"{ENV_PREFIX}AUTH=password needs {ENV_PREFIX}USERNAME "
                f"(and {ENV_PREFIX}PASSWORD, {ENV_PREFIX}SECURITY_TOKEN)"
            )
        return self
