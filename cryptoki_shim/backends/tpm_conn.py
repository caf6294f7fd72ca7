"""One TPM operation = one locked unit: lock, connect, derive the storage root key, operate,
flush everything, disconnect (DESIGN.md §6).

Why per operation: swtpm has three loaded-object and three session slots shared by every
client; four processes unsealing without a lock failed 90 % of the time, with an ``fcntl``
lock around each operation never. A fresh connection per operation also means a restarted
TPM (or swtpm) is simply picked up by the next call. On ``/dev/tpmrm0`` the kernel resource
manager virtualises handles and the lock is harmless.

TSS return codes become CKR values in ``ckr_of`` (one table); the TSS library itself is
silenced (``TSS2_LOG``) before it is loaded, so it never writes into the host's stderr.

Secrets never cross the bus in clear: commands that carry key material, sealed data or auth
values run under a session *salted to the SRK* (``Connection.secret_session``) with
parameter encryption (AES-128-CFB): ``TPMA_SESSION_DECRYPT`` for a secret going in (the
first command parameter), ``TPMA_SESSION_ENCRYPT`` for a secret coming out (the first
response parameter). Salting means the session key is derived from a seed only the TPM can
decrypt, so a bus sniffer cannot compute it. Tested by recording the swtpm byte stream
(tests/tpm/test_tpm_bus.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Must be set before libtss2 is loaded: the library reads it once at load time.
os.environ.setdefault("TSS2_LOG", "all+NONE")

from tpm2_pytss import ESAPI, TCTILdr, TSS2_Exception
from tpm2_pytss.constants import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_RC,
    TPM2_SE,
    TPMA_OBJECT,
    TPMA_SESSION,
)
from tpm2_pytss.types import (
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMT_SYM_DEF,
    TPMU_SYM_KEY_BITS,
    TPMU_SYM_MODE,
)

from .. import metrics, private_files, spec
from ..errors import CryptokiError
from ..mechanisms.digest import sha256
from . import tpm_wire

_log = logging.getLogger(__name__)
audit = logging.getLogger("cryptoki_shim.audit.tpm")

#: The storage root key template: the TCG "SRK" shape (ECC P-256, AES-128-CFB, restricted
#: decrypt). Re-created from the same template on the same TPM it has the same name, so the
#: blobs stored under it keep loading across restarts of the process and of the TPM.
_A = TPMA_OBJECT
SRK_ATTRS = (_A.USERWITHAUTH | _A.RESTRICTED | _A.DECRYPT | _A.FIXEDTPM | _A.FIXEDPARENT
             | _A.SENSITIVEDATAORIGIN | _A.NODA)


def srk_template() -> TPM2B_PUBLIC:
    return TPM2B_PUBLIC.parse("ecc256:aes128cfb", objectAttributes=SRK_ATTRS)


# --------------------------------------------------------------------------- errors

@dataclass(frozen=True)
class Cause:
    ckr: int
    name: str


#: TPM format-one codes carry a parameter/handle/session number in the upper bits: compare
#: after masking them off (TPM 2.0 Part 2 §6.6.3). Values checked on swtpm 0.7.1.
_FMT1_MASK = 0xBF
_CAUSES: dict[int, Cause] = {
    int(TPM2_RC.LOCKOUT): Cause(spec.CKR_PIN_LOCKED, "TPM dictionary-attack lockout"),          # 0x921
    int(TPM2_RC.AUTH_FAIL) & _FMT1_MASK: Cause(spec.CKR_PIN_INCORRECT, "wrong key auth value"),  # 0x98E
    int(TPM2_RC.BAD_AUTH) & _FMT1_MASK: Cause(spec.CKR_PIN_INCORRECT, "wrong key auth value"),   # 0x9A2
    int(TPM2_RC.POLICY_FAIL) & _FMT1_MASK: Cause(spec.CKR_FUNCTION_REJECTED, "PCR policy mismatch"),  # 0x99D
    int(TPM2_RC.PCR_CHANGED): Cause(spec.CKR_FUNCTION_REJECTED, "PCR changed during the operation"),
    int(TPM2_RC.INTEGRITY) & _FMT1_MASK: Cause(spec.CKR_DEVICE_ERROR, "corrupted or foreign key blob"),  # 0x1DF
    int(TPM2_RC.SIZE) & _FMT1_MASK: Cause(spec.CKR_DEVICE_ERROR, "corrupted key blob"),
    int(TPM2_RC.BINDING) & _FMT1_MASK: Cause(spec.CKR_DEVICE_ERROR, "corrupted key blob"),
    int(TPM2_RC.KEY) & _FMT1_MASK: Cause(spec.CKR_DEVICE_ERROR, "corrupted key blob"),
    int(TPM2_RC.INSUFFICIENT) & _FMT1_MASK: Cause(spec.CKR_DEVICE_ERROR, "corrupted key blob"),
}
UNREACHABLE = Cause(spec.CKR_DEVICE_REMOVED, "TPM unreachable")
OTHER = Cause(spec.CKR_DEVICE_ERROR, "TPM error")
CORRUPTED = Cause(spec.CKR_DEVICE_ERROR, "corrupted key blob")
#: Layer bits of a TSS2_RC (bits 16-23): 0 = the TPM answered; TCTI/SYS/ESYS = client side.
_TPM_LAYER = 0


def cause_of(exc: BaseException) -> Cause:
    """The cause of a TSS failure (see the table above); unknown TPM codes are DEVICE_ERROR."""
    if not isinstance(exc, TSS2_Exception):
        return UNREACHABLE if isinstance(exc, OSError) else OTHER
    rc = int(exc.rc)
    layer = (rc >> 16) & 0xFF
    if layer != _TPM_LAYER:
        # TCTI (0x0A) and ESYS (0x07) failures that are I/O: the TPM is not there.
        return UNREACHABLE if (rc & 0xFFFF) in (0x000A, 0x0013, 0x001A) or layer == 0x0A else OTHER
    base = rc & 0xFFFF
    if base & 0x80:  # format one
        return _CAUSES.get(base & _FMT1_MASK | 0x80, OTHER)
    return _CAUSES.get(base, OTHER)


def audit_event(what: str, cause: Cause) -> None:
    """A ``backend.error`` record in the audit log naming the cause (when auditing is on)."""
    try:
        from .. import audit as _audit
    except ImportError:  # pragma: no cover - audit log not part of this build
        return
    _audit.event("backend.error", "warning", backend="tpm", operation=what, cause=cause.name,
                 outcome=spec.ckr_name(cause.ckr))


def fail(exc: BaseException, what: str) -> CryptokiError:
    """The CryptokiError for a TSS failure, with the audit-log line that names the cause."""
    cause = cause_of(exc)
    audit.warning("tpm: %s failed: %s (%s)", what, cause.name, exc)
    audit_event(what, cause)
    return CryptokiError(cause.ckr, f"{what}: {cause.name}")


# --------------------------------------------------------------------------- encrypted sessions

#: Off only in the test that shows the bus recording would catch clear secrets
#: (tests/tpm/test_tpm_bus.py); never a configuration key.
_PARAM_ENCRYPTION = True
#: Parameter encryption of salted sessions (TPM 2.0 Part 1 §21: CFB with a KDFa-derived key).
AES128_CFB = TPMT_SYM_DEF(algorithm=TPM2_ALG.AES, keyBits=TPMU_SYM_KEY_BITS(aes=128),
                          mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB))
NO_SYMMETRIC = TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL)
#: direction of the secret -> session attribute (Part 1 §19.6.7)
SECRET_IN = TPMA_SESSION.DECRYPT
SECRET_OUT = TPMA_SESSION.ENCRYPT


# --------------------------------------------------------------------------- the locked unit

_thread_lock = threading.Lock()


def lock_path(tcti: str) -> str:
    """One lock file per TPM (keyed by its TCTI string), shared by every process of the user."""
    tag = sha256(tcti.encode()).hex()[:16]
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"cryptoki-shim-tpm-{tag}.lock")


#: The storage root key's persistent handle (TCG "TPM v2.0 Provisioning Guidance": the SRK
#: at 0x81000001). Used only while the object there has the name of *our* SRK.
PERSISTENT_SRK = 0x81000001
def parse_srk_handle(text: str) -> int | None:
    """``[slots.tpm] srk_handle``: a handle in the owner's persistent range, or None ("none")."""
    if text.strip().lower() in ("none", "", "0"):
        return None
    try:
        handle = int(text, 0)
    except ValueError:
        handle = 0
    if not 0x81000000 <= handle <= 0x817FFFFF:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, f"srk_handle {text!r}: want 0x81000000-0x817FFFFF or none")
    return handle


#: TCTI -> name of the SRK, learnt from a TPM2_CreatePrimary in this process (the name only
#: depends on the TPM's owner seed and the template; it changes after TPM2_Clear).
_srk_names: dict[str, bytes] = {}
#: (TCTI, handle) whose object this process found to be our SRK (by name) and loaded under.
_srk_checked: set[tuple[str, int | None]] = set()
#: (TCTI, handle) whose persistent object is not our SRK: warned once, never used.
_foreign_srk_warned: set[tuple[str, int]] = set()


class Connection:
    """One open TCTI for the duration of ``open_tpm``: raw commands (``wire``), an ESAPI
    context made on first use (``ectx``) and the storage root key on first use (``srk``).
    ``track`` registers an ESAPI handle, ``track_raw`` a TPM handle, to flush when the
    unit ends."""

    def __init__(self, tcti_name: str, tcti: Any, *, with_srk: bool = True,
                 srk_handle: int | None = PERSISTENT_SRK, authority: Any = None,
                 ek_bundle: list[Any] | None = None) -> None:
        self.tcti_name = tcti_name
        #: CA certificates the EK's must chain to (``[slots.tpm] ek_ca_bundle``): salt to the EK
        self.ek_bundle = ek_bundle
        self._ek: Any = None
        #: the slot's ``tpm_authority.Authority`` (PolicyAuthorize), or None
        self.authority = authority
        self.srk_handle = srk_handle
        self.tcti = tcti
        self.wire = tpm_wire.Wire(tcti)
        self._ectx: ESAPI | None = None
        self._with_srk = with_srk
        self._srk: Any = None
        self._flush: list[Any] = []
        self._raw_flush: list[int] = []

    @property
    def ectx(self) -> ESAPI:
        if self._ectx is None:
            self._ectx = ESAPI(self.tcti)
        return self._ectx

    @property
    def srk(self) -> Any:
        """The SRK as an ESAPI handle: the persistent one when it is ours, else created from
        the template (and made persistent when 0x81000001 is free)."""
        if self._srk is None and self._with_srk:
            self._srk = self._find_srk()
        return self._srk

    @property
    def salt_key(self) -> Any:
        """The key salted sessions encrypt their seed to: the EK whose certificate chains to
        ``ek_bundle`` when the slot has one (``tpm_ek``), else the SRK."""
        if not self.ek_bundle:
            return self.srk
        if self._ek is None:
            from . import tpm_ek
            try:
                self._ek = tpm_ek.find_ek(self, self.ek_bundle).handle
            except tpm_ek.UntrustedEK as exc:
                audit.warning("tpm: %s", exc)
                audit_event("salt key", Cause(exc.ckr, "EK certificate not trusted"))
                raise
        return self._ek

    def persistent_srk(self) -> int | None:
        """``srk_handle`` when the object there has our SRK's name (TPM2_ReadPublic), else
        None (nothing there, another object, none configured, or the name not learnt yet)."""
        expected = _srk_names.get(self.tcti_name)
        if expected is None or self.srk_handle is None:
            return None
        try:
            name = self.wire.read_public_name(self.srk_handle)
        except TSS2_Exception as exc:
            if (int(exc.rc) >> 16) & 0xFF != _TPM_LAYER:
                raise
            return None
        return self.srk_handle if name == expected else None

    def _find_srk(self) -> Any:
        persistent = self.persistent_srk()
        if persistent is not None:
            return self.ectx.tr_from_tpmpublic(persistent)
        transient = self.track(self.ectx.create_primary(TPM2B_SENSITIVE_CREATE(), srk_template(), ESYS_TR.OWNER)[0])
        name = bytes(self.ectx.tr_get_name(transient))
        _srk_names[self.tcti_name] = name
        handle = self.srk_handle
        if handle is None:
            return transient
        try:
            there = self.wire.read_public_name(handle)
        except TSS2_Exception as exc:
            if (int(exc.rc) >> 16) & 0xFF != _TPM_LAYER:
                raise
            there = None
        if there is None:
            try:
                made = self.ectx.evict_control(ESYS_TR.OWNER, transient, handle)
            except TSS2_Exception as exc:  # owner auth set, NV full: keep re-creating it
                _log.info("tpm: SRK not made persistent at 0x%08x: %s", handle, exc)
                return transient
            _log.info("tpm: SRK made persistent at 0x%08x", handle)
            self._drop(transient)  # one object slot less for the rest of the unit
            return made
        if there == name:
            self._drop(transient)
            return self.ectx.tr_from_tpmpublic(handle)
        if (self.tcti_name, handle) not in _foreign_srk_warned:
            _foreign_srk_warned.add((self.tcti_name, handle))
            audit.warning("tpm: 0x%08x holds an object that is not this TPM's SRK: not used, the SRK is "
                          "re-created per operation ([slots.tpm] srk_handle)", handle)
        return transient

    def load_blob(self, public: bytes, private: bytes) -> int:
        """A stored blob loaded under the SRK, as a TPM handle flushed when the unit ends.

        Fast: TPM2_Load in command bytes under the persistent SRK this process has already
        checked by name (``_srk_checked``); the TPM itself checks at every Load that the blob
        was made under that parent (integrity HMAC keyed from the parent's seed). On any TPM
        error there the check is dropped and the load retried the slow way: ESAPI under
        ``srk`` (found and checked again). A damaged or foreign blob fails there as well
        (TPM_RC_INTEGRITY etc.)."""
        checked = (self.tcti_name, self.srk_handle)
        if checked in _srk_checked and self.srk_handle is not None:
            try:
                return self.track_raw(self.wire.load(self.srk_handle, public, private))
            except TSS2_Exception as exc:
                if (int(exc.rc) >> 16) & 0xFF != _TPM_LAYER:
                    raise
                _srk_checked.discard(checked)
        parent = self.persistent_srk()
        if parent is not None:
            handle = self.track_raw(self.wire.load(parent, public, private))
            _srk_checked.add(checked)
            return handle
        pub, _ = TPM2B_PUBLIC.unmarshal(public)
        priv, _ = TPM2B_PRIVATE.unmarshal(private)
        handle = self.ectx.load(self.srk, priv, pub)
        tpm_handle = int(self.ectx.tr_get_tpm_handle(handle))
        self.ectx.tr_close(handle)  # flushed by its TPM handle below, like the raw ones
        return self.track_raw(tpm_handle)

    def start_session(self, session_type: Any, attributes: int = 0, *, salted: bool = True) -> Any:
        """A session for this unit: salted to the SRK with AES-128-CFB parameter encryption
        (``attributes``: ``SECRET_IN`` / ``SECRET_OUT`` or none), or plain (``salted=False``,
        no SRK in the unit, or encryption switched off). Flushed when the unit ends."""
        salted = salted and _PARAM_ENCRYPTION and self._with_srk
        session = self.track(self.ectx.start_auth_session(
            self.salt_key if salted else ESYS_TR.NONE, ESYS_TR.NONE, session_type,
            AES128_CFB if salted else NO_SYMMETRIC, TPM2_ALG.SHA256))
        flags = TPMA_SESSION.CONTINUESESSION | (attributes if salted else 0)
        self.ectx.trsess_set_attributes(session, flags, 0xFF)
        return session

    def secret_session(self, attributes: int = 0) -> Any:
        """A salted HMAC session authorising an object with ``userWithAuth`` (the SRK, the
        lockout hierarchy) whose command carries a secret: its auth value is never sent
        (HMAC keyed by session key ‖ auth value) and the secret parameter is encrypted.
        ``ESYS_TR.PASSWORD`` (the auth value in clear) only with encryption switched off."""
        if not _PARAM_ENCRYPTION:
            return ESYS_TR.PASSWORD
        return self.start_session(TPM2_SE.HMAC, attributes)

    def track(self, handle: Any) -> Any:
        self._flush.append(handle)
        return handle

    def _drop(self, handle: Any) -> None:
        self._flush.remove(handle)
        self.ectx.flush_context(handle)

    def track_raw(self, handle: int) -> int:
        self._raw_flush.append(handle)
        return handle

    def untrack_raw(self, handle: int) -> None:
        """The TPM flushed it itself (a session used with continueSession clear)."""
        self._raw_flush.remove(handle)

    def flush_all(self) -> None:
        for handle in reversed(self._flush):
            with contextlib.suppress(Exception):
                self.ectx.flush_context(handle)
        for raw in reversed(self._raw_flush):
            with contextlib.suppress(Exception):
                self.wire.flush(raw)
        self._flush.clear()
        self._raw_flush.clear()

    def close(self) -> None:
        if self._ectx is not None:
            with contextlib.suppress(Exception):
                self._ectx.close()
        with contextlib.suppress(Exception):
            self.tcti.close()


@contextlib.contextmanager
def open_tpm(tcti: str, what: str, *, with_srk: bool = True, lock_file: str = "",
             srk_handle: int | None = PERSISTENT_SRK, authority: Any = None,
             ek_bundle: list[Any] | None = None) -> Iterator[Connection]:
    """The locked unit: every TPM command of one operation runs inside this block.
    ``with_srk=False``: the unit never needs the storage root key (attestation, PCR admin).

    TSS failures leave as ``CryptokiError`` with the mapped CKR (see ``fail``)."""
    path = lock_file or lock_path(tcti)
    with _thread_lock, os.fdopen(private_files.open_private(path, os.O_RDWR | os.O_APPEND), "a+") as lockfile:  # 0600
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        conn = None
        started = metrics.now() if metrics.ON else 0.0  # a TPM round trip (issue 21 metrics)
        failure: CryptokiError | None = None
        try:
            try:
                conn = Connection(tcti, TCTILdr.parse(tcti), with_srk=with_srk, srk_handle=srk_handle,
                                  authority=authority, ek_bundle=ek_bundle)
            except (TSS2_Exception, OSError) as exc:
                failure = fail(exc, what)
                raise failure from None
            try:
                yield conn
            except (TSS2_Exception, OSError, tpm_wire.ResponseTampered) as exc:
                failure = fail(exc, what)
                raise failure from None
        finally:
            if conn is not None:
                conn.flush_all()
                conn.close()
            fcntl.flock(lockfile, fcntl.LOCK_UN)
            if metrics.ON:
                metrics.round_trip("tpm", tcti, started, failure)


# --------------------------------------------------------------------------- admin helpers

def reset_lockout(tcti: str, lockout_auth: bytes = b"", *, lock_file: str = "", srk_handle: int | None = PERSISTENT_SRK,
                  ek_bundle: list[Any] | None = None) -> None:
    """Leave dictionary-attack lockout (TPM2_DictionaryAttackLockReset with the lockout
    hierarchy's auth, HMAC in a salted session: the auth value is not sent). Called by the
    admin CLI (``tpm-reset-lockout``) after an operator checked why it happened.

    A wrong lockout auth is ``CKR_PIN_INCORRECT``; the lockout hierarchy then locks itself
    for its own recovery time (``lockout_recovery_s``: a reboot of a hardware TPM)."""
    with open_tpm(tcti, "lockout reset", lock_file=lock_file, srk_handle=srk_handle, ek_bundle=ek_bundle) as conn:
        conn.ectx.tr_set_auth(ESYS_TR.LOCKOUT, lockout_auth)
        conn.ectx.dictionary_attack_lock_reset(ESYS_TR.LOCKOUT, session1=conn.secret_session())


def set_lockout_parameters(tcti: str, max_tries: int, recovery_s: int, lockout_recovery_s: int,
                           lockout_auth: bytes = b"") -> None:
    """TPM2_DictionaryAttackParameters: how many auth failures before lockout and how fast the
    counter decays (production TPMs ship with their own values; swtpm allows 3)."""
    with open_tpm(tcti, "lockout parameters") as conn:
        conn.ectx.tr_set_auth(ESYS_TR.LOCKOUT, lockout_auth)
        conn.ectx.dictionary_attack_parameters(max_tries, recovery_s, lockout_recovery_s, ESYS_TR.LOCKOUT,
                                               session1=conn.secret_session())
