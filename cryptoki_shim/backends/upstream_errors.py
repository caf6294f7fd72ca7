"""Upstream return codes, translated for our clients (issue 6, "failure mapping").

An upstream ``CK_RV`` falls in one of four groups, each a table below:

* ``PASSTHROUGH``: codes about the caller's own request (a bad signature, data of the wrong
  length, a template the upstream refuses). The client would get the same code from us
  for a software key, so it is returned unchanged.
* ``LOST_SESSION``: the upstream session or its login went away (a vendor HSM restarts,
  a network HSM drops the connection). The pool re-opens a session, logs in and retries
  the operation once; the client sees nothing.
* ``STALE_HANDLE``: our cached upstream object handle is no longer valid; it is looked up
  again by the object's stable reference and the operation retried once.
* ``REMOVED``: the upstream token is gone. The client gets ``CKR_DEVICE_REMOVED`` and the
  pool reconnects on the next use (recovery without restarting the client).

Anything else (device error, a code we did not expect) becomes ``CKR_DEVICE_ERROR`` with
the upstream code logged: internals of a vendor HSM are not leaked to the client as codes
that would mean something else in our token's context.
"""

from __future__ import annotations

from .. import spec
from ..spec_ints import CKR_ARGUMENTS_BAD, CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_MECHANISM_PARAM_INVALID
from ..errors import CryptokiError

A = spec

PASSTHROUGH = frozenset(int(c) for c in (
    A.CKR_SIGNATURE_INVALID, A.CKR_SIGNATURE_LEN_RANGE,
    A.CKR_DATA_INVALID, A.CKR_DATA_LEN_RANGE,
    A.CKR_ENCRYPTED_DATA_INVALID, A.CKR_ENCRYPTED_DATA_LEN_RANGE,
    A.CKR_MECHANISM_INVALID, A.CKR_MECHANISM_PARAM_INVALID,
    A.CKR_KEY_SIZE_RANGE, A.CKR_KEY_TYPE_INCONSISTENT, A.CKR_KEY_FUNCTION_NOT_PERMITTED,
    A.CKR_KEY_UNEXTRACTABLE, A.CKR_KEY_NOT_WRAPPABLE, A.CKR_KEY_INDIGESTIBLE,
    A.CKR_WRAPPED_KEY_INVALID, A.CKR_WRAPPED_KEY_LEN_RANGE,
    A.CKR_WRAPPING_KEY_SIZE_RANGE, A.CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
    A.CKR_UNWRAPPING_KEY_SIZE_RANGE, A.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
    A.CKR_TEMPLATE_INCOMPLETE, A.CKR_TEMPLATE_INCONSISTENT,
    A.CKR_ATTRIBUTE_VALUE_INVALID, A.CKR_ATTRIBUTE_TYPE_INVALID, A.CKR_ATTRIBUTE_READ_ONLY,
    A.CKR_CURVE_NOT_SUPPORTED, A.CKR_DOMAIN_PARAMS_INVALID,
    A.CKR_HOST_MEMORY, A.CKR_FUNCTION_NOT_SUPPORTED,
))
LOST_SESSION = frozenset(int(c) for c in (
    A.CKR_SESSION_HANDLE_INVALID, A.CKR_SESSION_CLOSED, A.CKR_USER_NOT_LOGGED_IN,
    A.CKR_CRYPTOKI_NOT_INITIALIZED,
))
STALE_HANDLE = frozenset(int(c) for c in (A.CKR_OBJECT_HANDLE_INVALID, A.CKR_KEY_HANDLE_INVALID))
REMOVED = frozenset(int(c) for c in (A.CKR_DEVICE_REMOVED, A.CKR_TOKEN_NOT_PRESENT,
                                     A.CKR_TOKEN_NOT_RECOGNIZED, A.CKR_SLOT_ID_INVALID))
#: upstream codes with another meaning for our client: we always hand the upstream
#: well-formed arguments, so an upstream CKR_ARGUMENTS_BAD is about the client's mechanism
#: parameter (SoftHSM2 answers it for an OAEP parameter without CKZ_DATA_SPECIFIED).
REMAP = {CKR_ARGUMENTS_BAD: CKR_MECHANISM_PARAM_INVALID}
#: codes after which the upstream is re-initialized once (rate-limited) and the step
#: retried: a file-backed module (SoftHSM2) only sees a token that came back, or a new
#: token under the same label, after C_Finalize/C_Initialize.
SUSPECT = frozenset(int(c) for c in (A.CKR_GENERAL_ERROR, A.CKR_DEVICE_ERROR, A.CKR_FUNCTION_FAILED))
#: a rejected upstream login: the configuration (PIN source) is wrong, not the client's PIN
PIN_REJECTED = frozenset(int(c) for c in (A.CKR_PIN_INCORRECT, A.CKR_PIN_LOCKED, A.CKR_PIN_EXPIRED,
                                          A.CKR_PIN_INVALID, A.CKR_PIN_LEN_RANGE))


class UpstreamError(CryptokiError):
    """An upstream call failed: ``rv`` is the upstream code, ``ckr`` what our client gets."""

    def __init__(self, rv: int, function: str) -> None:
        self.rv = rv
        self.function = function
        super().__init__(translate(rv), f"upstream {function} -> {spec.ckr_name(rv)}")

    @property
    def lost_session(self) -> bool:
        return self.rv in LOST_SESSION

    @property
    def stale_handle(self) -> bool:
        return self.rv in STALE_HANDLE

    @property
    def removed(self) -> bool:
        return self.rv in REMOVED


def translate(rv: int) -> int:
    """Our client's code for upstream ``rv`` (see the module docstring)."""
    if rv in PASSTHROUGH:
        return rv
    if rv in REMAP:
        return REMAP[rv]
    if rv in REMOVED:
        return CKR_DEVICE_REMOVED
    return CKR_DEVICE_ERROR


class Unavailable(CryptokiError):
    """The upstream cannot be reached at all (library, token, PIN): no retry will help now."""


class ObjectMissing(CryptokiError):
    """The stable reference of one of our keys finds no upstream object (or several)."""

    def __init__(self, message: str) -> None:
        super().__init__(spec.CKR_DEVICE_ERROR, message)
