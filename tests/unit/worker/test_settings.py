"""Settings: `.env` fills every nested setting, `*_FILE` secrets, and no error, repr or
one-line message shows a secret (streams/worker/settings.py, streams/salesforce/settings.py);
the nested sections keep every variable as it was and read no other, and the README documents
them section by section."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from streams.commands.base import settings_problem
from streams.salesforce.settings import SecretFileError
from streams.worker.settings import (
    SECTIONS,
    BrokerSection,
    FoldSection,
    Section,
    Settings,
    WebSection,
    nested_settings,
    variable,
    variables,
)

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
    assert settings.broker.partitions == 6
    assert settings.topics.events == "other-events"
    assert settings.salesforce.login_url == "https://example.my.salesforce.com"
    assert settings.salesforce.client_id == "from-dotenv"
    assert settings.salesforce.client_secret.get_secret_value() == "hunter2-FROM-FILE"
    assert settings.web.token.get_secret_value() == "hunter2-WEB"
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
    assert Settings().web.token.get_secret_value() == "hunter2-WEB"


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
    assert settings.broker.profile == "kafka"  # the dev kit names the embedded one itself
    assert settings.broker.topic_config() == {}  # min.insync.replicas: the broker's default


def test_min_insync_replicas_becomes_the_topics_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVITY_SYNC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("ACTIVITY_SYNC_MIN_INSYNC_REPLICAS", "2")
    assert Settings().broker.topic_config() == {"min.insync.replicas": "2"}


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
    "ACTIVITY_SYNC_PRODUCER_LINGER_MS": ("int", "5", ("Ge(ge=0)", "Le(le=1000)")),
    "ACTIVITY_SYNC_PRODUCER_MAX_BATCH_BYTES": (
        "int",
        "262144",
        ("Ge(ge=1024)", "Le(le=1000000)"),
    ),
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
    "ACTIVITY_SYNC_SINK_MAX_CALLS": ("int", "32", ("Ge(ge=1)", "Le(le=256)")),
    "ACTIVITY_SYNC_COMPLETION_GRACE": ("float", "3600.0", ("Ge(ge=0)",)),
    "ACTIVITY_SYNC_COMPLETION_CHECK_INTERVAL": ("float", "30.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_RECONCILE_INTERVAL": ("float", "60.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_STATE_RETENTION_DAYS": ("float", "400.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_RETENTION_CHECK_INTERVAL": ("float", "3600.0", ("Gt(gt=0)",)),
    "ACTIVITY_SYNC_ROCKSDB_BLOCK_CACHE_MB": ("int", "8", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_ROCKSDB_WRITE_BUFFER_MB": ("int", "4", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_ROCKSDB_MAX_WRITE_BUFFERS": ("int", "2", ("Ge(ge=1)",)),
    "ACTIVITY_SYNC_ROCKSDB_MEMORY_MB": ("int", "64", ("Ge(ge=0)",)),
    "ACTIVITY_SYNC_ROCKSDB_BLOOM_BITS": ("int", "10", ("Ge(ge=1)", "Le(le=32)")),
    "ACTIVITY_SYNC_ROCKSDB_LEVEL0_FILES": ("int", "4", ("Ge(ge=2)", "Le(le=64)")),
    "ACTIVITY_SYNC_ROCKSDB_WAL": ("bool", "False", ()),
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


def _fields_by_variable() -> dict[str, FieldInfo]:
    """Each section's fields by the variable they are read from; the nested settings with
    prefixes of their own by the name the flat class gave them."""
    found: dict[str, FieldInfo] = {}
    for attribute, model in nested_settings(Settings).items():
        if model in SECTIONS:
            for name, field in model.model_fields.items():
                found[variable(model, name)] = field
        else:
            found[f"ACTIVITY_SYNC_{attribute.upper()}"] = Settings.model_fields[attribute]
    return found


def test_every_variable_type_default_and_constraint_is_as_before() -> None:
    now = {name: _describe(field) for name, field in _fields_by_variable().items()}
    assert now == BEFORE_SECTIONS


# A value for each variable other than its default (min.insync.replicas 2 needs the
# replication factor 3 set with it).
NOT_DEFAULT = {
    "ACTIVITY_SYNC_APP_ID": "other-app",
    "ACTIVITY_SYNC_APP_VERSION": "2",
    "ACTIVITY_SYNC_BROKER_URL": "kafka://other:9092",
    "ACTIVITY_SYNC_BROKER_PROFILE": "embedded",
    "ACTIVITY_SYNC_PARTITIONS": "6",
    "ACTIVITY_SYNC_REPLICATION_FACTOR": "3",
    "ACTIVITY_SYNC_MIN_INSYNC_REPLICAS": "2",
    "ACTIVITY_SYNC_PRODUCER_LINGER_MS": "20",
    "ACTIVITY_SYNC_PRODUCER_MAX_BATCH_BYTES": "65536",
    "ACTIVITY_SYNC_STORE": "memory://",
    "ACTIVITY_SYNC_DATA_DIR": "/srv/worker",
    "ACTIVITY_SYNC_WEB_ENABLED": "false",
    "ACTIVITY_SYNC_WEB_HOST": "worker-1",
    "ACTIVITY_SYNC_WEB_BIND": "0.0.0.0",
    "ACTIVITY_SYNC_WEB_PORT": "7000",
    "ACTIVITY_SYNC_WEB_TOKEN": "hunter2-WEB",
    "ACTIVITY_SYNC_STARTUP_TIMEOUT": "5",
    "ACTIVITY_SYNC_STARTUP_ORG_CHECK": "false",
    "ACTIVITY_SYNC_FIELD_MAPPING": "oncehub",
    "ACTIVITY_SYNC_FOLD_BATCH_SIZE": "10",
    "ACTIVITY_SYNC_FOLD_BATCH_WINDOW": "0.5",
    "ACTIVITY_SYNC_FOLD_CATCH_UP_BATCH_SIZE": "100",
    "ACTIVITY_SYNC_FOLD_CATCH_UP_WINDOW": "1.5",
    "ACTIVITY_SYNC_SINK_BATCH_SIZE": "20",
    "ACTIVITY_SYNC_SINK_BATCH_WINDOW": "0.25",
    "ACTIVITY_SYNC_SINK_ATTEMPT_DEADLINE": "5",
    "ACTIVITY_SYNC_SINK_LIMIT_PAUSE": "30",
    "ACTIVITY_SYNC_SINK_MAX_CALLS": "8",
    "ACTIVITY_SYNC_COMPLETION_GRACE": "60",
    "ACTIVITY_SYNC_COMPLETION_CHECK_INTERVAL": "5",
    "ACTIVITY_SYNC_RECONCILE_INTERVAL": "10",
    "ACTIVITY_SYNC_STATE_RETENTION_DAYS": "30",
    "ACTIVITY_SYNC_RETENTION_CHECK_INTERVAL": "60",
    "ACTIVITY_SYNC_ROCKSDB_BLOCK_CACHE_MB": "16",
    "ACTIVITY_SYNC_ROCKSDB_WRITE_BUFFER_MB": "8",
    "ACTIVITY_SYNC_ROCKSDB_MAX_WRITE_BUFFERS": "3",
    "ACTIVITY_SYNC_ROCKSDB_MEMORY_MB": "0",
    "ACTIVITY_SYNC_ROCKSDB_BLOOM_BITS": "16",
    "ACTIVITY_SYNC_ROCKSDB_LEVEL0_FILES": "8",
    "ACTIVITY_SYNC_ROCKSDB_WAL": "true",
    "ACTIVITY_SYNC_MALLOC_TRIM_INTERVAL": "0",
    "ACTIVITY_SYNC_MALLOC_ARENA_MAX": "4",
    "ACTIVITY_SYNC_SINK_PROGRESS_MAX_ENTRIES": "10",
    "ACTIVITY_SYNC_MEMORY_PROFILE_FRAMES": "5",
}


def _values(settings: Settings) -> dict[str, object]:
    return {
        f"{attribute}.{name}": value
        for attribute in nested_settings(Settings)
        for name, value in getattr(settings, attribute)
    }


@pytest.mark.parametrize("where", ["environment", "env file"])
def test_every_variable_sets_its_field_and_no_other(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(NOT_DEFAULT) == {name for name in BEFORE_SECTIONS if name in variables()}
    defaults = _values(Settings())
    for name, value in NOT_DEFAULT.items():
        extra = {"ACTIVITY_SYNC_REPLICATION_FACTOR": "3"} if "MIN_INSYNC" in name else {}
        lines = {name: value, **extra}
        if where == "environment":
            for key, text in lines.items():
                monkeypatch.setenv(key, text)
        else:
            (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        changed = {
            path
            for path, now in _values(Settings()).items()
            if now != defaults[path] and str(now) != str(defaults[path])
        }
        assert changed == {variables()[key] for key in lines}, name
        for key in lines:
            monkeypatch.delenv(key, raising=False)
        (tmp_path / ".env").unlink(missing_ok=True)


def test_a_field_s_own_name_is_no_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # A field whose variable is its alias is passed by name (`url=`); pydantic-settings
    # would then also read <prefix><NAME>, a variable no one documented.
    aliased = [
        f"{section.model_config.get('env_prefix', '')}{name}".upper()
        for section in SECTIONS
        for name, field in section.model_fields.items()
        if field.validation_alias
    ]
    assert "ACTIVITY_SYNC_URL" in aliased  # the store's and the broker's URLs
    defaults = _values(Settings())
    for name in aliased:
        monkeypatch.setenv(name, "not-a-setting")
    assert _values(Settings()) == defaults


def test_arguments_set_some_fields_the_environment_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIVITY_SYNC_FOLD_BATCH_WINDOW", "0.5")
    (tmp_path / ".env").write_text("ACTIVITY_SYNC_FOLD_CATCH_UP_WINDOW=1.5\n")
    fold = Settings(fold={"batch_size": 10}).fold
    assert (fold.batch_size, fold.batch_window, fold.catch_up_window) == (10, 0.5, 1.5)
    # No env file reaches any section; a section given whole is kept whole.
    fold = Settings(_env_file=None, fold={"batch_size": 10}).fold  # type: ignore[call-arg]
    assert (fold.batch_size, fold.batch_window, fold.catch_up_window) == (10, 0.5, 3.0)
    given = FoldSection(_env_file=None, batch_size=7)  # type: ignore[call-arg]
    assert Settings(fold=given).fold is given


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"sink_batch_size": 10}, "ACTIVITY_SYNC_SINK_BATCH_SIZE: Extra inputs are not permitted"),
        ({"sink": {"sink_batch_size": 10}}, "SinkSection.sink_batch_size: Extra inputs are not"),
        ({"sink": {"batch_size": 0}}, "ACTIVITY_SYNC_SINK_BATCH_SIZE: Input should be greater"),
        ({"broker": {"partitions": 0}}, "ACTIVITY_SYNC_PARTITIONS: Input should be greater"),
    ],
)
def test_a_wrong_argument_is_refused_by_its_variable(
    arguments: dict[str, object], expected: str
) -> None:
    # A flat name of before the sections, or a field the section lacks, is no default.
    with pytest.raises(ValidationError) as caught:
        Settings(**arguments)  # type: ignore[arg-type]
    assert settings_problem(caught.value).startswith(expected)


def test_the_cross_field_validators_are_as_before_within_their_section() -> None:
    validators = {
        name: (section, d.info.fields)
        for section in SECTIONS
        for name, d in section.__pydantic_decorators__.field_validators.items()
    }
    assert validators == {
        "_within_replication": (BrokerSection, ("min_insync_replicas",)),
        "_names_a_broker": (BrokerSection, ("url",)),
    }
    assert {s: s.secret_fields for s in SECTIONS if s.secret_fields} == {WebSection: ("token",)}
    for section in SECTIONS:
        config = section.model_config
        assert str(config["env_prefix"]).startswith("ACTIVITY_SYNC_"), section
        assert (config["env_file"], config["extra"]) == (".env", "ignore"), section
        assert config["hide_input_in_errors"], section
        assert config["validate_default"], section
    assert Settings.model_config["hide_input_in_errors"]


def test_settings_is_its_sections_then_the_topics_and_salesforce() -> None:
    nested = nested_settings(Settings)
    assert list(nested) == list(Settings.model_fields)  # no field of its own
    assert list(nested.values())[: len(SECTIONS)] == list(SECTIONS)
    assert list(nested)[len(SECTIONS) :] == ["topics", "salesforce"]
    assert all(issubclass(section, Section) for section in SECTIONS)
    # No two fields read one variable.
    fields = sum(len(model.model_fields) for model in nested.values())
    secrets = sum(len(getattr(model, "secret_fields", ())) for model in nested.values())
    assert len(variables()) == fields + secrets  # and each secret's *_FILE


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: section.__name__)
def test_every_section_and_field_says_what_it_is_for(section: type[Section]) -> None:
    assert (section.__doc__ or "").strip()
    undocumented = [n for n, f in section.model_fields.items() if not (f.description or "").strip()]
    assert undocumented == []


def _readme_sections() -> dict[str, tuple[str, list[str]]]:
    """README's Configuration: the attribute and variables of each
    `### … (`Class`, `settings.attribute`)` table, in order."""
    text = (REPO / "README.md").read_text()
    configuration = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, tuple[str, list[str]]] = {}
    for part in configuration.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        owner = re.search(r"\(`(\w+)`, `settings\.(\w+)`\)", heading)
        if owner is not None:
            names = re.findall(r"^\| `(ACTIVITY_SYNC_\w+)`", body, re.MULTILINE)
            tables[owner.group(1)] = (owner.group(2), names)
    return tables


def test_the_readme_lists_each_sections_fields_under_it() -> None:
    tables = _readme_sections()
    nested = nested_settings(Settings)
    assert len(tables) == len(nested)
    for attribute, model in nested.items():
        expected = [variable(model, name) for name in model.model_fields]
        assert tables.get(model.__name__) == (attribute, expected), model.__name__


def test_without_web_turns_only_the_web_server_off() -> None:
    settings = Settings(web=WebSection(port=7000))
    quiet = settings.without_web()
    assert (quiet.web.enabled, quiet.web.port) == (False, 7000)
    assert settings.web.enabled
    assert quiet.model_dump(exclude={"web"}) == settings.model_dump(exclude={"web"})
