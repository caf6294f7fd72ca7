"""The upstream backend's vendor-defined attribute (cryptoki-shim range ``0xD348xxxx``).

Defined, with its kind, where every vendor attribute is: ``spec`` (``scripts/gen_spec.py``),
so the attribute tables know the type on every installation (a store written with an
upstream HSM must still load, and show its references, where the HSM is not configured)
without importing a backend; this module names what it means for the upstream backend.

| attribute | kind | what |
|---|---|---|
| CKA_SHIM_UPSTREAM_REF | BYTES | stable reference to the upstream object: ``owner=shim;label=<hex>`` or ``owner=adopted;id=<hex>`` (see backends/upstream.py) |
"""

from __future__ import annotations

from ..spec import CKA_SHIM_UPSTREAM_REF  # noqa: F401  (re-exported)
