"""The upstream backend: key material inside another PKCS#11 module (a vendor HSM;
SoftHSM2 in tests), operations run there (issue 6).

What lives where:

* the upstream holds the key objects and does every private/secret-key operation
  (sign, verify, encrypt, decrypt, wrap, unwrap, ECDH derive); keys are generated there,
  ``CKA_SENSITIVE`` TRUE and ``CKA_EXTRACTABLE`` FALSE unless the template says otherwise;
* our store holds the public attributes, ``CKA_SHIM_BACKEND`` = ``SHIM_BACKEND_UPSTREAM``
  and ``CKA_SHIM_UPSTREAM_REF``: a stable reference to the upstream object, never
  private material. Our handles are shown to the client; the upstream handle is cached in
  the object's ``cache`` per pool connection and looked up again by reference when the
  upstream session was re-opened.

``CKA_SHIM_UPSTREAM_REF`` (a byte string, read-only for clients) is ``owner=shim;label=<hex>``
for keys we generated (the upstream label ``cryptoki-shim:<uuid>`` with the object's class
makes it unique) or ``owner=adopted;id=<hex>`` / ``owner=adopted;label=<hex>`` for keys
that existed upstream before (``adopt``). Destroying our object deletes the upstream
object only when we own it.

Multi-part calls are accumulated here and sent upstream in one step at ``C_*Final``, so an
upstream session is never held between two of the client's calls (a pool of a few
sessions serves any number of ours, and a lost session loses no operation state).
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any, Mapping

from .. import spec
from ..spec_ints import (
    CKA_CLASS,
    CKA_COPYABLE,
    CKA_EC_PARAMS,
    CKA_EXTRACTABLE,
    CKA_ID,
    CKA_KEY_TYPE,
    CKA_LABEL,
    CKA_PRIVATE,
    CKA_SENSITIVE,
    CKA_SHIM_BACKEND,
    CKA_TOKEN,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
)
from .upstream_attrs import CKA_SHIM_UPSTREAM_REF
from ..errors import CryptokiError
from ..mechanisms.registry import MechanismEntry
from .base import Backend
from . import upstream_client as client
from .upstream_errors import ObjectMissing, UpstreamError
from .upstream_pool import Pool

_log = logging.getLogger(__name__)
A = spec
__all__ = ["UpstreamBackend", "adopt", "CKA_SHIM_UPSTREAM_REF", "LABEL_PREFIX"]

UPSTREAM = A.SHIM_BACKEND_UPSTREAM
LABEL_PREFIX = b"cryptoki-shim:"

#: template attributes handed to the upstream, per object class (others stay ours only:
#: an attribute the class does not have would make the upstream refuse the template)
PASSED: dict[int, tuple[int, ...]] = {
    CKO_PUBLIC_KEY: tuple(int(t) for t in (A.CKA_KEY_TYPE, A.CKA_ID, A.CKA_MODULUS_BITS, A.CKA_PUBLIC_EXPONENT,
                                           A.CKA_EC_PARAMS, A.CKA_ENCRYPT, A.CKA_VERIFY, A.CKA_VERIFY_RECOVER,
                                           A.CKA_WRAP, A.CKA_DERIVE, A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE)),
    CKO_PRIVATE_KEY: tuple(int(t) for t in (A.CKA_KEY_TYPE, A.CKA_ID, A.CKA_DECRYPT, A.CKA_SIGN, A.CKA_SIGN_RECOVER,
                                            A.CKA_UNWRAP, A.CKA_DERIVE, A.CKA_SENSITIVE, A.CKA_EXTRACTABLE,
                                            A.CKA_VALUE_BITS)),
    CKO_SECRET_KEY: tuple(int(t) for t in (A.CKA_KEY_TYPE, A.CKA_ID, A.CKA_VALUE_LEN, A.CKA_ENCRYPT, A.CKA_DECRYPT,
                                           A.CKA_SIGN, A.CKA_VERIFY, A.CKA_WRAP, A.CKA_UNWRAP, A.CKA_DERIVE,
                                           A.CKA_SENSITIVE, A.CKA_EXTRACTABLE)),
}
#: public attributes read back into our store after the upstream made a key
READ_BACK: dict[int, tuple[int, ...]] = {
    CKO_PUBLIC_KEY: tuple(int(t) for t in (A.CKA_KEY_TYPE, A.CKA_MODULUS, A.CKA_PUBLIC_EXPONENT, A.CKA_EC_PARAMS,
                                           A.CKA_EC_POINT, A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE, A.CKA_VALUE)),
    CKO_PRIVATE_KEY: tuple(int(t) for t in (A.CKA_KEY_TYPE, A.CKA_MODULUS, A.CKA_PUBLIC_EXPONENT, A.CKA_EC_PARAMS,
                                            A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE)),
    CKO_SECRET_KEY: (CKA_KEY_TYPE, CKA_VALUE_LEN),
}
#: flags of our mechanism entries that need a key (a digest runs in software anyway)
KEY_FLAGS = int(A.CKF_ENCRYPT | A.CKF_DECRYPT | A.CKF_SIGN | A.CKF_VERIFY | A.CKF_WRAP | A.CKF_UNWRAP
                | A.CKF_DERIVE | A.CKF_GENERATE | A.CKF_GENERATE_KEY_PAIR | A.CKF_SIGN_RECOVER | A.CKF_VERIFY_RECOVER)


# ---------------------------------------------------------------------- references


def make_ref(owner: str, **selector: bytes) -> bytes:
    """``owner=shim;label=<hex>``: the stored form of CKA_SHIM_UPSTREAM_REF."""
    return ";".join([f"owner={owner}", *(f"{k}={v.hex()}" for k, v in selector.items())]).encode()


def parse_ref(ref: bytes) -> tuple[str, dict[int, bytes]]:
    """(owner, search template without the class) of a stored reference."""
    owner, template = "", {}
    for part in ref.decode("ascii").split(";"):
        k, _, v = part.partition("=")
        if k == "owner":
            owner = v
        elif k == "label":
            template[CKA_LABEL] = bytes.fromhex(v)
        elif k == "id":
            template[CKA_ID] = bytes.fromhex(v)
    return owner, template


# ---------------------------------------------------------------------- contexts


class UpstreamOperation:
    """sign / verify / encrypt / decrypt on an upstream key (the contexts of registry.Family).

    ``update`` accumulates; ``final``/``oneshot`` run the whole operation upstream in one
    step. The output length is not known without doing the work (``length_hint`` None):
    the core then computes once and keeps the output for the client's second call.
    """

    __slots__ = ("_backend", "_kind", "_entry", "_param", "_key", "_parts")

    def __init__(self, backend: "UpstreamBackend", kind: str, entry: MechanismEntry, param: Any, key: Any) -> None:
        self._backend, self._kind, self._entry, self._param, self._key = backend, kind, entry, param, key
        self._parts: list[bytes] = []

    def update(self, data: bytes) -> Any:
        self._parts.append(bytes(data))
        return None if self._kind in ("sign", "verify") else b""

    def final(self, *signature: bytes) -> Any:
        return self._run(b"".join(self._parts), *signature)

    def oneshot(self, data: bytes, *signature: bytes) -> Any:
        return self._run(b"".join(self._parts) + bytes(data), *signature)

    def length_hint(self, step: str, data_len: int) -> int | None:
        if step == "update" or self._kind == "verify":
            return 0
        return None

    def _run(self, data: bytes, *signature: bytes) -> Any:
        mech = client.Mechanism(self._entry.mechanism, self._param)
        kind = self._kind

        def step(lib: client.Library, session: int, handle: int) -> Any:
            if kind == "verify":
                sig = bytes(signature[0])
                lib.call("C_VerifyInit", session, mech.ptr, handle)
                lib.call("C_Verify", session, data, len(data), sig, len(sig))
                return None
            name = {"sign": "Sign", "encrypt": "Encrypt", "decrypt": "Decrypt", "verify_recover": "VerifyRecover"}[kind]
            lib.call(f"C_{name}Init", session, mech.ptr, handle)
            return lib.two_pass(f"C_{name}", session, data, len(data))

        return self._backend.with_keys(step, self._key)


# ---------------------------------------------------------------------- backend


class UpstreamBackend(Backend):
    """Keys of one slot that live in the upstream token named by ``[slots.upstream]``."""

    backend_id = UPSTREAM

    def __init__(self, slot_cfg: Any) -> None:
        self.slot_cfg = slot_cfg
        self.cfg = dict(slot_cfg.upstream or {})
        self._pool: Pool | None = None   # made on first use: C_Initialize never touches the HSM

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            if not self.cfg.get("library"):
                raise CryptokiError(A.CKR_DEVICE_ERROR, f"slot {self.slot_cfg.id}: [slots.upstream] library is not set")
            self._pool = Pool(self.cfg)
        return self._pool

    def probe(self) -> str:
        """``doctor``'s check, for real: load the module, find the token, log in, count the
        mechanisms; any failure raises with the reason (the same path a key operation takes)."""
        pool = self.pool
        mechanisms = pool.mechanisms()
        token = self.cfg.get("token_label") or self.cfg.get("token_serial")
        return (f"{self.cfg['library']}: token {token!r} in upstream slot {pool.slot}, logged in, "
                f"{len(mechanisms)} mechanisms")

    # ------------------------------------------------------------------ handles

    def _handle(self, lib: client.Library, session: int, key: Any) -> int:
        """The upstream handle of our object ``key`` (cached per pool connection)."""
        pool = self.pool
        cached = key.cache.get("upstream")
        if cached is not None and cached[0] == pool.generation:
            return cached[1]
        ref = key.attrs.get(CKA_SHIM_UPSTREAM_REF)
        if not ref:
            raise CryptokiError(A.CKR_DEVICE_ERROR, "upstream key without a reference")
        _, template = parse_ref(ref)
        found = lib.find(session, {CKA_CLASS: key.attrs[CKA_CLASS], **template}, limit=2)
        if len(found) != 1:
            raise ObjectMissing(f"upstream object {ref!r}: {len(found)} matches")
        key.cache["upstream"] = (pool.generation, found[0])
        return found[0]

    def with_keys(self, step: Any, *keys: Any) -> Any:
        """``step(lib, session, *handles)`` on a pooled session; a stale handle is looked up
        again by reference and the step retried once."""

        def run(lib: client.Library, session: int) -> Any:
            for attempt in (0, 1):
                handles = [self._handle(lib, session, k) for k in keys]
                try:
                    return step(lib, session, *handles)
                except UpstreamError as exc:
                    if not exc.stale_handle or attempt:
                        raise
                    for k in keys:
                        k.cache.pop("upstream", None)

        return self.pool.run(run)

    # ------------------------------------------------------------------ mechanisms

    def mechanism_info(self, entry: MechanismEntry) -> tuple[int, int, int] | None:
        """What C_GetMechanismInfo says on a token whose keys are upstream: our entry
        narrowed to the upstream's limits; None if the upstream cannot do it (then it is not
        in C_GetMechanismList). Digests (no key) run here and are always offered."""
        if not entry.flags & KEY_FLAGS:
            return entry.min_key_size, entry.max_key_size, entry.flags
        theirs = self.pool.mechanisms().get(entry.mechanism)
        if theirs is None or not client.routable_param(entry.param):
            return None
        flags = entry.flags & theirs[2]
        if not flags & KEY_FLAGS:
            return None
        lo = max(entry.min_key_size, theirs[0])
        hi = min(entry.max_key_size, theirs[1]) if theirs[1] else entry.max_key_size
        return lo, hi, flags

    # ------------------------------------------------------------------ Backend protocol

    def context_maker(self, kind: str, entry: Any) -> Any:
        """Every operation runs upstream, accumulated here (``UpstreamOperation``)."""
        return functools.partial(self._operation_init, kind)

    def _operation_init(self, kind: str, entry: Any, param: Any, key: Any) -> Any:
        client.Mechanism(entry.mechanism, param)  # a parameter we cannot pass fails at Init
        return UpstreamOperation(self, kind, entry, param, key)

    def _upstream_template(self, cls: int, template: Mapping[int, Any], label: bytes) -> dict[int, Any]:
        out = {CKA_CLASS: cls}
        out.update({t: template[t] for t in PASSED[cls] if t in template})
        out[CKA_TOKEN] = bool(template.get(CKA_TOKEN, False))
        out[CKA_LABEL] = label
        if cls != CKO_PUBLIC_KEY:
            out[CKA_PRIVATE] = True
            out.setdefault(CKA_SENSITIVE, True)
            out.setdefault(CKA_EXTRACTABLE, False)
        return out

    def _material(self, lib: client.Library, session: int, handle: int, cls: int, template: Mapping[int, Any],
                  ref: bytes) -> dict[int, Any]:
        got = lib.get_attributes(session, handle, READ_BACK[cls])
        if got.get(CKA_VALUE_LEN) == 0:  # SoftHSM2 2.6 leaves it 0 on unwrapped keys: unknown
            del got[CKA_VALUE_LEN]
        material = {t: v for t, v in got.items() if t not in template or template[t] == v}
        material.update({CKA_CLASS: cls, CKA_SHIM_BACKEND: UPSTREAM, CKA_SHIM_UPSTREAM_REF: ref})
        if cls != CKO_PUBLIC_KEY:
            if CKA_SENSITIVE not in template:
                material[CKA_SENSITIVE] = True
        # One upstream object: a copy would alias it (and destroying either would delete it).
        if CKA_COPYABLE not in template:
            material[CKA_COPYABLE] = False
        return material

    def generate_key(self, entry: Any, param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        label = LABEL_PREFIX + uuid.uuid4().hex.encode()
        up = client.Template(self._upstream_template(CKO_SECRET_KEY, template, label))
        mech = client.Mechanism(entry.mechanism, param)

        def step(lib: client.Library, session: int) -> dict[int, Any]:
            h = client.ffi().new("CK_OBJECT_HANDLE *")
            lib.call("C_GenerateKey", session, mech.ptr, up.array, up.count, h)
            return self._material(lib, session, int(h[0]), CKO_SECRET_KEY, template, make_ref("shim", label=label))

        return self.pool.run(step)

    def generate_key_pair(self, entry: Any, param: Any, pub: Mapping[int, Any],
                          priv: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        label = LABEL_PREFIX + uuid.uuid4().hex.encode()
        tpub = client.Template(self._upstream_template(CKO_PUBLIC_KEY, pub, label))
        tpriv = client.Template(self._upstream_template(CKO_PRIVATE_KEY, priv, label))
        mech = client.Mechanism(entry.mechanism, param)
        ref = make_ref("shim", label=label)

        def step(lib: client.Library, session: int) -> tuple[dict[int, Any], dict[int, Any]]:
            f = client.ffi()
            hp, hq = f.new("CK_OBJECT_HANDLE *"), f.new("CK_OBJECT_HANDLE *")
            lib.call("C_GenerateKeyPair", session, mech.ptr, tpub.array, tpub.count, tpriv.array, tpriv.count, hp, hq)
            pub_mat = self._material(lib, session, int(hp[0]), CKO_PUBLIC_KEY, pub, ref)
            priv_mat = self._material(lib, session, int(hq[0]), CKO_PRIVATE_KEY, priv, ref)
            # The private key carries the public parameters our families read (EC_PARAMS).
            for t in (CKA_EC_PARAMS,):
                if t in pub_mat and t not in priv_mat:
                    priv_mat[t] = pub_mat[t]
            return pub_mat, priv_mat

        return self.pool.run(step)

    def wrap(self, entry: Any, param: Any, wrapping_key: Any, key: Any) -> bytes:
        mech = client.Mechanism(entry.mechanism, param)
        if key.attrs.get(CKA_SHIM_BACKEND) == UPSTREAM:
            return self.with_keys(lambda lib, s, hw, hk: lib.two_pass("C_WrapKey", s, mech.ptr, hw, hk),
                                  wrapping_key, key)
        if key.attrs.get(CKA_CLASS) != CKO_SECRET_KEY or CKA_VALUE not in key.attrs:
            raise CryptokiError(A.CKR_KEY_NOT_WRAPPABLE, "only upstream keys and software secret keys wrap upstream")
        # A software secret key: a temporary upstream session object, wrapped, destroyed.
        tmp = client.Template({CKA_CLASS: CKO_SECRET_KEY, CKA_KEY_TYPE: key.attrs[CKA_KEY_TYPE], CKA_TOKEN: False,
                               CKA_PRIVATE: True, CKA_SENSITIVE: False, CKA_EXTRACTABLE: True,
                               CKA_VALUE: key.attrs[CKA_VALUE]})

        def step(lib: client.Library, session: int, hw: int) -> bytes:
            h = client.ffi().new("CK_OBJECT_HANDLE *")
            lib.call("C_CreateObject", session, tmp.array, tmp.count, h)
            try:
                return lib.two_pass("C_WrapKey", session, mech.ptr, hw, int(h[0]))
            finally:
                lib.destroy(session, int(h[0]))

        return self.with_keys(step, wrapping_key)

    def unwrap(self, entry: Any, param: Any, unwrapping_key: Any, wrapped: bytes, key_class: int,
               key_type: int | None, value_len: int | None) -> dict[int, Any]:
        label = LABEL_PREFIX + uuid.uuid4().hex.encode()
        # The full template is not handed to backends: the upstream object is a token object
        # (it must outlive any pooled session), sensitive and not extractable.
        tmpl: dict[int, Any] = {CKA_CLASS: key_class, CKA_TOKEN: True, CKA_LABEL: label,
                                CKA_PRIVATE: True, CKA_SENSITIVE: True, CKA_EXTRACTABLE: False}
        if key_type is not None:
            tmpl[CKA_KEY_TYPE] = key_type
        if value_len is not None:
            tmpl[CKA_VALUE_LEN] = value_len
        up = client.Template(tmpl)
        mech = client.Mechanism(entry.mechanism, param)
        data = bytes(wrapped)

        def step(lib: client.Library, session: int, hu: int) -> dict[int, Any]:
            h = client.ffi().new("CK_OBJECT_HANDLE *")
            lib.call("C_UnwrapKey", session, mech.ptr, hu, data, len(data), up.array, up.count, h)
            known = {CKA_CLASS: key_class, **({CKA_KEY_TYPE: key_type} if key_type is not None else {}),
                     **({CKA_VALUE_LEN: value_len} if value_len is not None else {}), CKA_SENSITIVE: None,
                     CKA_COPYABLE: None}
            mat = self._material(lib, session, int(h[0]), key_class, known, make_ref("shim", label=label))
            return mat

        return self.with_keys(step, unwrapping_key)

    def derive(self, entry: Any, param: Any, base_key: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        label = LABEL_PREFIX + uuid.uuid4().hex.encode()
        cls = template.get(CKA_CLASS, CKO_SECRET_KEY)
        if cls != CKO_SECRET_KEY:
            raise CryptokiError(A.CKR_TEMPLATE_INCONSISTENT, "upstream derivation makes secret keys")
        up = client.Template(self._upstream_template(CKO_SECRET_KEY, template, label))
        mech = client.Mechanism(entry.mechanism, param)

        def step(lib: client.Library, session: int, hb: int) -> dict[int, Any]:
            h = client.ffi().new("CK_OBJECT_HANDLE *")
            lib.call("C_DeriveKey", session, mech.ptr, hb, up.array, up.count, h)
            return self._material(lib, session, int(h[0]), CKO_SECRET_KEY, template, make_ref("shim", label=label))

        return self.with_keys(step, base_key)

    def destroyed(self, key: Any) -> None:
        """Delete the upstream object we made (adopted keys stay: they were there before us)."""
        ref = key.attrs.get(CKA_SHIM_UPSTREAM_REF)
        if not ref or parse_ref(ref)[0] != "shim":
            return
        try:
            self.with_keys(lambda lib, s, h: lib.destroy(s, h), key)
        except CryptokiError as exc:
            _log.warning("upstream object %r not deleted: %s", ref, exc)

    def logged_out(self) -> None:
        """The upstream login belongs to the pool (shared by every session), not to ours."""


# ---------------------------------------------------------------------- adoption

#: upstream attributes copied into our object on adoption (with PASSED and READ_BACK)
ADOPTED_FLAGS = tuple(int(t) for t in (A.CKA_LOCAL, A.CKA_ALWAYS_SENSITIVE, A.CKA_NEVER_EXTRACTABLE,
                                       A.CKA_KEY_GEN_MECHANISM))


def adopt(token: Any, *, label: bytes | None = None, id: bytes | None = None) -> list[Any]:
    """Put existing upstream keys in front of clients: objects in our store that refer to
    the upstream key objects matching ``label`` and/or ``id`` (every key class found).

    ``token`` is a ``core.token.Token`` whose slot configures ``[slots.upstream]``; the
    admin CLI calls this (no login needed: the new objects hold no private material).
    Returns the new objects (``.handle``, ``.attrs``). The upstream objects are not changed
    and are not deleted when our objects are destroyed.
    Raises ``CryptokiError(CKR_ARGUMENTS_BAD)`` when nothing, or more than one object of a
    class, matches (a reference must name exactly one upstream object).
    """
    from ..attributes import policy

    if label is None and id is None:
        raise CryptokiError(A.CKR_ARGUMENTS_BAD, "adopt needs a label or an id")
    backend = token.backends.get(UPSTREAM)
    if backend is None:
        raise CryptokiError(A.CKR_ARGUMENTS_BAD, f"slot {token.slot_id} has no [slots.upstream]")
    selector = {**({"label": label} if label is not None else {}), **({"id": id} if id is not None else {})}
    ref = make_ref("adopted", **selector)
    search = parse_ref(ref)[1]

    def step(lib: client.Library, session: int) -> list[dict[int, Any]]:
        found = []
        for cls in (CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY):
            handles = lib.find(session, {CKA_CLASS: cls, **search}, limit=2)
            if len(handles) > 1:
                raise CryptokiError(A.CKR_ARGUMENTS_BAD, f"{len(handles)} upstream {A.cko_name(cls)} objects match")
            if handles:
                want = set(PASSED[cls]) | set(READ_BACK[cls]) | set(ADOPTED_FLAGS) | {CKA_LABEL, CKA_ID, CKA_PRIVATE}
                found.append({CKA_CLASS: cls, **lib.get_attributes(session, handles[0], sorted(want))})
        return found

    objects = []
    for up in backend.pool.run(step):
        cls = up[CKA_CLASS]
        template = {t: up[t] for t in (CKA_CLASS, CKA_LABEL, CKA_ID, CKA_PRIVATE, *PASSED[cls])
                    if t in up and t not in (CKA_VALUE_LEN,)}
        template[CKA_TOKEN] = True
        material = {t: up[t] for t in READ_BACK[cls] if t in up and t not in template}
        material.update({CKA_SHIM_BACKEND: UPSTREAM, CKA_SHIM_UPSTREAM_REF: ref, CKA_COPYABLE: False})
        if cls == CKO_SECRET_KEY and CKA_VALUE_LEN in up:
            material[CKA_VALUE_LEN] = up[CKA_VALUE_LEN]
        attrs = policy.build_object(template, policy.Origin.UNWRAP, material=material)
        attrs.update({t: up[t] for t in ADOPTED_FLAGS if t in up and t in attrs})
        objects.append(token.add_object(attrs, None))
    if not objects:
        raise CryptokiError(A.CKR_ARGUMENTS_BAD, f"no upstream key matches {selector}")
    return objects
