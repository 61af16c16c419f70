"""Log format of the service: one line per record, with the request id.

A log line is one record: control characters in a message (a path holding `%0d%0a`, a user
agent with a newline) are written escaped (`\\r`, `\\n`, `\\x1b`), so input can never
forge a line. Tracebacks, appended after the message, keep their lines.
"""

import logging
import re

from app.core.middleware import RequestIdFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_control(text: str) -> str:
    """`text` with every control character written as an escape (`\\n`, `\\x1b`)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class EscapingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.message)
        return super().formatMessage(record)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger("actionlog")
    root.handlers = [handler]
    root.setLevel(level.upper())
    root.propagate = False
