"""Deployment files and docs name only settings the app knows, and the images hold what
they promise.

A misspelt ACTIVITY_SYNC_* variable is silently ignored by pydantic-settings
(`extra="ignore"`), so a typo in docker-compose.yml or the README would run with a
default instead: these tests catch it. No Docker here: the Dockerfile is read as text.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devkit.kafka import pinned_version
from devkit.salesforce_emulator.tls_auth import ENV_PREFIX as EMULATOR_PREFIX
from streams.salesforce.settings import ENV_PREFIX as SALESFORCE_PREFIX
from streams.worker.settings import Settings, TopicNames, WebSection, variables

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bACTIVITY_SYNC_[A-Z0-9_]+\b")


def known_settings() -> set[str]:
    # Every section's and nested settings' variables, secrets' *_FILE included.
    names = set(variables())
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
    assert settings.broker.profile == "kafka"
    assert settings.salesforce.login_url == "https://salesforce:8443"
    assert settings.web.host == "worker-1"


def test_topics_are_created_with_the_workers_partition_count() -> None:
    services = compose()["services"]
    script = "\n".join(services["kafka-init"]["command"])
    for topic in TopicNames.model_fields.values():
        assert str(topic.default) in script
    # The count and the replication are the workers' own settings, read by the script
    # (an 8 written into it while the workers said 4 dead-lettered every event).
    init = environment(services["kafka-init"])
    for name, flag in (
        ("ACTIVITY_SYNC_PARTITIONS", "--partitions"),
        ("ACTIVITY_SYNC_REPLICATION_FACTOR", "--replication-factor"),
    ):
        for worker in ("worker-1", "worker-2"):
            assert init[name] == environment(services[worker])[name], (name, worker)
        assert f'{flag} "$${name}"' in script
        assert not re.search(rf"{flag}\s+\d", script), script


def test_the_partition_count_is_set_in_one_place() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    for name in ("ACTIVITY_SYNC_PARTITIONS", "ACTIVITY_SYNC_REPLICATION_FACTOR"):
        values = re.findall(rf"^\s+{name}:\s*(\S+)", text, re.MULTILINE)
        literal = [value for value in values if not value.startswith("*")]
        assert len(literal) == 1, f"{name} set {len(literal)} times: {values}"


def emulator_flags() -> set[str]:
    from devkit.commands import salesforce_emulator

    click_command: click.Command = salesforce_emulator._click
    return {opt for param in click_command.params for opt in param.opts}


def test_emulator_command_uses_only_flags_the_cli_has() -> None:
    command = [str(part) for part in compose()["services"]["salesforce"]["command"]]
    assert command[0] == "salesforce-emulator"
    used = {part for part in command[1:] if part.startswith("--")}
    assert used <= emulator_flags(), sorted(used - emulator_flags())
    assert command[command.index("--public-url") + 1] == "https://salesforce:8443"


# The Dockerfile -------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[str] = field(default_factory=list)

    def commands(self, keyword: str) -> list[str]:
        return [i for i in self.instructions if i.split(None, 1)[0] == keyword]

    def exec_form(self, keyword: str) -> list[str]:
        (line,) = self.commands(keyword)
        parsed: list[str] = json.loads(line.split(None, 1)[1])
        return parsed

    def sources(self) -> set[str]:
        """Stages this one copies or mounts from."""
        lines = self.commands("COPY") + self.commands("RUN")
        return {m.group(1) for line in lines for m in re.finditer(r"from=([\w.-]+)", line)}


def dockerfile_stages() -> dict[str, Stage]:
    """Stages by name, in order: instructions joined across `\\` continuations."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, Stage] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not stages and line.upper().startswith("ARG "):
            continue  # a global build argument (the base image)
        if line.upper().startswith("FROM "):
            match = re.fullmatch(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE)
            assert match, f"name every stage: {line}"
            stages[match.group(2)] = Stage(match.group(2), match.group(1))
        else:
            list(stages.values())[-1].instructions.append(line)
    return stages


def closure(stages: dict[str, Stage], name: str) -> list[Stage]:
    """`name` and every stage it is built from or takes files from."""
    seen: list[Stage] = []
    todo = [name]
    while todo:
        stage = stages.get(todo.pop())
        if stage is not None and stage not in seen:
            seen.append(stage)
            todo += [stage.base, *stage.sources()]
    return seen


def test_the_default_image_is_the_runtime_one() -> None:
    stages = dockerfile_stages()
    last = list(stages.values())[-1]
    assert (last.name, last.base, last.instructions) == ("worker", "runtime", [])
    runtime = stages["runtime"]
    assert runtime.exec_form("ENTRYPOINT") == ["activity-sync"]
    assert runtime.exec_form("CMD")[0] == "worker"


def test_the_runtime_image_has_no_dev_kit_and_only_locked_runtime_dependencies() -> None:
    stages = dockerfile_stages()
    built_from = closure(stages, "runtime")
    assert {s.name for s in built_from} == {"runtime", "build"}
    for stage in built_from:
        for line in stage.commands("COPY") + stage.commands("ADD") + stage.commands("RUN"):
            assert "devkit" not in line, f"{stage.name}: {line}"
            assert not re.search(r"\s(-e|--editable)\s", line), f"{stage.name}: {line}"
            assert "requirements-dev" not in line
        for line in stage.commands("COPY") + stage.commands("ADD"):
            copied = line.split()[1:-1]
            assert not {"tests", "bench", "docs", "."} & set(copied), f"{stage.name}: {line}"
    installs = [line for line in stages["runtime"].commands("RUN") if "pip install" in line]
    assert installs, "the runtime stage installs the package"
    for line in installs:
        # Hash-checked runtime dependencies, then the wheel with nothing more.
        assert "--require-hashes -r requirements/runtime.lock" in line or (
            "--no-deps /wheels/" in line
        ), line
        assert "dev.lock" not in line, line
    for stage in built_from:
        for line in stage.commands("COPY"):
            assert "dev.lock" not in line, f"{stage.name}: {line}"


def lock_names(name: str) -> set[str]:
    text = (REPO / "requirements" / name).read_text().replace("\\\n", " ")
    return {
        canonicalize_name(line.split("==")[0])
        for line in text.splitlines()
        if line.strip() and not line.startswith(("#", " "))
    }


def test_the_runtime_lock_is_hashed_and_holds_no_dev_package() -> None:
    text = (REPO / "requirements" / "runtime.lock").read_text().replace("\\\n", " ")
    pins = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert pins
    for line in pins:
        assert "==" in line, line
        assert "--hash=sha256:" in line, line
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dev: set[str] = {
        canonicalize_name(Requirement(r).name) for r in extras["dev"] + extras["devkit"]
    }
    dev |= lock_names("dev.lock") | {"pip", "setuptools", "wheel"}
    # cryptography is both: a devkit extra and simple-salesforce's pyjwt[crypto].
    assert lock_names("runtime.lock") & dev <= {"cryptography"}
    for requirement in project["dependencies"]:
        assert canonicalize_name(Requirement(requirement).name) in lock_names("runtime.lock")


def test_the_images_run_as_a_user_and_check_their_health() -> None:
    stages = dockerfile_stages()
    for name in ("runtime", "salesforce"):
        users = stages[name].commands("USER")
        assert users, f"{name} sets no USER"
        assert users[-1].split()[1] not in ("root", "0"), users[-1]
    (check,) = stages["runtime"].commands("HEALTHCHECK")
    # The probe asks /health/ where the worker listens (its settings and command line:
    # tests/unit/commands/test_healthcheck.py), not a port written into the image.
    assert json.loads(check.split(" CMD ", 1)[1]) == [
        "python",
        "-m",
        "streams.commands.healthcheck",
    ]
    (expose,) = stages["runtime"].commands("EXPOSE")
    assert expose.split()[1:] == [str(WebSection.model_fields["port"].default)]
    assert stages["salesforce"].commands("HEALTHCHECK"), "the emulator's own check"


@dataclass
class ImageFileSystem:
    """The runtime image's file system as its Dockerfile makes it, under a temp root."""

    root: Path
    env: dict[str, str]
    workdir: Path
    user: str
    user_owned: list[Path]  # what a RUN chowns to the user: all it may write

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")


def build_runtime_file_system(root: Path) -> ImageFileSystem:
    """Replay the runtime stage's ENV, WORKDIR, RUN mkdir/chown and USER lines."""
    image = ImageFileSystem(root, {}, root, "root", [])
    for line in dockerfile_stages()["runtime"].instructions:
        keyword, _, rest = line.partition(" ")
        if keyword == "ENV":
            image.env.update(item.split("=", 1) for item in shlex.split(rest))
        elif keyword == "WORKDIR":
            image.workdir = image.path(rest.strip())
            image.workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "USER":
            image.user = rest.strip()
        elif keyword == "RUN":
            for command in re.split(r"&&|;", rest):
                words = shlex.split(command)
                if words[:2] == ["mkdir", "-p"]:
                    for made in words[2:]:
                        image.path(made).mkdir(parents=True, exist_ok=True)
                elif words[:1] == ["chown"]:
                    image.user_owned += [image.path(p) for p in words[2:]]
    # Root's directories are not the user's: read-only for anyone but root.
    image.workdir.chmod(0o555)
    return image


WORKER_IN_IMAGE = """
import json
from streams.commands import preflight
from streams.worker.settings import Settings
from streams.worker.watch.web import web_access_problem

settings = Settings()
preflight.check_data_dir(settings)
print(json.dumps({
    "data_dir": str(settings.store.data_dir.absolute()),
    "web_bind": settings.web.bind,
    "web_port": settings.web.port,
    "web_access_problem": web_access_problem(settings),
}))
"""


def run_in_image(image: ImageFileSystem, extra: dict[str, str], *args: str) -> Any:
    env = {"PATH": os.environ["PATH"], "HOME": str(image.workdir)}
    for name, value in image.env.items():
        # The image's absolute paths, under the temp root.
        mapped = name.endswith(("_DIR", "_FILE")) and value.startswith("/")
        env[name] = str(image.path(value)) if mapped else value
    env |= extra
    return subprocess.run(
        list(args),
        cwd=image.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# Only what the image cannot know: where the broker and Salesforce are.
DEPLOYMENT = {
    "ACTIVITY_SYNC_BROKER_URL": "kafka://kafka:9092",
    f"{SALESFORCE_PREFIX}LOGIN_URL": "https://login.example.com",
    f"{SALESFORCE_PREFIX}CLIENT_ID": "activity-sync",
    f"{SALESFORCE_PREFIX}CLIENT_SECRET": "s3cret",
}


def test_the_image_runs_the_worker_with_its_own_defaults(tmp_path: Path) -> None:
    """Issue 21, item 9: data_dir defaulted to var/worker under /app (root's, unwritable
    for the image's user: FileNotFoundError), and the web server bound 127.0.0.1, so
    EXPOSE 6066 reached nothing. The image's ENV must point both where they work."""
    image = build_runtime_file_system(tmp_path / "image")
    assert image.user not in ("root", "0")
    token = {"ACTIVITY_SYNC_WEB_TOKEN": "t0ken"}
    done = run_in_image(image, DEPLOYMENT | token, sys.executable, "-c", WORKER_IN_IMAGE)
    assert done.returncode == 0, done.stderr
    worker = json.loads(done.stdout.splitlines()[-1])
    data_dir = Path(worker["data_dir"])
    assert any(data_dir.is_relative_to(owned) for owned in image.user_owned), (
        f"the worker's tables go to {data_dir}, which the image's user cannot write "
        f"(its directories: {image.user_owned})"
    )
    assert not data_dir.is_relative_to(image.workdir)
    (expose,) = dockerfile_stages()["runtime"].commands("EXPOSE")
    assert str(worker["web_port"]) == expose.split()[1]
    assert worker["web_bind"] in ("0.0.0.0", "::"), "EXPOSE reaches a loopback bind never"
    assert worker["web_access_problem"] is None


def test_the_image_without_a_web_token_refuses_in_one_line(tmp_path: Path) -> None:
    """The image serves beyond loopback, so booking data needs the token: a worker
    started without one exits 2 naming it, before it reaches for the broker."""
    image = build_runtime_file_system(tmp_path / "image")
    cli = str(Path(sys.executable).with_name("activity-sync"))
    done = run_in_image(image, DEPLOYMENT, cli, "worker", "-l", "info")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("activity-sync worker: error: ACTIVITY_SYNC_WEB_BIND=0.0.0.0 ")
    assert "ACTIVITY_SYNC_WEB_TOKEN" in line


def test_the_salesforce_image_runs_the_emulator() -> None:
    stages = dockerfile_stages()
    salesforce = stages["salesforce"]
    assert salesforce.base == "runtime"
    assert any(line.split()[1] == "devkit" for line in salesforce.commands("COPY"))
    assert any("[devkit]" in line for line in salesforce.commands("RUN"))
    assert salesforce.exec_form("ENTRYPOINT") == ["python", "-m", "devkit"]
    command = salesforce.exec_form("CMD")
    assert command[0] == "salesforce-emulator"
    used = {part for part in command[1:] if part.startswith("--")}
    assert used <= emulator_flags(), sorted(used - emulator_flags())


def test_compose_builds_the_emulator_and_one_worker_image() -> None:
    services = compose()["services"]
    targets = set(dockerfile_stages())
    assert services["salesforce"]["build"]["target"] == "salesforce"
    workers = [services[name] for name in ("worker-1", "worker-2")]
    builds = [w["build"] for w in workers if "build" in w]
    assert [b["target"] for b in builds] == ["runtime"], "built once, by one worker"
    assert len({w["image"] for w in workers}) == 1, "both workers run that image"
    assert {s["build"]["target"] for s in services.values() if "build" in s} <= targets


def test_compose_runs_the_kafka_the_tests_run() -> None:
    # One pinned version: devkit/kafka.pom.xml (tests, chaos, benches) and compose's image.
    images = {compose()["services"][name]["image"] for name in ("kafka", "kafka-init")}
    assert images == {f"apache/kafka:{pinned_version()}"}


def test_kafka_keeps_its_logs_in_its_volume() -> None:
    kafka = compose()["services"]["kafka"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"]}
    log_dirs = environment(kafka)["KAFKA_LOG_DIRS"].split(",")
    assert all(path in mounts for path in log_dirs), (log_dirs, mounts)


def test_workers_publish_on_loopback_and_mount_only_the_ca_certificate() -> None:
    services = compose()["services"]
    ca_volume = "salesforce-ca"
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        for port in worker["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
        sources = {str(v).split(":")[0] for v in worker["volumes"]}
        assert "salesforce-data" not in sources, f"{name} mounts the emulator's keys"
        assert ca_volume in sources
        env = environment(worker)
        assert env["ACTIVITY_SYNC_WEB_BIND"] == "0.0.0.0"
        assert env["ACTIVITY_SYNC_WEB_TOKEN_FILE"].startswith("/run/secrets/")
    # The CA volume holds only what salesforce-ca copies into it: ca.pem.
    copier = services["salesforce-ca"]
    assert "ca.pem" in " ".join(copier["command"])
    assert "key" not in " ".join(copier["command"])


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "*.txt", "*.secret", ".env"} <= ignored


def test_git_ignores_local_settings_and_the_secret_files() -> None:
    ignored = set((REPO / ".gitignore").read_text().split())
    assert {".env", "salesforce_client_secret.txt", "*.secret"} <= ignored
    for secret in compose()["secrets"].values():
        name = Path(secret["file"]).name
        assert name in ignored or any(Path(name).match(p) for p in ignored), name


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


def test_long_running_services_restart_and_one_shot_ones_do_not() -> None:
    """Issue 21, item 13: the kafka service had no restart policy (a host restart left
    the workers waiting for a broker that never came back)."""
    services = compose()["services"]
    for name, service in services.items():
        one_shot = name in ("kafka-init", "salesforce-ca")
        assert (service.get("restart") is None) == one_shot, name
    assert services["kafka"]["restart"] == "unless-stopped"


def test_the_secret_files_must_be_readable_by_the_containers_user() -> None:
    """Compose mounts a secret file with the host file's mode: a `chmod 600` file is
    unreadable for the image's uid. Both compose and the README say so."""
    (useradd,) = [
        line for line in dockerfile_stages()["runtime"].commands("RUN") if "useradd" in line
    ]
    uid = re.search(r"--uid\s+(\d+)", useradd)
    assert uid is not None
    for doc in ("docker-compose.yml", "README.md"):
        text = " ".join((REPO / doc).read_text().replace("#", " ").split())
        assert f"uid {uid.group(1)}" in text, doc
        assert "chmod 644" in text, doc
