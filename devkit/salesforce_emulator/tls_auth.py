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

import jwt
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

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


# Credentials that are secrets: printed on the ready line only when the emulator made
# them (they are then nowhere else but its private data dir); one given to it (a compose
# secret file, an environment variable) is the user's, and a log must not repeat it.
SECRET_CREDENTIALS = ("client_secret", "password", "security_token")


def load_credentials(
    data_dir: Path, explicit: Mapping[str, str | None], *, org: str = ""
) -> Credentials:
    """`explicit` values, then env (ACTIVITY_SYNC_EMULATOR_*), then DIR/credentials.json,
    generated on first start so a restart keeps them. A named `org` (orgs.py) takes
    neither explicit values nor the environment: its credentials are its own."""
    path = data_dir / "credentials.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if org:
        explicit = {}
    generated = {
        "client_id": "3MVG9emulator" + secrets.token_urlsafe(24).replace("-", "x"),
        "client_secret": secrets.token_hex(32),
        "username": f"integration@{org + '.' if org else ''}activity-sync.emulator",
        "password": secrets.token_urlsafe(18),
        "security_token": secrets.token_urlsafe(18),
        "org_id": make_id(PREFIX_ORG, secrets.randbelow(62**6)),
        "user_id": make_id(PREFIX_USER, 1 + secrets.randbelow(62**6)),
    }
    values: dict[str, str] = {}
    kept: dict[str, str] = {}
    for key, default in generated.items():
        given = explicit.get(key) or (None if org else os.environ.get(ENV_PREFIX + key.upper()))
        values[key] = given or stored.get(key) or default
        # A secret given to the emulator is not copied into its data dir (a later start
        # without it would print it): the file keeps the one the emulator made.
        secret_given = given and key in SECRET_CREDENTIALS
        kept[key] = (stored.get(key) or default) if secret_given else values[key]
    if kept != stored:
        _write_private(path, json.dumps(kept, indent=2).encode())
    return Credentials(**values)


def provided_secrets(
    explicit: Mapping[str, str | None], origins: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The secrets the emulator was given, not generated: name -> where each came from
    (`origins` names an explicit value's source, e.g. `--client-secret-file PATH`)."""
    provided = {}
    for key in SECRET_CREDENTIALS:
        variable = ENV_PREFIX + key.upper()
        if explicit.get(key):
            provided[key] = (origins or {}).get(key, "given at start")
        elif os.environ.get(variable):
            provided[key] = f"${variable}"
    return provided


JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def prepare_jwt(data_dir: Path, certificate: Path | None) -> tuple[Path | None, Path]:
    """The connected app's certificate for the JWT bearer flow: `certificate` (a PEM
    certificate or public key, as uploaded to a real connected app), else one made on
    first start, DIR/jwt-cert.pem, with its private key DIR/jwt-key.pem for clients
    (ACTIVITY_SYNC_SALESFORCE_PRIVATE_KEY_FILE). Returns (private key file or None,
    certificate file)."""
    if certificate is not None:
        return None, certificate
    key_file, cert_file = data_dir / "jwt-key.pem", data_dir / "jwt-cert.pem"
    if not (key_file.exists() and cert_file.exists()):
        # RS256: Salesforce signs and checks JWT bearer assertions with RSA keys.
        ca = trustme.CA(organization_name="activity-sync JWT", key_type=trustme.KeyType.RSA)
        leaf = ca.issue_cert("activity-sync-jwt", key_type=trustme.KeyType.RSA)
        _write_private(key_file, leaf.private_key_pem.bytes())
        cert_file.write_bytes(leaf.cert_chain_pems[0].bytes())
    return key_file, cert_file


def load_public_key(path: Path) -> object:
    """The RSA public key of a PEM certificate or public key file."""
    data = path.read_bytes()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


class OAuth:
    """POST /services/oauth2/token (client_credentials, password or JWT bearer grant)
    and the bearer tokens it issued."""

    def __init__(self, org: Org, token_ttl_s: float, jwt_key: object = None) -> None:
        self.org = org
        self.token_ttl_s = token_ttl_s
        # The connected app's certificate's public key: verifies JWT bearer assertions.
        self.jwt_key = jwt_key
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

        if grant == JWT_BEARER_GRANT:
            refused = self._jwt_refusal(params.get("assertion", ""))
            if refused is not None:
                return oauth_error(*refused)
        elif grant not in ("client_credentials", "password"):
            return oauth_error("unsupported_grant_type", "grant type not supported")
        elif not hmac.compare_digest(params.get("client_id", ""), creds.client_id):
            return oauth_error("invalid_client_id", "client identifier invalid")
        elif not hmac.compare_digest(params.get("client_secret", ""), creds.client_secret):
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
        identity = f"{self.org.instance_url}/id/{creds.org_id}/{creds.user_id}"
        signature = base64.b64encode(
            hmac.new(
                creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        body: dict[str, object] = {
            "access_token": token,
            "instance_url": self.org.instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if grant == "client_credentials":
            body["scope"] = "api"
        return json_response(body)

    def _jwt_refusal(self, assertion: str) -> tuple[str, str] | None:
        """Why a JWT bearer assertion is refused (OAuth error, description), as Salesforce
        checks it: signed RS256 by the connected app's certificate's key, iss = its
        consumer key, sub = the (integration) user's username, aud = the login URL,
        exp not passed (and at most 3 minutes ahead, with a little clock skew). A named
        org's login URL (URL/orgs/<name>) and its instance URL are both its audience."""
        creds = self.org.credentials
        if self.jwt_key is None:
            return "invalid_grant", "no certificate for the JWT bearer flow"
        login = self.org.login_url.rstrip("/")
        audiences = {u.rstrip("/") for u in (login, self.org.instance_url)}
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=sorted(audiences | {u + "/" for u in audiences}),
                options={"require": ["iss", "sub", "aud", "exp"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            return "invalid_grant", "expired authorization code"
        except jwt.InvalidAudienceError:
            return "invalid_grant", f"audience is invalid (expected {login})"
        except jwt.PyJWTError:
            return "invalid_grant", "invalid assertion"
        if not hmac.compare_digest(str(claims["iss"]), creds.client_id):
            return "invalid_client_id", "client identifier invalid"
        if claims["sub"] != creds.username:
            return "invalid_grant", "user hasn't approved this consumer"
        if float(claims["exp"]) > time.time() + 180 + 60:
            return "invalid_grant", "invalid assertion (exp more than 3 minutes ahead)"
        return None

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
