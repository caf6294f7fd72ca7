"""Logging for a library that lives inside other people's processes.

Nothing is written anywhere unless asked: a PKCS#11 module shares stdout/stderr with its
host (pkcs11-tool's output, an SSH agent's protocol stream). ``CRYPTOKI_SHIM_LOG`` names a
file (or ``stderr``) and ``CRYPTOKI_SHIM_LOG_LEVEL`` a level; the configuration file can
set the same. Secrets are never passed to the logger.
"""

from __future__ import annotations

import logging
import os

from .private_files import PrivateFileHandler

ROOT = "cryptoki_shim"
_handler: logging.Handler | None = None


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
    handler = logging.StreamHandler() if path == "stderr" else PrivateFileHandler(path)  # 0600
    handler.setFormatter(
        logging.Formatter("%(asctime)s cryptoki-shim[%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(level if isinstance(level, int) else level.upper())
    _handler = handler


def configure_from_environment() -> None:
    configure(os.environ.get("CRYPTOKI_SHIM_LOG") or None, os.environ.get("CRYPTOKI_SHIM_LOG_LEVEL", "INFO"))
