"""requests' Session, with the environment's proxy and CA settings read once per host.

requests merges the environment into every request (`Session.merge_environment_settings`:
HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, ...), and finding the proxies walks all of
`os.environ` each time. A worker serving many orgs makes many calls in a large
environment (each org's secret may be a variable): in `make bench-orgs` (200 orgs) that
walk was about an eighth of a worker's Python time (py-spy `--gil`, 2026-12-05). A
process's environment does not change while it runs, so `Session` keeps what the merge
gives per scheme, host and request options, and answers the same as requests would.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

import requests


class Session(requests.Session):
    """A `requests.Session` that merges the environment's settings once per host."""

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: MutableMapping[str, str] | None,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> Any:
        if proxies or not isinstance(url, str):  # a call's own proxies: as requests does
            return dict(super().merge_environment_settings(url, proxies, stream, verify, cert))
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, repr(cert))
        merged = self._merged.get(key)
        if merged is None:
            merged = dict(super().merge_environment_settings(url, proxies, stream, verify, cert))
            self._merged[key] = merged
        return {
            name: dict(value) if isinstance(value, dict) else value
            for name, value in merged.items()
        }
