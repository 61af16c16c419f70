"""Log format of the service: one line per record, with the request id."""

import logging

from app.core.middleware import RequestIdFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger("actionlog")
    root.handlers = [handler]
    root.setLevel(level.upper())
    root.propagate = False
