"""One TPM operation = one locked unit: lock, connect, derive the storage root key, operate,
flush everything, disconnect (DESIGN.md §6).

Why per operation: swtpm has three loaded-object and three session slots shared by every
client; four processes unsealing without a lock failed 90 % of the time, with an ``fcntl``
lock around each operation never. A fresh connection per operation also means a restarted
TPM (or swtpm) is simply picked up by the next call. On ``/dev/tpmrm0`` the kernel resource
manager virtualises handles and the lock is harmless.

TSS return codes become CKR values in ``ckr_of`` (one table); the TSS library itself is
silenced (``TSS2_LOG``) before it is loaded, so it never writes into the host's stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Iterator

# Must be set before libtss2 is loaded: the library reads it once at load time.
os.environ.setdefault("TSS2_LOG", "all+NONE")

from tpm2_pytss import ESAPI, TSS2_Exception  # noqa: E402
from tpm2_pytss.constants import ESYS_TR, TPM2_RC, TPMA_OBJECT  # noqa: E402
from tpm2_pytss.types import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE  # noqa: E402

from .. import spec  # noqa: E402
from ..errors import CryptokiError  # noqa: E402

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


# --------------------------------------------------------------------------- the locked unit

_thread_lock = threading.Lock()


def lock_path(tcti: str) -> str:
    """One lock file per TPM (keyed by its TCTI string), shared by every process of the user."""
    tag = hashlib.sha256(tcti.encode()).hexdigest()[:16]
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"cryptoki-shim-tpm-{tag}.lock")


class Connection:
    """An ESAPI context plus the storage root key, valid inside ``open_tpm`` only.
    ``track`` registers a transient handle to flush when the unit ends."""

    def __init__(self, ectx: ESAPI, srk: Any) -> None:
        self.ectx = ectx
        self.srk = srk
        self._flush: list[Any] = [srk]

    def track(self, handle: Any) -> Any:
        self._flush.append(handle)
        return handle

    def flush_all(self) -> None:
        for handle in reversed(self._flush):
            with contextlib.suppress(Exception):
                self.ectx.flush_context(handle)
        self._flush.clear()


@contextlib.contextmanager
def open_tpm(tcti: str, what: str, *, with_srk: bool = True, lock_file: str = "") -> Iterator[Connection]:
    """The locked unit: every TPM command of one operation runs inside this block.

    TSS failures leave as ``CryptokiError`` with the mapped CKR (see ``fail``)."""
    with _thread_lock, open(lock_file or lock_path(tcti), "a+") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        ectx = None
        conn = None
        try:
            try:
                ectx = ESAPI(tcti)
                srk = None
                if with_srk:
                    srk = ectx.create_primary(TPM2B_SENSITIVE_CREATE(), srk_template(), ESYS_TR.OWNER)[0]
                conn = Connection(ectx, srk)
                if srk is None:
                    conn._flush.clear()
            except (TSS2_Exception, OSError) as exc:
                raise fail(exc, what) from None
            try:
                yield conn
            except (TSS2_Exception, OSError) as exc:
                raise fail(exc, what) from None
        finally:
            if conn is not None:
                conn.flush_all()
            if ectx is not None:
                with contextlib.suppress(Exception):
                    ectx.close()
            fcntl.flock(lockfile, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- admin helpers

def reset_lockout(tcti: str, lockout_auth: bytes = b"") -> None:
    """Leave dictionary-attack lockout (TPM2_DictionaryAttackLockReset with the lockout
    hierarchy's auth). Called by the admin CLI after an operator checked why it happened."""
    with open_tpm(tcti, "lockout reset", with_srk=False) as conn:
        conn.ectx.tr_set_auth(ESYS_TR.LOCKOUT, lockout_auth)
        conn.ectx.dictionary_attack_lock_reset(ESYS_TR.LOCKOUT)


def set_lockout_parameters(tcti: str, max_tries: int, recovery_s: int, lockout_recovery_s: int,
                           lockout_auth: bytes = b"") -> None:
    """TPM2_DictionaryAttackParameters: how many auth failures before lockout and how fast the
    counter decays (production TPMs ship with their own values; swtpm allows 3)."""
    with open_tpm(tcti, "lockout parameters", with_srk=False) as conn:
        conn.ectx.tr_set_auth(ESYS_TR.LOCKOUT, lockout_auth)
        conn.ectx.dictionary_attack_parameters(max_tries, recovery_s, lockout_recovery_s, ESYS_TR.LOCKOUT)
