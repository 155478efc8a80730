"""Logging helpers named in settings.LOGGING."""
from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A 4xx that Django logs with its exception (a PermissionDenied's 403, a SuspiciousOperation's
    400) becomes one line: the traceback of an ordinary refusal only buries real errors. 5xx keep
    theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
