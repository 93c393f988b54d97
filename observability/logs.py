"""Log lines: one JSON object per line (default) or a human format, the same in every process.

`log_config()` is a `logging.config.dictConfig` dictionary covering the root logger and
uvicorn's own (`uvicorn.error`, `uvicorn.access`), for the settings' `log_format` and
`log_level` (LOG_FORMAT, LOG_LEVEL): `server.main` hands it to uvicorn, which applies it
in the parent and in every worker, and `create_app` applies it again, so
`uvicorn --factory server:create_app` gets it too.

A JSON line has `time` (UTC, ISO 8601), `level`, `logger`, `message`, `request_id`,
`trace_id`/`span_id` inside a recording span, every field passed with `extra=`, and
`exception` (the traceback) when there is one. Access lines carry `method`, `path`
(without the query string, which may hold ids) and `status`.
"""

import logging
import logging.config
import time
from collections.abc import Mapping
from typing import Any

import orjson
from opentelemetry import trace

from settings import LogFormat, LogLevel

# Everything a LogRecord has of its own; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
        }
        access = record.name == "uvicorn.access" and _access_fields(record)
        if access:
            line["message"] = f"{access['method']} {access['path']} {access['status']}"
            line.update(access)
        else:
            line["message"] = record.getMessage()
        line["request_id"] = getattr(record, "request_id", "-")
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def _timestamp(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def _access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    # uvicorn's access record: (client, method, full path, HTTP version, status).
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return None
    client, method, full_path, _, status = args
    return {
        "method": method,
        "path": str(full_path).split("?", 1)[0],
        "status": status,
        "client": client,
    }


def log_config(
    fmt: LogFormat, level: LogLevel, record_filter: type[logging.Filter] | None = None
) -> dict[str, Any]:
    """The dictConfig for `fmt` and `level`, as the settings checked them; every record
    passes `record_filter` (the web layer's request id) when one is given."""
    formatter: Mapping[str, Any] = (
        {"format": TEXT_FORMAT} if fmt == "text" else {"()": "observability.logs.JsonFormatter"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"record": {"()": record_filter}} if record_filter else {},
        "formatters": {"default": dict(formatter)},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["record"] if record_filter else [],
                "stream": "ext://sys.stderr",
            }
        },
        # uvicorn's loggers lose their own handlers and propagate to ours.
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": True, "level": level},
        },
        "root": {"handlers": ["default"], "level": level},
    }


def configure_logging(
    fmt: LogFormat, level: LogLevel, record_filter: type[logging.Filter] | None = None
) -> None:
    """Apply `log_config(fmt, level, record_filter)` in this process."""
    logging.config.dictConfig(log_config(fmt, level, record_filter))
