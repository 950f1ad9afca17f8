"""Deployment files and docs name only settings the app knows.

A misspelt ACTIVITY_SYNC_* variable is silently ignored by pydantic-settings
(`extra="ignore"`), so a typo in docker-compose.yml or the README would run with a
default instead: these tests catch it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from devkit.salesforce_emulator.tls_auth import ENV_PREFIX as EMULATOR_PREFIX
from streams.salesforce.settings import ENV_PREFIX as SALESFORCE_PREFIX
from streams.salesforce.settings import SECRET_FIELDS, SalesforceSettings
from streams.worker.settings import Settings, TopicNames

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bACTIVITY_SYNC_[A-Z0-9_]+\b")


def known_settings() -> set[str]:
    names = {
        f"ACTIVITY_SYNC_{field.upper()}"
        for field in Settings.model_fields
        if field not in ("topics", "salesforce")
    }
    names |= {f"ACTIVITY_SYNC_TOPIC_{field.upper()}" for field in TopicNames.model_fields}
    names |= {f"{SALESFORCE_PREFIX}{field.upper()}" for field in SalesforceSettings.model_fields}
    names |= {f"{SALESFORCE_PREFIX}{field.upper()}_FILE" for field in SECRET_FIELDS}
    names |= {
        f"{EMULATOR_PREFIX}{field}"
        for field in ("CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD", "SECURITY_TOKEN")
    }
    return names


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(name): str(value) for name, value in env.items()}


def test_known_settings_cover_every_field() -> None:
    names = known_settings()
    assert "ACTIVITY_SYNC_BROKER_URL" in names
    assert "ACTIVITY_SYNC_TOPIC_PROJECTIONS" in names
    assert "ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET_FILE" in names
    assert "ACTIVITY_SYNC_TOPICS" not in names  # nested models have their own prefix


def test_compose_has_kafka_the_emulator_and_two_workers() -> None:
    services = compose()["services"]
    assert {"kafka", "kafka-init", "salesforce", "worker-1", "worker-2"} <= set(services)
    assert "broker,controller" in environment(services["kafka"])["KAFKA_PROCESS_ROLES"]  # KRaft
    web_hosts = {
        environment(services[w])["ACTIVITY_SYNC_WEB_HOST"] for w in ("worker-1", "worker-2")
    }
    assert web_hosts == {"worker-1", "worker-2"}


def test_compose_names_only_known_settings() -> None:
    known = known_settings()
    for name, service in compose()["services"].items():
        unknown = {var for var in environment(service) if var.startswith("ACTIVITY_SYNC_")} - known
        assert not unknown, f"service {name}: unknown settings {sorted(unknown)}"


def test_worker_environment_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    env = environment(compose()["services"]["worker-1"])
    for name, value in env.items():
        if not name.endswith("_FILE"):  # the secret file exists only in the container
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.broker_profile == "kafka"
    assert settings.salesforce.login_url == "https://salesforce:8443"
    assert settings.web_host == "worker-1"


def test_topics_are_created_with_the_workers_partition_count() -> None:
    services = compose()["services"]
    script = "\n".join(services["kafka-init"]["command"])
    for topic in TopicNames.model_fields.values():
        assert str(topic.default) in script
    partitions = environment(services["worker-1"])["ACTIVITY_SYNC_PARTITIONS"]
    assert f"--partitions {partitions}" in script


def test_emulator_command_uses_only_flags_the_cli_has() -> None:
    from devkit.commands import salesforce_emulator

    command = [str(part) for part in compose()["services"]["salesforce"]["command"]]
    assert command[0] == "salesforce-emulator"
    click_command: click.Command = salesforce_emulator._click
    flags = {opt for param in click_command.params for opt in param.opts}
    used = {part for part in command[1:] if part.startswith("--")}
    assert used <= flags, sorted(used - flags)
    assert command[command.index("--public-url") + 1] == "https://salesforce:8443"


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md", "docs/salesforce.md"])
def test_docs_name_only_known_settings(doc: str) -> None:
    text = (REPO / doc).read_text()
    # A trailing `_` or `*` marks a family (ACTIVITY_SYNC_SALESFORCE_*), not a setting.
    named = {m.group(0) for m in NAME.finditer(text) if text[m.end() : m.end() + 1] not in "*_{"}
    unknown = {name for name in named if not name.endswith("_")} - known_settings()
    assert not unknown, f"{doc}: unknown settings {sorted(unknown)}"


def test_readme_documents_every_setting() -> None:
    text = (REPO / "README.md").read_text()
    missing = {name for name in known_settings() if name not in text}
    assert not missing, f"README lacks {sorted(missing)}"
