"""Logging for a library that lives inside other people's processes.

Nothing is written anywhere unless asked: a PKCS#11 module shares stdout/stderr with its
host (pkcs11-tool's output, an SSH agent's protocol stream). ``CRYPTOKI_SHIM_LOG`` names a
file (or ``stderr``) and ``CRYPTOKI_SHIM_LOG_LEVEL`` a level; the configuration file can
set the same. Secrets are never passed to the logger.

Logging can never fail a call nor print (issue 15 item 6, issue 25 item 3): a log file that
cannot be opened or written (a missing directory, a full disk, no permission) drops its
records. Before, the handler's exception escaped the logging call (``C_Initialize``
answered CKR_GENERAL_ERROR) and logging's or cffi's report of it went to the host's stderr.
"""

from __future__ import annotations

import logging
import os
import sys

from .private_files import PrivateFileHandler

ROOT = "cryptoki_shim"
_handler: logging.Handler | None = None


class _Quiet(logging.Handler):
    """Our handlers' failure rule: a record that cannot be written is dropped.

    ``handle`` catches what escapes ``emit`` (FileHandler opens its file there, outside
    its own error handling); ``handleError`` is what logging calls for the rest, and would
    print a traceback on ``sys.stderr`` (the host's, in a Python host)."""

    def handle(self, record: logging.LogRecord) -> bool:
        try:
            return bool(super().handle(record))
        except Exception:
            return False

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class _FileHandler(_Quiet, PrivateFileHandler):
    """The log file (0600 when we create it, see private_files)."""


class _StderrHandler(_Quiet, logging.StreamHandler):
    """CRYPTOKI_SHIM_LOG=stderr: the process's real stderr, asked for explicitly (not
    ``sys.stderr``, which is our own sink in a C host: see abi.isolation)."""

    def __init__(self) -> None:
        super().__init__(sys.__stderr__)


def configure(path: str | None, level: str | int = "INFO") -> None:
    """Send our records to ``path`` (a file, or "stderr"); ``None`` keeps them silent."""
    global _handler
    logger = logging.getLogger(ROOT)
    logger.propagate = False  # never into the host's own logging setup (Python hosts)
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
        _handler = None
    handler: logging.Handler
    if not path:  # kept in _handler too, so repeated C_Initialize calls do not pile them up
        handler = logging.NullHandler()
        logger.addHandler(handler)
        logger.setLevel(logging.CRITICAL + 1)
        _handler = handler
        return
    handler = _StderrHandler() if path == "stderr" else _FileHandler(path)
    handler.setFormatter(
        logging.Formatter("%(asctime)s cryptoki-shim[%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(level if isinstance(level, int) else level.upper())
    _handler = handler


def configure_from_environment() -> None:
    configure(os.environ.get("CRYPTOKI_SHIM_LOG") or None, os.environ.get("CRYPTOKI_SHIM_LOG_LEVEL", "INFO"))
