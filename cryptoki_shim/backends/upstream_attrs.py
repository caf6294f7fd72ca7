"""The upstream backend's vendor-defined attribute (cryptoki-shim range ``0xD348xxxx``).

Kept apart from ``upstream.py`` (which loads cffi and the upstream client) so the attribute
tables know the type on every installation: a store written with an upstream HSM must
still load (and show its references) where the HSM is not configured. Importing this
module registers the kind in ``spec.ATTR_KIND`` (the codec's table).

| attribute | kind | what |
|---|---|---|
| CKA_SHIM_UPSTREAM_REF | BYTES | stable reference to the upstream object: ``owner=shim;label=<hex>`` or ``owner=adopted;id=<hex>`` (see backends/upstream.py) |
"""

from __future__ import annotations

from .. import spec
from ..spec import AttrKind

CKA_SHIM_UPSTREAM_REF = 0xD3480201

KINDS: dict[int, AttrKind] = {CKA_SHIM_UPSTREAM_REF: AttrKind.BYTES}

spec.ATTR_KIND.update(KINDS)
from ..attributes import codec as _codec  # noqa: E402  (codec imports nothing of ours)

if hasattr(_codec, "register_kinds"):  # the codec keeps its own copy of the kind table
    _codec.register_kinds(KINDS)
