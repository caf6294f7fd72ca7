"""The C boundary: one Python entry per C_* function, attached to cffi's embedding API.

Entries read C arguments into Python values, call the core, and write results back with
the helpers of ``marshal``; nothing here decides PKCS#11 semantics. ``install`` is called
once by the embedding init code (see build_ffi.py) with the cffi module's ``ffi``/``lib``.
"""

from __future__ import annotations

from .entry import install

__all__ = ["install"]
