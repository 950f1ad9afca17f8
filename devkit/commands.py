"""The dev kit's commands: `demo`, `broker`, `kafka`, `salesforce-emulator`.

`python -m devkit` is `activity-sync` (Faust's commands and ours) plus these four,
which run the local stand-ins for Kafka and Salesforce. They live here, not in
`streams.cli`, so a production install carries neither the embedded broker nor the
emulator.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click
from faust.cli import option
from pydantic import ValidationError

from devkit.broker import BrokerError, EmbeddedBroker, wait_for_port
from devkit.kafka import KafkaCluster, KafkaSetupError
from devkit.salesforce_emulator.faults import Faults
from streams.commands.base import OperatorCommand, UserError, until_signal
from streams.worker.app import app


def _read_secret(path: Path | None) -> str | None:
    return path.read_text().strip() if path is not None else None


def _parse_faults(text: str | None) -> Faults:
    """--faults: JSON, or @FILE holding it; none given is no faults."""
    if not text:
        return Faults()
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    return Faults.model_validate_json(text)


@app.command(
    option("--host", default="127.0.0.1", help="Address to listen on."),
    option(
        "--port",
        type=int,
        default=9092,
        help="Port to listen on (0: any free port). 9092 matches the default broker URL.",
    ),
    base=OperatorCommand,
)
async def broker(self: OperatorCommand, host: str, port: int) -> int:
    """Run the embedded Kafka-compatible broker (Tansu, data in memory) until Ctrl-C.

    Its log is gone when it stops (this Tansu build can keep it only in memory): a
    worker started on it again drops its tables and starts empty, saying so in one line.
    `python -m devkit kafka` keeps its log across restarts."""
    if port and wait_for_port(host, port, timeout=0.2):
        raise UserError(f"port {host}:{port} is already in use (another broker running?)")
    running = EmbeddedBroker(host=host, port=port)
    try:
        await asyncio.to_thread(running.start)
    except BrokerError as exc:
        raise UserError(str(exc)) from None
    print(f"embedded Kafka broker listening on {running.bootstrap}", flush=True)
    # What a worker or command on this broker needs: its URL and its profile (the
    # default profile is production's, Apache Kafka).
    print(f"export ACTIVITY_SYNC_BROKER_URL={running.url}", flush=True)
    print(f"export ACTIVITY_SYNC_BROKER_PROFILE={running.connection.profile.name}", flush=True)
    # A comment to a shell that evaluates these lines.
    print(
        f"# cluster {running.cluster_id}: the log is in memory, gone when this broker stops "
        "(a worker restarted on it starts with empty tables)",
        flush=True,
    )
    try:
        await until_signal()
    finally:
        await asyncio.to_thread(running.stop)
    return 0


@app.command(
    option(
        "--brokers",
        type=click.Choice(["1", "3"]),
        default="1",
        help="One combined KRaft node, or a three-node cluster (replication 3, min ISR 2).",
    ),
    option(
        "--port",
        type=int,
        default=9092,
        help="The first node's port; the others take the next ones (0: free ports). "
        "9092 matches the default broker URL.",
    ),
    option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("var/kafka"),
        help="Storage of every node; kept across restarts (delete it to start empty).",
    ),
    base=OperatorCommand,
)
async def kafka(self: OperatorCommand, brokers: str, port: int, data_dir: Path) -> int:
    """Run Apache Kafka (fetched once from Maven Central) on loopback until Ctrl-C."""
    cluster = KafkaCluster(data_dir, brokers=int(brokers), port=port)
    for node in cluster.nodes:
        if port and wait_for_port(node.host, node.port, timeout=0.2):
            raise UserError(f"port {node.bootstrap} is already in use (another broker running?)")
    try:
        await asyncio.to_thread(cluster.start)
    except KafkaSetupError as exc:
        raise UserError(str(exc)) from None
    fetched = cluster.distribution.fetched_s if cluster.distribution else None
    how = f"fetched in {fetched:.1f}s" if fetched is not None else "from the cache"
    print(
        f"Apache Kafka {cluster.version} ({how}), {brokers} node(s) ready at {cluster.bootstrap}",
        flush=True,
    )
    # The kafka profile is the default: the URL is all a worker or command needs.
    print(f"export ACTIVITY_SYNC_BROKER_URL='{cluster.url}'", flush=True)
    if cluster.replication_factor > 1:
        print(f"export ACTIVITY_SYNC_REPLICATION_FACTOR={cluster.replication_factor}", flush=True)
        print(f"export ACTIVITY_SYNC_MIN_INSYNC_REPLICAS={cluster.min_insync_replicas}", flush=True)
    try:
        await until_signal()
    finally:
        await asyncio.to_thread(cluster.stop)
    return 0


@app.command(
    option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 in Docker)."),
    option("--port", type=int, default=0, help="Port to listen on (0: any free port)."),
    option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("var/salesforce-emulator"),
        help="CA, credentials and the SQLite store live here.",
    ),
    option("--api-version", default="62.0", help="Newest API version served."),
    option(
        "--public-url",
        default=None,
        help="instance_url given to clients (Docker: https://salesforce:8443).",
    ),
    option("--tls-name", multiple=True, help="Extra certificate name (repeatable)."),
    option("--daily-limit", type=int, default=100_000, help="API calls per day."),
    option("--token-ttl", type=float, default=7200.0, help="Token lifetime in seconds."),
    option("--faults", default=None, help="Fault configuration: JSON, or @file."),
    option(
        "--client-id",
        default=None,
        help="Default: $ACTIVITY_SYNC_EMULATOR_CLIENT_ID, else generated.",
    ),
    option(
        "--client-secret-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="Read the client secret from this file (Docker secrets).",
    ),
    option(
        "--metadata",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=None,
        help="Salesforce DX project of the org's custom fields and validation rules "
        "(default: the checkout's salesforce/).",
    ),
    option(
        "--jwt-certificate",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="The connected app's certificate (or public key, PEM) verifying JWT bearer "
        "assertions (default: one made in the data dir, private key DIR/jwt-key.pem).",
    ),
    option(
        "--without-modify-all-data",
        is_flag=True,
        default=False,
        help="The integration user lacks Modify All Data (UserPermissionAccess answers "
        "false; check-salesforce warns). Default: it holds it, like an admin profile.",
    ),
    option(
        "--orgs",
        default="",
        help="Named orgs to serve beside the default one, comma-separated (a,b,c): each "
        "logs in at URL/orgs/<name>; GET /__admin/orgs/<name> gives its credentials.",
    ),
    base=OperatorCommand,
)
async def salesforce_emulator(
    self: OperatorCommand,
    host: str,
    port: int,
    data_dir: Path,
    api_version: str,
    public_url: str | None,
    tls_name: tuple[str, ...],
    daily_limit: int,
    token_ttl: float,
    faults: str | None,
    client_id: str | None,
    client_secret_file: Path | None,
    metadata: Path | None,
    jwt_certificate: Path | None,
    without_modify_all_data: bool,
    orgs: str,
) -> int:
    """Run the local Salesforce REST API emulator (HTTPS) until Ctrl-C.

    Prints one JSON line when ready: url, ca_file and the credentials to give the
    worker (ACTIVITY_SYNC_SALESFORCE_*). Other credentials come from
    ACTIVITY_SYNC_EMULATOR_{CLIENT_SECRET,USERNAME,PASSWORD,SECURITY_TOKEN}.
    """
    from devkit.salesforce_emulator.metadata import MetadataError
    from devkit.salesforce_emulator.orgs import NAME_RULE, valid_name
    from devkit.salesforce_emulator.server import EmulatorConfig, RunningEmulator, run_emulator

    try:
        parsed_faults = _parse_faults(faults)
    except (ValidationError, OSError) as exc:
        raise UserError(f"--faults: {exc}") from None
    org_names = tuple(dict.fromkeys(n.strip() for n in orgs.split(",") if n.strip()))
    invalid = [n for n in org_names if not valid_name(n)]
    if invalid:
        raise UserError(f"--orgs: {', '.join(invalid)}: {NAME_RULE}")
    config = EmulatorConfig(
        data_dir=data_dir,
        host=host,
        port=port,
        api_version=api_version,
        public_url=public_url,
        tls_names=tls_name,
        client_id=client_id,
        client_secret=_read_secret(client_secret_file),
        client_secret_origin=f"--client-secret-file {client_secret_file}"
        if client_secret_file
        else None,
        daily_limit=daily_limit,
        token_ttl_s=token_ttl,
        faults=parsed_faults,
        metadata_dir=metadata,
        jwt_certificate=jwt_certificate,
        modify_all_data=not without_modify_all_data,
        orgs=org_names,
    )

    def announce(running: RunningEmulator) -> None:
        sys.stdout.write(json.dumps(running.ready_line()) + "\n")
        sys.stdout.flush()

    try:
        await run_emulator(config, announce)
    except MetadataError as exc:
        raise UserError(f"--metadata: {exc}") from None
    except ValueError as exc:  # a --jwt-certificate that is no PEM certificate or key
        raise UserError(f"--jwt-certificate: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return 0


@app.command(
    option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("var/demo"),
        help="Logs and emulator data go here.",
    ),
    option(
        "--timeout", "timeout_s", type=float, default=60.0, help="Seconds to wait for Salesforce."
    ),
    option("--keep-running", is_flag=True, default=False, help="Keep everything up until Ctrl-C."),
    base=OperatorCommand,
)
async def demo(self: OperatorCommand, directory: Path, timeout_s: float, keep_running: bool) -> int:
    """Run broker, Salesforce emulator and a worker; sync a set of bookings; show the result."""
    from devkit.demo import run_demo

    return await run_demo(directory, timeout_s, keep_running)
