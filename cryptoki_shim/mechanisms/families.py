"""Imports every mechanism family so that each registers its entries (see registry.py).

A family module that fails to import (a missing optional dependency) must not take the
others down; it is logged and skipped.
"""

import importlib
import logging

_log = logging.getLogger(__name__)

FAMILY_MODULES = ("digest", "hmac", "rsa", "ec", "eddsa", "dsa", "dh", "aes", "des", "chacha", "wrap", "derive", "generic", "mldsa", "mlkem", "slhdsa")

for _name in FAMILY_MODULES:
    try:
        importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as exc:  # a family not written yet, or an optional dependency
        if exc.name != f"{__package__}.{_name}":
            _log.exception("mechanism family %s failed to import", _name)
