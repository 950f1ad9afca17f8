"""Settings: `.env` fills every nested setting, `*_FILE` secrets, and no error, repr or
one-line message shows a secret (streams/worker/settings.py, streams/salesforce/settings.py);
the sections keep every variable as it was, and the README documents them section by section."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from streams.commands.base import settings_problem
from streams.salesforce.settings import SecretFileError
from streams.worker.settings import SECTIONS, Settings

REPO = Path(__file__).resolve().parents[3]
SECRETS = ("hunter2-PASSWORD", "hunter2-CLIENT-SECRET", "hunter2-FROM-FILE", "hunter2-WEB")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ACTIVITY_SYNC_* from the caller's environment; cwd a temp dir (no .env)."""
    for name in list(os.environ):
        if name.startswith("ACTIVITY_SYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dotenv_fills_nested_salesforce_and_topic_settings(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("hunter2-FROM-FILE\n")
    (tmp_path / ".env").write_text(
        "ACTIVITY_SYNC_PARTITIONS=6\n"
        "ACTIVITY_SYNC_TOPIC_EVENTS=other-events\n"
        "ACTIVITY_SYNC_SALESFORCE_LOGIN_URL=https://example.my.salesforce.com/\n"
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_ID=from-dotenv\n"
        f"ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET_FILE={tmp_path / 'secret.txt'}\n"
        "ACTIVITY_SYNC_WEB_TOKEN=hunter2-WEB\n"
    )
    settings = Settings()
    assert settings.partitions == 6
    assert settings.topics.events == "other-events"
    assert settings.salesforce.login_url == "https://example.my.salesforce.com"
    assert settings.salesforce.client_id == "from-dotenv"
    assert settings.salesforce.client_secret.get_secret_value() == "hunter2-FROM-FILE"
    assert settings.web_token.get_secret_value() == "hunter2-WEB"
    for secret in SECRETS:
        assert secret not in repr(settings)
        assert secret not in str(settings)


def test_the_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("ACTIVITY_SYNC_SALESFORCE_CLIENT_ID=from-dotenv\n")
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_CLIENT_ID", "from-env")
    assert Settings().salesforce.client_id == "from-env"


def test_web_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("hunter2-WEB\n")
    monkeypatch.setenv("ACTIVITY_SYNC_WEB_TOKEN_FILE", str(tmp_path / "token"))
    assert Settings().web_token.get_secret_value() == "hunter2-WEB"


def test_a_password_flow_without_username_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_AUTH", "password")
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_PASSWORD", "hunter2-PASSWORD")
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET", "hunter2-CLIENT-SECRET")
    with pytest.raises(ValidationError) as caught:
        Settings()
    shown = [str(caught.value), repr(caught.value), settings_problem(caught.value)]
    assert "ACTIVITY_SYNC_SALESFORCE_USERNAME" in shown[2]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ACTIVITY_SYNC_PARTITIONS", "abc", "ACTIVITY_SYNC_PARTITIONS: Input should be"),
        ("ACTIVITY_SYNC_BROKER_URL", "", "ACTIVITY_SYNC_BROKER_URL: no Kafka broker"),
        ("ACTIVITY_SYNC_SALESFORCE_TIMEOUT_S", "x", "ACTIVITY_SYNC_SALESFORCE_TIMEOUT_S: Input"),
        (
            "ACTIVITY_SYNC_MIN_INSYNC_REPLICAS",
            "2",  # the replication factor is 1 by default
            "ACTIVITY_SYNC_MIN_INSYNC_REPLICAS: 2 exceeds the replication factor (1)",
        ),
    ],
)
def test_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = settings_problem(caught.value)
    assert line.startswith(expected), line
    assert "\n" not in line


def test_defaults_are_production_s() -> None:
    settings = Settings()
    assert settings.broker_profile == "kafka"  # the dev kit names the embedded one itself
    assert settings.topic_config() == {}  # min.insync.replicas: the broker's default


def test_min_insync_replicas_becomes_the_topics_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVITY_SYNC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("ACTIVITY_SYNC_MIN_INSYNC_REPLICAS", "2")
    assert Settings().topic_config() == {"min.insync.replicas": "2"}


def test_a_missing_secret_file_names_the_variable_and_path_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_PASSWORD_FILE", str(tmp_path / "nope"))
    with pytest.raises(SecretFileError) as caught:
        Settings()
    assert settings_problem(caught.value) == (
        f"ACTIVITY_SYNC_SALESFORCE_PASSWORD_FILE: cannot read {tmp_path / 'nope'}: "
        "No such file or directory"
    )


# Every worker setting as it was while Settings was one flat class (generated from it): the
# variable an operator sets, its type, default and constraints. Splitting the class into
# sections must not change one of them, or a deployment's environment would silently mean
# something else.
BEFORE_SECTIONS = {
    "ACTIVITY_SYNC_APP_ID": ("str", "'booking-activity-sync'", ()),
    "ACTIVITY_SYNC_APP_VERSION": ("int", "1", ()),
    "ACTIVITY_SYNC_BROKER_URL": ("str", "'kafka://127.0.0.1:9092'", ()),
    "ACTIVITY_SYNC_BROKER_PROFILE": ("str", "'kafka'", ("_known_profile",)),
    "ACTIVITY_SYNC_PARTITIONS": ("int", "4", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_REPLICATION_FACTOR": ("int", "1", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_MIN_INSYNC_REPLICAS": ("int | None", "None", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_STORE": ("str", "'rocksdb://'", ()),
    "ACTIVITY_SYNC_DATA_DIR": ("Path", "PosixPath('var/worker')", ()),
    "ACTIVITY_SYNC_WEB_ENABLED": ("bool", "True", ()),
    "ACTIVITY_SYNC_WEB_HOST": ("str", "'127.0.0.1'", ()),
    "ACTIVITY_SYNC_WEB_BIND": ("str", "'127.0.0.1'", ()),
    "ACTIVITY_SYNC_WEB_PORT": ("int", "6066", ()),
    "ACTIVITY_SYNC_WEB_TOKEN": ("SecretStr", "SecretStr('')", ()),
    "ACTIVITY_SYNC_STARTUP_TIMEOUT": ("float", "30.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_STARTUP_ORG_CHECK": ("bool", "True", ()),
    "ACTIVITY_SYNC_FIELD_MAPPING": ("typing.Literal['default', 'oncehub']", "'default'", ()),
    "ACTIVITY_SYNC_FOLD_BATCH_SIZE": ("int", "1000", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_FOLD_BATCH_WINDOW": ("float", "0.05", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_FOLD_CATCH_UP_BATCH_SIZE": ("int", "25000", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_FOLD_CATCH_UP_WINDOW": ("float", "3.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_SINK_BATCH_SIZE": ("int", "1000", ("Ge(ge=1)", "Le(le=10000)")),
    "ACTIVITY_SYNC_SINK_BATCH_WINDOW": ("float", "0.5", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_SINK_ATTEMPT_DEADLINE": ("float", "10.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_SINK_LIMIT_PAUSE": ("float", "60.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_COMPLETION_GRACE": ("float", "3600.0", ("Ge(ge=0)",)),
    "ACTIVITY_SYNC_COMPLETION_CHECK_INTERVAL": ("float", "30.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_RECONCILE_INTERVAL": ("float", "60.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_STATE_RETENTION_DAYS": ("float", "400.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_RETENTION_CHECK_INTERVAL": ("float", "3600.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_ROCKSDB_BLOCK_CACHE_MB": ("int", "8", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_ROCKSDB_WRITE_BUFFER_MB": ("int", "4", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_ROCKSDB_MAX_WRITE_BUFFERS": ("int", "2", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_ROCKSDB_MEMORY_MB": ("int", "64", ("Ge(ge=0)",)),
    "ACTIVITY_SYNC_MALLOC_TRIM_INTERVAL": ("float", "30.0", ("Ge(ge=0)",)),
    "ACTIVITY_SYNC_MALLOC_ARENA_MAX": ("int", "2", ("Ge(ge=0)",)),
    "ACTIVITY_SYNC_SINK_PROGRESS_MAX_ENTRIES": ("int", "100000", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_MEMORY_PROFILE_FRAMES": ("int", "0", ("Ge(ge=0)", "Le(le=100)")),
    "ACTIVITY_SYNC_TOPICS": ("TopicNames", "factory TopicNames", ()),
    "ACTIVITY_SYNC_SALESFORCE": ("SalesforceSettings", "factory SalesforceSettings", ()),
}


def _describe(field: FieldInfo) -> tuple[str, str, tuple[str, ...]]:
    annotation = field.annotation
    kind = annotation.__name__ if isinstance(annotation, type) else repr(annotation)
    if field.default_factory is not None:
        default = f"factory {getattr(field.default_factory, '__name__', '?')}"
    else:
        default = repr(field.default)
    constraints = tuple(
        getattr(getattr(meta, "func", None), "__name__", None) or repr(meta)
        for meta in field.metadata
    )
    return kind, default, constraints


def test_every_variable_type_default_and_constraint_is_as_before() -> None:
    now = {
        f"ACTIVITY_SYNC_{name.upper()}": _describe(f) for name, f in Settings.model_fields.items()
    }
    assert now == BEFORE_SECTIONS


def test_the_cross_field_validators_are_as_before() -> None:
    validators = Settings.__pydantic_decorators__.field_validators
    assert {name: d.info.fields for name, d in validators.items()} == {
        "_within_replication": ("min_insync_replicas",),
        "_names_a_broker": ("broker_url",),
    }
    assert Settings.secret_fields == ("web_token",)
    config = Settings.model_config
    assert (config["env_prefix"], config["env_file"], config["extra"]) == (
        "ACTIVITY_SYNC_",
        ".env",
        "ignore",
    )
    assert config["hide_input_in_errors"]
    assert config["validate_default"]


def test_every_field_belongs_to_exactly_one_section() -> None:
    owners: dict[str, list[str]] = {}
    for section in SECTIONS:
        for name in section.model_fields:
            owners.setdefault(name, []).append(section.__name__)
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}
    # The nested settings (own prefixes) are Settings' own; every other field is a section's.
    assert list(Settings.model_fields) == [*owners, "topics", "salesforce"]
    assert set(SECTIONS) == {base for base in Settings.__bases__ if base in SECTIONS}
    assert len(Settings.__bases__) == len(SECTIONS) + 1  # and SettingsWithSecretFiles


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: section.__name__)
def test_every_section_and_field_says_what_it_is_for(section: type[BaseModel]) -> None:
    assert (section.__doc__ or "").strip()
    undocumented = [n for n, f in section.model_fields.items() if not (f.description or "").strip()]
    assert undocumented == []
    # A section is read only through Settings: a prefix of its own would rename variables.
    assert "env_prefix" not in section.model_config


def _readme_sections() -> dict[str, list[str]]:
    """README's Configuration: the variables of each `### … (`Class`)` table, in order."""
    text = (REPO / "README.md").read_text()
    configuration = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, list[str]] = {}
    for part in configuration.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        owner = re.search(r"\(`(\w+)`\)", heading)
        if owner is not None:
            tables[owner.group(1)] = re.findall(r"^\| `(ACTIVITY_SYNC_\w+)`", body, re.MULTILINE)
    return tables


def test_the_readme_lists_each_sections_fields_under_it() -> None:
    tables = _readme_sections()
    for section in SECTIONS:
        expected = [f"ACTIVITY_SYNC_{name.upper()}" for name in section.model_fields]
        assert tables.get(section.__name__) == expected, section.__name__
    for nested, prefix in (
        ("topics", "ACTIVITY_SYNC_TOPIC_"),
        ("salesforce", "ACTIVITY_SYNC_SALESFORCE_"),
    ):
        model = Settings.model_fields[nested].annotation
        assert isinstance(model, type)
        expected = [f"{prefix}{name.upper()}" for name in model.model_fields]
        assert tables.get(model.__name__) == expected, nested
