"""Debug logs without customer fields, and Salesforce client errors without tracebacks
(streams/worker/process/log_filters.py)."""

from __future__ import annotations

import logging

import orjson
import pytest

from streams.salesforce.errors import SalesforceAuthenticationError
from streams.worker.process.log_filters import REDACTED, install, redact

CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}


def test_redact_json_and_repr_fields() -> None:
    value = orjson.dumps({"data": {"customer": CUSTOMER, "title": "Intro call"}})
    text = redact(f"Sending (key=b'b-1' value={value!r}) to tp")
    for secret in CUSTOMER.values():
        assert secret not in text
    assert "Intro call" in text
    assert text.count(REDACTED) == 3
    assert "ada@example.com" not in redact(repr({"email": "ada@example.com", "n": 1}))
    assert redact('{"name": "O\\"Brien", "x": 1}') == f'{{"name": "{REDACTED}", "x": 1}}'


def test_aiokafkas_send_log_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install()
    value = orjson.dumps({"customer": CUSTOMER})
    with caplog.at_level(logging.DEBUG, logger="aiokafka.producer.producer"):
        logging.getLogger("aiokafka.producer.producer").debug(
            "Sending (key=%s value=%s) to %s", b"b-1", value, "tp"
        )
    assert "Sending (key=b'b-1'" in caplog.text
    # Formatted once more (mode's formatter wraps non-tuple args): still the same text.
    (record,) = caplog.records
    assert record.args == ()
    for secret in CUSTOMER.values():
        assert secret not in caplog.text


def test_a_salesforce_client_error_is_logged_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    install()
    logger = logging.getLogger("streams.worker.pipeline.sink")
    try:
        raise SalesforceAuthenticationError("token request refused: HTTP 400 invalid_client")
    except SalesforceAuthenticationError:
        with caplog.at_level(logging.ERROR, logger="streams.worker.pipeline.sink"):
            logger.exception("sink write failed; holding %d records", 3)
    (record,) = caplog.records
    assert record.exc_info is None
    assert record.getMessage() == (
        "sink write failed; holding 3 records: SalesforceAuthenticationError: "
        "token request refused: HTTP 400 invalid_client"
    )
    assert "Traceback" not in caplog.text
