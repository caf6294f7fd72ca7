"""Cryptographic functions on a session (§5.8–§5.15): operations, keys, random.

Built on ``ObjectFunctions`` (``Session``'s chain, see ``session``). The key checks every
``C_*Init`` makes are one function (``check_key``) and the table ``OPERATIONS`` names, per
kind, the mechanism flag, the key's usage attribute and whether a context login may be
needed. Operations start and run by ``states.OPERATION`` through ``SessionState`` (``busy``,
``produce``, ``consume``: the one buffer-protocol rule).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from .. import audit, backends, metrics, spec
from ..spec_ints import (
    CKA_ALLOWED_MECHANISMS,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_CLASS,
    CKA_DECRYPT,
    CKA_DERIVE,
    CKA_DERIVE_TEMPLATE,
    CKA_ENCRYPT,
    CKA_EXTRACTABLE,
    CKA_KEY_TYPE,
    CKA_SENSITIVE,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_TRUSTED,
    CKA_UNWRAP,
    CKA_UNWRAP_TEMPLATE,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_WRAP_TEMPLATE,
    CKA_WRAP_WITH_TRUSTED,
    CKF_DECRYPT,
    CKF_DERIVE,
    CKF_DIGEST,
    CKF_ENCRYPT,
    CKF_GENERATE,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_SIGN_RECOVER,
    CKF_UNWRAP,
    CKF_VERIFY,
    CKF_VERIFY_RECOVER,
    CKF_WRAP,
    CKM_AES_CBC_PAD,
    CKM_AES_GCM,
    CKM_SHA224,
    CKM_SHA224_HMAC,
    CKM_SHA256,
    CKM_SHA256_HMAC,
    CKM_SHA384,
    CKM_SHA384_HMAC,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA512,
    CKM_SHA512_HMAC,
    CKM_SHA512_224,
    CKM_SHA512_256,
    CKM_SHA_1,
    CKM_SHA_1_HMAC,
    CKO_DATA,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
)
from ..attributes import policy
from ..attributes.policy import Origin
from ..mechanisms.registry import ParameterGenData
from ..errors import CryptokiError
from ..mechanisms.params import GcmParams, HkdfParams, KeyHandleParam
from ..mechanisms.registry import Mechanism, MechanismEntry, check_offered, lookup
from . import key_management, lane
from .object_functions import ObjectFunctions
from .objects import Object
from .operations import DIGEST_KEY, Operation
from .states import FINAL, ONESHOT, UPDATE

A = spec

#: kind -> (mechanism flag, key usage attribute, may need a context login?)
OPERATIONS: dict[str, tuple[int, int, bool]] = {
    "sign": (CKF_SIGN, CKA_SIGN, True),
    "verify": (CKF_VERIFY, CKA_VERIFY, False),
    "encrypt": (CKF_ENCRYPT, CKA_ENCRYPT, False),
    "decrypt": (CKF_DECRYPT, CKA_DECRYPT, True),
    "sign_recover": (CKF_SIGN_RECOVER, CKA_SIGN_RECOVER, True),
    "verify_recover": (CKF_VERIFY_RECOVER, CKA_VERIFY_RECOVER, False),
}
#: C_SignRecover's output is the signature C_Sign makes (§5.13.7): backends make a "sign"
#: context for it (a backend never sees "sign_recover", so none can mistake it for another use).
CONTEXT_KIND = {"sign_recover": "sign"}
MAX_RANDOM = 1 << 20
#: dual function -> (the operation whose update makes the output, the one that takes the
#: plaintext, does it take the call's input (else the output)?)
DUAL: dict[str, tuple[str, str, bool]] = {
    "C_DigestEncryptUpdate": ("encrypt", "digest", True),
    "C_DecryptDigestUpdate": ("decrypt", "digest", False),
    "C_SignEncryptUpdate": ("encrypt", "sign", True),
    "C_DecryptVerifyUpdate": ("decrypt", "verify", False),
}
#: The digests C_DigestKey runs on a protected key (``digest_key``), and the shortest such key.
KEY_DIGESTS = frozenset({CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512, CKM_SHA512_224, CKM_SHA512_256,
                         CKM_SHA3_224, CKM_SHA3_256, CKM_SHA3_384, CKM_SHA3_512})
MIN_PROTECTED_DIGEST_BYTES = 16
#: What the native lane may repeat of C_SignInit/C_VerifyInit/C_EncryptInit (``_arm_keyed``):
#: full-length HMAC on the native SHA-1/SHA-2, AES-GCM and AES-CBC-PAD encryption
#: (native/lane.c has the same lists).
_LANE_HMAC = frozenset({CKM_SHA_1_HMAC, CKM_SHA224_HMAC, CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_SHA512_HMAC})
_LANE_KEYED: dict[str, frozenset[int]] = {"sign": _LANE_HMAC, "verify": _LANE_HMAC,
                                          "encrypt": frozenset({CKM_AES_GCM, CKM_AES_CBC_PAD})}


def check_key(entry: MechanismEntry, key: Object, usage: int, *, handle_error: int | None = None) -> None:
    """The checks of every key use: usage flag, key type, CKA_ALLOWED_MECHANISMS."""
    attrs = key.attrs
    if attrs.get(usage) is not True:
        raise CryptokiError(A.CKR_KEY_FUNCTION_NOT_PERMITTED, f"{A.cka_name(usage)} is not TRUE")
    if entry.key_types and attrs.get(CKA_KEY_TYPE) not in entry.key_types:
        raise CryptokiError(handle_error or A.CKR_KEY_TYPE_INCONSISTENT,
                            f"{A.ckm_name(entry.mechanism)} does not take key type {attrs.get(CKA_KEY_TYPE)}")
    allowed = attrs.get(CKA_ALLOWED_MECHANISMS)
    if allowed and entry.mechanism not in allowed:
        raise CryptokiError(A.CKR_MECHANISM_INVALID, "not in CKA_ALLOWED_MECHANISMS")


def _require_flag(entry: MechanismEntry, flag: int) -> None:
    if not entry.flags & flag:
        raise CryptokiError(A.CKR_MECHANISM_INVALID, f"{A.ckm_name(entry.mechanism)} cannot do this")


#: mechanism -> the maker of its keyless contexts (digests), asked of the backends once
#: (``backends.keyless_context_maker``), like a key's verdict: C_DigestInit then costs a
#: dict lookup and the maker's call.
_KEYLESS: dict[int, Callable[[MechanismEntry, Any, None], Any]] = {}


def _keyless(entry: MechanismEntry) -> Callable[[MechanismEntry, Any, None], Any]:
    maker = _KEYLESS.get(entry.mechanism)
    if maker is None:
        maker = _KEYLESS[entry.mechanism] = backends.keyless_context_maker("digest", entry)
    return maker


def _matches(template: dict[int, Any] | None, attrs: dict[int, Any]) -> bool:
    return not template or all(attrs.get(t) == v for t, v in template.items())


def _merge_template(base_template: dict[int, Any] | None, template: dict[int, Any]) -> dict[int, Any]:
    """CKA_UNWRAP_TEMPLATE / CKA_DERIVE_TEMPLATE: their values apply; a contradiction is
    CKR_TEMPLATE_INCONSISTENT (§4.9 note on unwrap/derive templates)."""
    if not base_template:
        return template
    for t, v in base_template.items():
        if t in template and template[t] != v:
            raise CryptokiError(A.CKR_TEMPLATE_INCONSISTENT, f"{A.cka_name(t)} contradicts the key's template")
    return {**template, **base_template}


class CryptoFunctions(ObjectFunctions):
    # ------------------------------------------------------------------ init/cancel

    def operation_init(self, kind: str, mech: Mechanism | None, key_handle: int) -> None:
        """C_SignInit, C_VerifyInit, C_EncryptInit, C_DecryptInit, C_SignRecoverInit,
        C_VerifyRecoverInit. NULL mechanism cancels (3.0).

        The key checks depend only on the key's attributes, and a key's ``cache`` is emptied
        whenever they change (``Token.update_object``; a reload makes a new ``Object``): so
        the verdict — which backend runs it, whether a context login is needed — is kept
        there per (kind, mechanism), and a repeated C_*Init with the same key skips them.
        """
        if mech is None:
            self.cancel(kind)
            return
        if kind in self.ops:
            self.busy(kind)
        entry = mech.entry
        flag, usage, context_login = OPERATIONS[kind]
        if not entry.flags & flag:
            _require_flag(entry, flag)  # raises
        if entry.legacy:
            check_offered(entry, self.token.cfg.legacy_mechanisms)
        key = self.key(key_handle)
        slot = (kind, entry.mechanism)
        verdict = key.cache.get(slot)
        try:
            if verdict is None:
                check_key(entry, key, usage)
                if kind == "decrypt":
                    key_management.check_decrypt(key.attrs)
                needs_login = context_login and key.attrs.get(CKA_ALWAYS_AUTHENTICATE) is True
                maker = self.token.backend_for(key).context_maker(CONTEXT_KIND.get(kind, kind), entry)
                verdict = key.cache[slot] = (maker, needs_login)
            ctx = verdict[0](entry, mech.param, key)
        except CryptokiError as exc:  # a refused use of a key is audited like a failed one
            audit.key_use(self, Operation(kind, None, entry.mechanism, key), exc)
            if metrics.ON:
                metrics.operation_ended(self.token.slot_id, entry.mechanism, kind, 0.0, exc)
            raise
        self.ops[kind] = Operation(kind, ctx, entry.mechanism, key, verdict[1], mech.param)
        if lane.ON and entry.mechanism in _LANE_KEYED.get(kind, ()):
            self._arm_keyed(kind, mech, key_handle, key, ctx, verdict)

    def _arm_keyed(self, kind: str, mech: Mechanism, key_handle: int, key: Object, ctx: Any,
                   verdict: tuple[Any, bool]) -> None:
        """The verdict of this C_SignInit/C_VerifyInit/C_EncryptInit, for the native lane to
        repeat on this session (core/lane.py): only a full-length HMAC (no parameter) or
        AES-GCM / AES-CBC-PAD encryption (the lane checks each call's CK_GCM_PARAMS or IV as
        a subset of what Python accepts), with a session key (CKA_TOKEN FALSE: no other process changes it) of
        the software backend, no context login, and no per-use record to keep (metrics,
        audited key use). The lane gets the key's prepared HMAC state or AES key, the
        context's own; the key and its context maker are kept for ``adopt_lane_operation``."""
        if ((mech.param is not None and kind != "encrypt") or verdict[1] or metrics.ON or audit.KEY_USE
                or key.is_token or self.token.backend_for(key) is not self.token.backends[backends.SOFTWARE]):
            return
        state = getattr(ctx, "lane_state", None)
        prepared = state() if state is not None else None
        if prepared is None:
            return
        table = self.lane_table()
        if lane.IMPL.arm_key(self.handle, lane.KIND_BITS[kind], mech.entry.mechanism, key_handle, prepared,
                             table.mask):
            table.lane_keys[(kind, mech.entry.mechanism, key_handle)] = (key, verdict[0])

    def digest_init(self, mech: Mechanism | None) -> None:
        if mech is None:
            self.cancel("digest")
            return
        if "digest" in self.ops:
            self.busy("digest")
        entry = mech.entry
        if not entry.flags & CKF_DIGEST:
            _require_flag(entry, CKF_DIGEST)  # raises
        if entry.legacy:
            check_offered(entry, self.token.cfg.legacy_mechanisms)
        self.ops["digest"] = Operation("digest", _keyless(entry)(entry, mech.param, None), entry.mechanism,
                                       param=mech.param)
        if lane.ON and mech.param is None and not metrics.ON:
            # the verdict, for the native lane to repeat on this session (core/lane.py): a
            # digest has no key, so nothing but the session and the epoch bounds it; with
            # metrics on, every operation must be counted here, so none is armed
            lane.IMPL.arm_digest(self.handle, entry.mechanism, self.lane_table().mask)

    def adopt_lane_operation(self, kind: str, mechanism: int, key_handle: int, param: Any) -> None:
        """A native-lane operation becomes this session's Python operation (``lane.adopt``):
        the operation this session's C_*Init would have made (its verdict was made here, the
        lane only repeated it), fresh, as every lane operation is. A keyed one is made from
        the key and context maker kept when it was armed (``_arm_keyed``): the key may have
        been destroyed since, and an operation started before goes on, as Python's own does."""
        entry = lookup(mechanism)
        table = self.lane_table()  # (always one already: the session was armed)
        if kind == "digest":
            table.adopt(kind, Operation(kind, _keyless(entry)(entry, None, None), mechanism))
            return
        key, maker = table.lane_keys[(kind, mechanism, key_handle)]
        if mechanism == CKM_AES_GCM:  # the CK_GCM_PARAMS of the lane's C_EncryptInit
            param = GcmParams(*param)  # (AES-CBC-PAD's: the IV, bytes as Python reads it)
        table.adopt(kind, Operation(kind, maker(entry, param, key), mechanism, key, param=param))

    # ------------------------------------------------------------------ steps

    def verify(self, data: bytes, signature: bytes) -> None:
        self.consume("verify", ONESHOT, data, signature)

    def verify_final(self, signature: bytes) -> None:
        self.consume("verify", FINAL, signature)

    def digest_key(self, key_handle: int) -> None:
        """C_DigestKey: digest a secret key's value inside the module (§5.12.4).

        A protected key (CKA_SENSITIVE, or not CKA_EXTRACTABLE) is digested only by a
        one-way hash of the SHA-1/SHA-2/SHA-3 families and only if its value has at least
        128 bits: a shorter value could be found from its digest by search, and a legacy
        digest is no one-way function to rely on (docs/security.md; SoftHSM2 has the same
        hash whitelist). A key without a value here (held upstream or in the TPM) is
        indigestible. Any error ends the digest (§5.2), as a failed C_DigestUpdate does.
        """
        op = self._active("digest", UPDATE)
        try:
            key = self.key(key_handle)
            attrs = key.attrs
            if attrs.get(CKA_CLASS) != CKO_SECRET_KEY:
                raise CryptokiError(A.CKR_KEY_INDIGESTIBLE, "only secret keys can be digested")
            value = attrs.get(CKA_VALUE)
            if not isinstance(value, (bytes, bytearray)) or not value:
                raise CryptokiError(A.CKR_KEY_INDIGESTIBLE, "the key's value is not held by this module")
            if attrs.get(CKA_SENSITIVE) is not False or attrs.get(CKA_EXTRACTABLE) is not True:
                if op.mechanism not in KEY_DIGESTS:
                    raise CryptokiError(A.CKR_KEY_INDIGESTIBLE, "a protected key is digested by SHA-1/2/3 only")
                if len(value) < MIN_PROTECTED_DIGEST_BYTES:
                    raise CryptokiError(A.CKR_KEY_INDIGESTIBLE, "a protected key under 128 bits is not digested")
        except CryptokiError:
            self.ops.pop("digest", None)
            raise
        self.consume("digest", DIGEST_KEY, bytes(value))

    def dual_update(self, name: str, capacity: int | None, data: bytes) -> bytes | int:
        """The dual-function updates (§5.13: C_DigestEncryptUpdate, C_DecryptDigestUpdate,
        C_SignEncryptUpdate, C_DecryptVerifyUpdate): the cipher's update by the buffer
        protocol, then the digest/sign/verify update of the plaintext, only once the output
        is delivered (a length query or CKR_BUFFER_TOO_SMALL feeds nothing). Both operations
        must be active and multi-part capable; the caller ends both on an error (``DUAL``)."""
        producer, consumer, takes_input = DUAL[name]
        self._active(consumer, UPDATE)  # CKR_OPERATION_NOT_INITIALIZED before any work
        out = self.produce(capacity, producer, UPDATE, data)
        if out.__class__ is not int:
            self.consume(consumer, UPDATE, data if takes_input else out)
        return out

    # ------------------------------------------------------------------ keys

    def generate_key(self, mech: Mechanism, template: dict[int, Any]) -> int:
        entry = mech.entry
        _require_flag(entry, CKF_GENERATE)
        check_offered(entry, self.token.cfg.legacy_mechanisms)
        if isinstance(entry.data, ParameterGenData):  # public values: software on every token
            backend = self.token.backends[backends.SOFTWARE]
        else:
            backend = self.token.backend_for_new(template)
        material = {CKA_CLASS: CKO_SECRET_KEY, **backend.generate_key(entry, mech.param, template)}
        attrs = policy.build_object(template, Origin.GENERATE, material=material,
                                    key_gen_mechanism=entry.mechanism, is_so=self.is_so)
        return self.add(attrs).handle

    def generate_key_pair(self, mech: Mechanism, pub_template: dict[int, Any],
                          priv_template: dict[int, Any]) -> tuple[int, int]:
        entry = mech.entry
        _require_flag(entry, CKF_GENERATE_KEY_PAIR)
        backend = self.token.backend_for_new(priv_template)
        pub_mat, priv_mat = backend.generate_key_pair(entry, mech.param, pub_template, priv_template)
        pub = policy.build_object(pub_template, Origin.GENERATE, material={CKA_CLASS: CKO_PUBLIC_KEY, **pub_mat},
                                  key_gen_mechanism=entry.mechanism, is_so=self.is_so)
        priv = policy.build_object(priv_template, Origin.GENERATE, material={CKA_CLASS: CKO_PRIVATE_KEY, **priv_mat},
                                   key_gen_mechanism=entry.mechanism, is_so=self.is_so)
        self.check_may_create(pub)
        self.check_may_create(priv)
        pub_obj = self.add(pub)
        try:
            priv_obj = self.add(priv)
        except BaseException:
            self.token.destroy_object(pub_obj)
            raise
        return pub_obj.handle, priv_obj.handle

    def wrap_key(self, mech: Mechanism, wrapping_handle: int, key_handle: int) -> bytes:
        entry = mech.entry
        _require_flag(entry, CKF_WRAP)
        check_offered(entry, self.token.cfg.legacy_mechanisms)
        wrapping = self._key_or(wrapping_handle, A.CKR_WRAPPING_KEY_HANDLE_INVALID)
        key = None
        try:
            check_key(entry, wrapping, CKA_WRAP, handle_error=A.CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
            key = self.key(key_handle)
            if key.attrs.get(CKA_EXTRACTABLE) is not True:
                raise CryptokiError(A.CKR_KEY_UNEXTRACTABLE, "CKA_EXTRACTABLE is FALSE")
            if key.attrs.get(CKA_WRAP_WITH_TRUSTED) is True and wrapping.attrs.get(CKA_TRUSTED) is not True:
                raise CryptokiError(A.CKR_KEY_NOT_WRAPPABLE, "CKA_WRAP_WITH_TRUSTED needs a trusted wrapping key")
            if not _matches(wrapping.attrs.get(CKA_WRAP_TEMPLATE), key.attrs):
                raise CryptokiError(A.CKR_KEY_NOT_WRAPPABLE, "key does not match the wrapping key's CKA_WRAP_TEMPLATE")
            key_management.wrap_rules(wrapping.attrs, key.attrs, key is wrapping)
            private_half = key_management.trusted_public_with_private_here(wrapping.attrs)
            if private_half is not None and self.token.search(private_half):
                raise CryptokiError(A.CKR_KEY_NOT_WRAPPABLE,
                                    "the trusted public key's private key is in this token: it would open the blob")
            blob = self.token.backend_for(wrapping).wrap(entry, mech.param, wrapping, key)
        except CryptokiError as exc:
            audit.key_management(self, "wrap", entry.mechanism, wrapping, key, exc)
            raise
        audit.key_management(self, "wrap", entry.mechanism, wrapping, key)
        return blob

    def unwrap_key(self, mech: Mechanism, unwrapping_handle: int, wrapped: bytes,
                   template: dict[int, Any]) -> int:
        entry = mech.entry
        _require_flag(entry, CKF_UNWRAP)
        check_offered(entry, self.token.cfg.legacy_mechanisms)
        unwrapping = self._key_or(unwrapping_handle, A.CKR_UNWRAPPING_KEY_HANDLE_INVALID)
        new = None
        try:
            check_key(entry, unwrapping, CKA_UNWRAP, handle_error=A.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
            template = _merge_template(unwrapping.attrs.get(CKA_UNWRAP_TEMPLATE), template)
            if CKA_CLASS not in template:
                raise CryptokiError(A.CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is needed to unwrap")
            forced = key_management.unwrap_rules(unwrapping.attrs, template)
            material = self.token.backend_for(unwrapping).unwrap(entry, mech.param, unwrapping, wrapped,
                                                                 template[CKA_CLASS], template.get(CKA_KEY_TYPE),
                                                                 template.get(CKA_VALUE_LEN))
            attrs = policy.build_object(template, Origin.UNWRAP, material={**material, **forced},
                                        base=dict(unwrapping.attrs), is_so=self.is_so)
            new = self.add(attrs)
        except CryptokiError as exc:
            audit.key_management(self, "unwrap", entry.mechanism, unwrapping, None, exc)
            raise
        audit.key_management(self, "unwrap", entry.mechanism, unwrapping, new)
        return new.handle

    def derive_key(self, mech: Mechanism, base_handle: int, template: dict[int, Any]) -> int:
        entry = mech.entry
        _require_flag(entry, CKF_DERIVE)
        check_offered(entry, self.token.cfg.legacy_mechanisms)
        base = self.key(base_handle)
        new = None
        try:
            check_key(entry, base, CKA_DERIVE)
            template = _merge_template(base.attrs.get(CKA_DERIVE_TEMPLATE), template)
            param, salt_key = self._resolve_param_keys(mech.param)
            bases = [base.attrs] if salt_key is None else [base.attrs, salt_key.attrs]
            makes_key = entry.mechanism != A.CKM_HKDF_DATA and template.get(CKA_CLASS) != CKO_DATA
            weak = self.token.cfg.weak_derivation
            # the inherited protection goes into the template: a backend that makes the key
            # elsewhere (upstream) makes it with these attributes too
            template = {**template, **key_management.derive_rules(entry.mechanism, bases, template, makes_key, weak)}
            material = self.token.backend_for(base).derive(entry, param, base, template)
            key_management.check_derived_length(bases, material, weak)
            if CKA_CLASS not in template and CKA_CLASS not in material:
                material = {CKA_CLASS: CKO_SECRET_KEY, **material}
            if material.get(CKA_CLASS) == CKO_DATA:
                # CKM_HKDF_DATA (§2.62): CKA_VALUE_LEN says how many bytes to derive; a data
                # object has no such attribute, so it is the mechanism's input, not the object's.
                template = {t: v for t, v in template.items() if t != CKA_VALUE_LEN}
            held = base.supplied and (salt_key is None or salt_key.supplied)
            template = self.held_by_caller(template, held)
            attrs = policy.build_object(template, Origin.DERIVE, material=material,
                                        base=dict(base.attrs), is_so=self.is_so)
            new = self.add(attrs)
            new.supplied = held and not new.is_token
        except CryptokiError as exc:
            audit.key_management(self, "derive", entry.mechanism, base, None, exc)
            raise
        audit.key_management(self, "derive", entry.mechanism, base, new)
        return new.handle

    def _resolve_param_keys(self, param: Any) -> tuple[Any, Object | None]:
        """Parameters that name a key by handle (HKDF salt key, CKM_CONCATENATE_BASE_AND_KEY's
        other key) get that key's value here:
        mechanisms never see handles. Returns the parameter and that key (a second base for
        the key-management rules: its protection passes to the new key too)."""
        if isinstance(param, HkdfParams) and param.salt_type == A.CKF_HKDF_SALT_KEY:
            salt_key = self._key_or(param.salt_key, A.CKR_KEY_HANDLE_INVALID)
            if salt_key.attrs.get(CKA_CLASS) != CKO_SECRET_KEY or salt_key.attrs.get(CKA_DERIVE) is not True:
                raise CryptokiError(A.CKR_MECHANISM_PARAM_INVALID, "HKDF salt key must be a secret key with CKA_DERIVE")
            return param._replace(salt=salt_key.attrs.get(CKA_VALUE, b"")), salt_key
        if isinstance(param, KeyHandleParam):  # CKM_CONCATENATE_BASE_AND_KEY's other key
            other = self._key_or(param.handle, A.CKR_KEY_HANDLE_INVALID)
            if other.attrs.get(CKA_CLASS) != CKO_SECRET_KEY or not other.attrs.get(CKA_VALUE):
                raise CryptokiError(A.CKR_MECHANISM_PARAM_INVALID, "the other key must be a secret key")
            return param._replace(value=other.attrs[CKA_VALUE]), other
        return param, None

    def _key_or(self, handle: int, ckr: int) -> Object:
        try:
            return self.key(handle)
        except CryptokiError as exc:
            if exc.ckr == A.CKR_KEY_HANDLE_INVALID:
                raise CryptokiError(ckr, f"key {handle}") from None
            raise

    # ------------------------------------------------------------------ random

    def seed_random(self, seed: bytes) -> None:
        """C_SeedRandom (§5.15): our generator is the kernel's, and writing to /dev/urandom
        mixes data into its pool without crediting entropy (random(4)), so caller seed can
        only add, never weaken. Clients call this routinely (python-pkcs11's suite, SoftHSM2
        accepts it); CKR_RANDOM_SEED_NOT_SUPPORTED only if the pool cannot be written."""
        try:
            with open("/dev/urandom", "wb", buffering=0) as pool:
                pool.write(seed)
        except OSError:
            raise CryptokiError(A.CKR_RANDOM_SEED_NOT_SUPPORTED, "cannot write the OS pool") from None

    def generate_random(self, n: int) -> bytes:
        """The OS CSPRNG (getrandom(2))."""
        if n > MAX_RANDOM:
            raise CryptokiError(A.CKR_ARGUMENTS_BAD, f"{n} random bytes at once")
        return os.urandom(n)
