"""The Salesforce client's HTTP session (streams/salesforce/http_session.py): the
environment's settings merged once per host, with the answers requests gives."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from streams.salesforce.http_session import Session

URLS = [
    "https://acme.my.salesforce.com/services/data/v62.0/query",
    "https://acme.my.salesforce.com/services/data/v62.0/composite/sobjects",
    "https://internal.example/services/oauth2/token",
]


def test_the_environment_is_merged_once_per_host_and_as_requests_merges_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    walks: list[Any] = []
    real = requests.sessions.get_environ_proxies

    def counted(url: Any, no_proxy: Any = None) -> Any:
        walks.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counted)
    cached, plain = Session(), requests.Session()
    for _ in range(3):
        for url in URLS:
            for verify in (True, "/run/ca.pem"):
                assert cached.merge_environment_settings(url, {}, None, verify, None) == (
                    plain.merge_environment_settings(url, {}, None, verify, None)
                )
    # Plain requests walked the environment for each of the 18 merges; ours once per
    # host and verify setting.
    assert len(walks) == 18 + 4
    merged = cached.merge_environment_settings(URLS[0], {}, None, True, None)
    assert merged["proxies"]["https"] == "http://proxy.example:3128"
    assert merged["verify"] == "/etc/ssl/corporate.pem"
    internal = cached.merge_environment_settings(URLS[2], {}, None, True, None)
    assert "https" not in internal["proxies"], "NO_PROXY still counts"


def test_what_a_caller_changes_in_the_answer_stays_its_own() -> None:
    session = Session()
    first = session.merge_environment_settings(URLS[0], {}, None, True, None)
    first["proxies"]["https"] = "http://changed.example"
    again = session.merge_environment_settings(URLS[0], {}, None, True, None)
    assert "changed" not in str(again["proxies"])
