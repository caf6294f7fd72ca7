"""The upstream backend's vendor-defined attribute (cryptoki-shim range ``0xD348xxxx``).

Kept apart from ``upstream.py`` (which loads cffi and the upstream client) so the attribute
tables know the type on every installation: a store written with an upstream HSM must
still load (and show its references) where the HSM is not configured. Importing this
module registers the kind with the attribute codec (``codec.register_kinds``).

| attribute | kind | what |
|---|---|---|
| CKA_SHIM_UPSTREAM_REF | BYTES | stable reference to the upstream object: ``owner=shim;label=<hex>`` or ``owner=adopted;id=<hex>`` (see backends/upstream.py) |
"""

from __future__ import annotations

from ..spec import AttrKind

CKA_SHIM_UPSTREAM_REF = 0xD3480201

KINDS: dict[int, AttrKind] = {CKA_SHIM_UPSTREAM_REF: AttrKind.BYTES}

# After the constants: attributes.tables imports this module while the attributes package is
# being initialized, so what it needs must exist before we import the codec from it.
from ..attributes import codec as _codec  # noqa: E402

_codec.register_kinds(KINDS)
