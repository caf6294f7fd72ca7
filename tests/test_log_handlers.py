"""Repeated configuration (every C_Initialize re-reads CRYPTOKI_SHIM_LOG) leaves exactly one
handler on our logger, whether logging is off (NullHandler) or on."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptoki_shim import log


def test_repeated_configure_keeps_one_handler(tmp_path: Path) -> None:
    logger = logging.getLogger(log.ROOT)
    log.configure(None)
    foreign = [h for h in logger.handlers if h is not log._handler]  # e.g. other tests' caplog

    def ours() -> list[logging.Handler]:
        return [h for h in logger.handlers if h not in foreign]

    try:
        for _ in range(5):
            log.configure(None)
        assert len(ours()) == 1 and isinstance(ours()[0], logging.NullHandler)
        log.configure(str(tmp_path / "shim.log"))
        assert len(ours()) == 1 and isinstance(ours()[0], logging.FileHandler)
        log.configure(None)
        assert len(ours()) == 1 and isinstance(ours()[0], logging.NullHandler)
    finally:
        log.configure_from_environment()
