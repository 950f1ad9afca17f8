"""What the worker's logs may not show: customer fields, and tracebacks for errors that
are configuration, not bugs.

- `RedactCustomer`: a debug log (`-l debug`) of a record's key and value (aiokafka's
  producer logs every record it sends, Faust logs what agents yield) would carry the
  customer's and owners' name, email and phone. The filter rewrites such a record's
  message with those JSON (or Python repr) fields replaced by `<redacted>`.
- `OneLineClientErrors`: the sink logs an unexpected write failure with its traceback;
  a Salesforce client error (refused credentials, an untrusted certificate) is a known
  condition, so its record keeps one line: the message and the error, no traceback.

`install()` attaches both to the loggers of streams, Faust, mode and aiokafka (a
logging.Filter only sees records of the logger it is attached to).
"""

from __future__ import annotations

import logging
import re

# Keys whose string values are personal data in events, projections and reports.
PERSONAL_KEYS = ("name", "email", "phone", "customer_name", "lookup_email")
_KEYS = "|".join(PERSONAL_KEYS)
_JSON_FIELD = re.compile(rf'("(?:{_KEYS})"\s*:\s*)"(?:[^"\\]|\\.)*"')
_REPR_FIELD = re.compile(rf"('(?:{_KEYS})'\s*:\s*)'(?:[^'\\]|\\.)*'")
REDACTED = "<redacted>"

NAMESPACES = ("streams", "faust", "mode", "aiokafka")
# Loggers known to log payloads, attached even before their modules are imported.
PAYLOAD_LOGGERS = (
    "aiokafka.producer.producer",
    "faust.agents.agent",
    "streams.worker.pipeline.sink",
)


def redact(text: str) -> str:
    text = _JSON_FIELD.sub(rf'\1"{REDACTED}"', text)
    return _REPR_FIELD.sub(rf"\1'{REDACTED}'", text)


class RedactCustomer(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            # An empty tuple, not None: mode's formatter wraps a non-tuple in a tuple and
            # would format the cleaned message with (None,).
            record.msg, record.args = cleaned, ()
        return True


class OneLineClientErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from streams.salesforce.errors import SalesforceClientError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, SalesforceClientError):
            detail = " ".join(str(exc).split()) or type(exc).__name__
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {detail}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


_REDACT = RedactCustomer()
_ONE_LINE = OneLineClientErrors()


def _ours(name: str) -> bool:
    return name.split(".")[0] in NAMESPACES


def install() -> None:
    """Attach the filters to every logger of our namespaces that exists now, and to
    the payload loggers (idempotent)."""
    names = {name for name in logging.root.manager.loggerDict if _ours(name)}
    for name in sorted(names | set(PAYLOAD_LOGGERS)):
        logger = logging.getLogger(name)
        for log_filter in (_ONE_LINE, _REDACT):
            if log_filter not in logger.filters:
                logger.addFilter(log_filter)
