"""HTTPS and login: the emulator's own CA and certificate, its credentials, and the
OAuth2 token endpoint that issues the bearer tokens every API call must carry.

CA, certificate and credentials stay in the data dir, so a client that trusts DIR/ca.pem
and holds the credentials keeps working across restarts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import ssl
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote

import trustme
from aiohttp import web

from devkit.salesforce_emulator.org import Credentials, Org
from devkit.salesforce_emulator.responses import json_response
from devkit.salesforce_emulator.schema import PREFIX_ORG, PREFIX_USER, make_id

# Credentials not given explicitly come from ACTIVITY_SYNC_EMULATOR_CLIENT_ID, ...
ENV_PREFIX = "ACTIVITY_SYNC_EMULATOR_"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def prepare_tls(data_dir: Path, names: Sequence[str]) -> tuple[ssl.SSLContext, Path]:
    """Create (or reuse) the CA and a server certificate for `names` in `data_dir`.

    Reusing them across restarts keeps clients that trust DIR/ca.pem working.
    """
    ca_file, ca_key = data_dir / "ca.pem", data_dir / "ca-key.pem"
    server_file, names_file = data_dir / "server.pem", data_dir / "server-names.json"
    if ca_file.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_file.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="activity-sync Salesforce emulator")
        _write_private(ca_key, ca.private_key_pem.bytes())
        ca_file.write_bytes(ca.cert_pem.bytes())
        server_file.unlink(missing_ok=True)
    wanted = sorted(set(names))
    current = json.loads(names_file.read_text()) if names_file.exists() else None
    if not server_file.exists() or current != wanted:
        leaf = ca.issue_cert(*wanted)
        _write_private(server_file, leaf.private_key_and_cert_chain_pem.bytes())
        names_file.write_text(json.dumps(wanted))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_file)
    return context, ca_file


def load_credentials(data_dir: Path, explicit: Mapping[str, str | None]) -> Credentials:
    """`explicit` values, then env (ACTIVITY_SYNC_EMULATOR_*), then DIR/credentials.json,
    generated on first start so a restart keeps them."""
    path = data_dir / "credentials.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    generated = {
        "client_id": "3MVG9emulator" + secrets.token_urlsafe(24).replace("-", "x"),
        "client_secret": secrets.token_hex(32),
        "username": "integration@activity-sync.emulator",
        "password": secrets.token_urlsafe(18),
        "security_token": secrets.token_urlsafe(18),
        "org_id": make_id(PREFIX_ORG, secrets.randbelow(62**6)),
        "user_id": make_id(PREFIX_USER, 1 + secrets.randbelow(62**6)),
    }
    values: dict[str, str] = {}
    for key, default in generated.items():
        env = os.environ.get(ENV_PREFIX + key.upper())
        values[key] = explicit.get(key) or env or stored.get(key) or default
    if values != stored:
        _write_private(path, json.dumps(values, indent=2).encode())
    return Credentials(**values)


class OAuth:
    """POST /services/oauth2/token (client_credentials or password grant) and the
    bearer tokens it issued."""

    def __init__(self, org: Org, token_ttl_s: float) -> None:
        self.org = org
        self.token_ttl_s = token_ttl_s
        self.token_requests = 0
        self._tokens: dict[str, float] = {}

    async def token(self, request: web.Request) -> web.StreamResponse:
        outage = await self.org.outage(request)
        if outage is not None:
            return outage
        self.token_requests += 1
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, pwd = base64.b64decode(auth[6:]).decode().partition(":")
                params.setdefault("client_id", unquote(user))
                params.setdefault("client_secret", unquote(pwd))
        creds = self.org.credentials
        grant = params.get("grant_type")

        def oauth_error(error: str, description: str) -> web.Response:
            return json_response({"error": error, "error_description": description}, 400)

        if grant not in ("client_credentials", "password"):
            return oauth_error("unsupported_grant_type", "grant type not supported")
        if not hmac.compare_digest(params.get("client_id", ""), creds.client_id):
            return oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(params.get("client_secret", ""), creds.client_secret):
            return oauth_error("invalid_client", "invalid client credentials")
        if grant == "password":
            expected = creds.password + creds.security_token
            if params.get("username") != creds.username or not hmac.compare_digest(
                params.get("password", ""), expected
            ):
                return oauth_error("invalid_grant", "authentication failure")
        token = f"{creds.org_id[:15]}!{secrets.token_urlsafe(48)}"
        self._tokens[token] = time.monotonic() + self.token_ttl_s
        issued_at = str(int(time.time() * 1000))
        identity = f"{self.org.public_url}/id/{creds.org_id}/{creds.user_id}"
        signature = base64.b64encode(
            hmac.new(
                creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        body: dict[str, object] = {
            "access_token": token,
            "instance_url": self.org.public_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if grant == "client_credentials":
            body["scope"] = "api"
        return json_response(body)

    def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme not in ("Bearer", "OAuth") or not token:
            return False
        expires = self._tokens.get(token.strip())
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._tokens[token.strip()]
            return False
        return True

    def expire_all(self) -> int:
        """Forget every token (as when sessions time out); returns how many there were."""
        expired = len(self._tokens)
        self._tokens.clear()
        return expired
