"""C_GetOperationState / C_SetOperationState (PKCS#11 3.0 §5.6.11-12): saving a session's
active digest, HMAC and sign/verify operations, and continuing them in another session.

Why: pkcs11-provider duplicates a DigestSign context (every `openssl dgst`, `req`, `x509`
signature) by saving the operation state and restoring it in a new session; from OpenSSL 3.2
a refusal fails the duplication (issue 25 item 4).

What a saved state is: ``MAGIC || nonce || AES-256-GCM(state key, plaintext, AAD)``.
* The state key is random, per process and per token, never stored: a state is only
  good in the process and on the token that made it.
* The AAD names the token (serial), the session owner (who is logged in) and the login
  epoch (``Token.login_epoch``, bumped by every C_Login and C_Logout): a state saved by the
  user is refused after a logout, in a public session, by the SO, by another token.
* The plaintext names each operation's kind, mechanism, parameter, mode, the key's
  CKA_UNIQUE_ID, and the context's own state (a digest struct, HMAC pads: key-dependent,
  hence encrypted, not only authenticated). On restore the key the caller names must be the
  same object (CKR_KEY_CHANGED otherwise) and passes every check of C_*Init again.
Anything that fails authentication or does not parse is CKR_SAVED_STATE_INVALID.
Operations whose context cannot copy its state (ciphers, SHA-3, searches, an output kept
for a retry, another backend's contexts) make the whole state CKR_STATE_UNSAVEABLE.
"""

from __future__ import annotations

import json
import os
import weakref
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import spec
from ..errors import CryptokiError
from ..mechanisms import params as P
from ..mechanisms import registry
from ..mechanisms.registry import Mechanism
from .operations import Operation
from .states import MULTIPART

if TYPE_CHECKING:
    from .session import Session
    from .token import Token

A = spec
MAGIC = b"CKSHIMS1"
_NONCE = 12
#: Operation kinds whose state can be saved; the others are CKR_STATE_UNSAVEABLE.
SAVEABLE = ("digest", "sign", "verify")
#: Kinds that use hAuthenticationKey (§5.6.12); hEncryptionKey would name encrypt/decrypt keys,
#: which are never saveable here.
AUTH_KINDS = ("sign", "verify")
#: The parameter types a saveable operation may carry (encoded field by field).
_PARAM_TYPES = {t.__name__: t for t in (P.RsaPkcsPssParams, P.EddsaParams)}

_state_keys: "weakref.WeakKeyDictionary[Token, bytes]" = weakref.WeakKeyDictionary()


def _state_key(token: "Token") -> bytes:
    key = _state_keys.get(token)
    if key is None:
        key = _state_keys.setdefault(token, AESGCM.generate_key(256))
    return key


def _aad(token: "Token") -> bytes:
    serial = token.record.serial if token.record is not None else ""
    owner = f"|{serial}|{token.login_user}|{token.login_epoch}"
    return MAGIC + owner.encode()


def _unsaveable(why: str) -> CryptokiError:
    return CryptokiError(A.CKR_STATE_UNSAVEABLE, why)


def _invalid(why: str) -> CryptokiError:
    return CryptokiError(A.CKR_SAVED_STATE_INVALID, why)


# ---------------------------------------------------------------------- parameters


def _encode(value: Any) -> Any:
    if value is None or value.__class__ is int:
        return value
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if type(value).__name__ in _PARAM_TYPES and type(value) is _PARAM_TYPES[type(value).__name__]:
        return {"tuple": type(value).__name__, "fields": [_encode(f) for f in value]}
    raise _unsaveable(f"mechanism parameter {type(value).__name__}")


def _decode(value: Any) -> Any:
    if value is None or value.__class__ is int:
        return value
    if isinstance(value, dict) and "bool" in value:
        return bool(value["bool"])
    if isinstance(value, dict) and "hex" in value:
        return bytes.fromhex(value["hex"])
    if isinstance(value, dict) and value.get("tuple") in _PARAM_TYPES:
        return _PARAM_TYPES[value["tuple"]](*(_decode(f) for f in value["fields"]))
    raise _invalid("mechanism parameter")


# ---------------------------------------------------------------------- save


def _saved(op: Operation) -> dict[str, Any]:
    if op.kind not in SAVEABLE:
        raise _unsaveable(f"a {op.kind} operation")
    if op.pending is not None:
        raise _unsaveable("an output kept for a retry")
    save = getattr(op.ctx, "save", None)
    if save is None:
        raise _unsaveable(f"{A.ckm_name(op.mechanism)} context")
    return {"kind": op.kind, "mech": op.mechanism, "param": _encode(op.param),
            "key": op.key.unique_id if op.key is not None else None,
            "mode": op.mode, "state": save().hex()}


def get_operation_state(session: "Session") -> bytes:
    """C_GetOperationState: every active operation of the session, sealed (module doc)."""
    if not session.ops:
        raise CryptokiError(A.CKR_OPERATION_NOT_INITIALIZED, "no active operation")
    ops = [_saved(op) for op in session.ops.values()]
    keys = {o["key"] for o in ops if o["kind"] in AUTH_KINDS}
    if len(keys) > 1:  # one hAuthenticationKey restores them: they must share it
        raise _unsaveable("sign and verify with different keys")
    plaintext = json.dumps({"ops": ops}, separators=(",", ":")).encode()
    token = session.token
    nonce = os.urandom(_NONCE)
    return MAGIC + nonce + AESGCM(_state_key(token)).encrypt(nonce, plaintext, _aad(token))


# ---------------------------------------------------------------------- restore


def _open(token: "Token", blob: bytes) -> list[dict[str, Any]]:
    if len(blob) < len(MAGIC) + _NONCE + 16 or not blob.startswith(MAGIC):
        raise _invalid("not a saved state of this module")
    nonce = blob[len(MAGIC):len(MAGIC) + _NONCE]
    try:
        plaintext = AESGCM(_state_key(token)).decrypt(nonce, blob[len(MAGIC) + _NONCE:], _aad(token))
    except InvalidTag:
        raise _invalid("saved state not made by this token, process and session owner, or altered") from None
    try:
        ops = json.loads(plaintext)["ops"]
        if not isinstance(ops, list) or not ops:
            raise ValueError("no operations")
        return ops
    except (ValueError, KeyError, TypeError):
        raise _invalid("saved state does not parse") from None


def _check_keys(session: "Session", ops: list[dict[str, Any]], enc_handle: int, auth_handle: int) -> None:
    """§5.6.12: CKR_KEY_NOT_NEEDED for a key the state does not use, CKR_KEY_NEEDED for a
    missing one, CKR_KEY_CHANGED for another key than the saved operation's.

    pkcs11-provider duplicates a signature context with the key's handle as both
    hEncryptionKey and hAuthenticationKey (``p11prov_sig_dup``); OpenSSL 3.2+ fails the
    duplication on any error, so an hEncryptionKey equal to hAuthenticationKey is taken as
    naming that one key. Any other hEncryptionKey is CKR_KEY_NOT_NEEDED (no cipher state is
    ever saved)."""
    if enc_handle and enc_handle != auth_handle:
        raise CryptokiError(A.CKR_KEY_NOT_NEEDED, "no saved encryption operation")
    needed = {o["key"] for o in ops if o["kind"] in AUTH_KINDS}
    if not needed:
        if auth_handle:
            raise CryptokiError(A.CKR_KEY_NOT_NEEDED, "no saved sign/verify operation")
        return
    if not auth_handle:
        raise CryptokiError(A.CKR_KEY_NEEDED, "the saved operation needs hAuthenticationKey")
    if session.key(auth_handle).unique_id not in needed:
        raise CryptokiError(A.CKR_KEY_CHANGED, "hAuthenticationKey is not the saved operation's key")


def set_operation_state(session: "Session", blob: bytes, enc_handle: int, auth_handle: int) -> None:
    """C_SetOperationState: the session's operations become the saved ones (its own active
    operations end). Each is started again through the checks of C_*Init, then continued
    from its saved context state; on any failure the session keeps what it had."""
    ops = _open(session.token, blob)
    _check_keys(session, ops, enc_handle, auth_handle)
    before = session.replace_operations({})
    try:
        for saved in ops:
            kind = saved["kind"]
            if kind not in SAVEABLE or kind in session.ops:
                raise _invalid(f"operation kind {kind!r}")
            entry = registry.lookup(int(saved["mech"]))
            mech = Mechanism(entry, _decode(saved["param"]))
            if kind == "digest":
                session.digest_init(mech)
            else:
                session.operation_init(kind, mech, auth_handle)
            op = session.ops[kind]
            op.ctx.restore(bytes.fromhex(saved["state"]))
            if saved["mode"] == MULTIPART:
                op.mode = MULTIPART
    except CryptokiError as exc:
        session.replace_operations(before)
        if exc.ckr == A.CKR_MECHANISM_INVALID:
            raise _invalid("saved mechanism") from None
        raise
    except (ValueError, KeyError, TypeError):
        session.replace_operations(before)
        raise _invalid("saved state does not parse") from None
