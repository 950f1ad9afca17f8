"""The emulator keeps its credentials and CA across restarts; explicit values win."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from devkit.salesforce_emulator.server import RunningEmulator
from devkit.salesforce_emulator.tls_auth import (
    ENV_PREFIX,
    load_credentials,
    prepare_tls,
    provided_secrets,
)

NO_EXPLICIT: dict[str, str | None] = {}


@pytest.fixture(autouse=True)
def no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD", "SECURITY_TOKEN"):
        monkeypatch.delenv(ENV_PREFIX + name, raising=False)


def test_credentials_are_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_credentials(tmp_path, NO_EXPLICIT)
    assert load_credentials(tmp_path, NO_EXPLICIT) == first
    assert json.loads((tmp_path / "credentials.json").read_text())["org_id"] == first.org_id
    assert (tmp_path / "credentials.json").stat().st_mode & 0o077 == 0


def test_explicit_then_environment_then_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = load_credentials(tmp_path, NO_EXPLICIT)
    monkeypatch.setenv(ENV_PREFIX + "CLIENT_ID", "from-env")
    monkeypatch.setenv(ENV_PREFIX + "CLIENT_SECRET", "secret-from-env")
    loaded = load_credentials(tmp_path, {"client_id": "explicit", "client_secret": None})
    assert (loaded.client_id, loaded.client_secret) == ("explicit", "secret-from-env")
    assert (loaded.password, loaded.user_id) == (stored.password, stored.user_id)


def test_the_ca_is_reused_and_the_certificate_follows_the_names(tmp_path: Path) -> None:
    context, ca_file = prepare_tls(tmp_path, ["localhost", "127.0.0.1"])
    assert isinstance(context, ssl.SSLContext)
    ca, server = ca_file.read_bytes(), (tmp_path / "server.pem").read_bytes()
    prepare_tls(tmp_path, ["127.0.0.1", "localhost"])
    assert (tmp_path / "server.pem").read_bytes() == server
    prepare_tls(tmp_path, ["localhost", "salesforce"])
    assert ca_file.read_bytes() == ca
    assert (tmp_path / "server.pem").read_bytes() != server
    assert json.loads((tmp_path / "server-names.json").read_text()) == ["localhost", "salesforce"]


def test_only_generated_secrets_are_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21, item 13: the ready line printed the client secret read from compose's
    secret file, so `docker compose logs` showed it. A secret given to the emulator is
    named by where it came from; one it generated is printed (it is nowhere else)."""

    async def close() -> None:
        pass

    def ready(explicit: dict[str, str | None], origins: dict[str, str]) -> dict[str, object]:
        credentials = load_credentials(tmp_path, explicit)
        running = RunningEmulator(
            "https://127.0.0.1:1",
            tmp_path / "ca.pem",
            credentials,
            "62.0",
            close,
            provided_secrets=provided_secrets(explicit, origins),
        )
        return running.ready_line()

    generated = ready(NO_EXPLICIT, {})
    stored = load_credentials(tmp_path, NO_EXPLICIT)
    assert generated["client_secret"] == stored.client_secret
    assert "client_secret_from" not in generated

    from_file = ready(
        {"client_secret": "file-s3cret"}, {"client_secret": "--client-secret-file /run/s"}
    )
    assert "file-s3cret" not in json.dumps(from_file)
    assert from_file["client_secret_from"] == "--client-secret-file /run/s"
    assert from_file["password"] == stored.password  # generated: printed
    assert "file-s3cret" not in (tmp_path / "credentials.json").read_text()

    monkeypatch.setenv(ENV_PREFIX + "PASSWORD", "env-pa55")
    from_env = ready(NO_EXPLICIT, {})
    assert "env-pa55" not in json.dumps(from_env)
    assert from_env["password_from"] == f"${ENV_PREFIX}PASSWORD"
    assert from_env["client_secret"] == stored.client_secret
