"""The Python side of the native lane (issue 22; native/lane.c, docs/security.md "The native lane").

The lane answers C_DigestInit + C_Digest in C, without Python or the GIL, but only as a
repetition: Python stays the one authority on every verdict. This module is what Python tells
the lane, and nothing else decides anything:

* ``arm_digest`` after a C_DigestInit Python answered CKR_OK (crypto_functions.digest_init):
  "this session may start this digest" — valid until the lane epoch moves (every call that
  could change a verdict moves it: the generated C wrappers, ``bump`` here);
* ``py_ops``, on every change of a session's operation table (``operations.OpTable``): the
  kinds that have a Python operation, so the lane never starts a second operation of a kind;
* ``cancel`` when C_Logout ends a session's operations, ``forget`` when a session ends
  without C_CloseSession (C_CloseAllSessions, a token re-initialized elsewhere);
* ``adopt``: before any other Python call on a session that has a lane operation, the C
  wrapper asks Python to take it back (it becomes the Python operation its C_DigestInit would
  have made), so Python always answers from the whole state.

``IMPL`` is the lane's builtin module once ``abi.lane`` installed it (the library has the
lane and ``[module] native_lane`` is true): ``ON`` is then True. Until then nothing is told
and the lane, never armed, answers nothing.
"""

from __future__ import annotations

from typing import Any

#: The operation kinds as the lane's bits (native/lane.c has the same values).
KIND_BITS: dict[str, int] = {"digest": 1, "sign": 2, "verify": 4, "encrypt": 8, "decrypt": 16}
KIND_OF_BIT: dict[int, str] = {bit: kind for kind, bit in KIND_BITS.items()}

ON = False
#: The builtins of native/lane.c (``_cryptoki_shim_lane``), set with ON by ``abi.lane``.
IMPL: Any = None


def install(impl: Any) -> None:
    """Use the lane's builtins (``abi.lane`` at C_Initialize), or none (``impl`` None)."""
    global ON, IMPL
    IMPL = impl
    ON = impl is not None


def cancel(handle: int) -> None:
    """The session's operations ended (C_Logout): its lane operations end too."""
    if ON:
        IMPL.cancel(handle)


def forget(handle: int) -> None:
    """The session ended without C_CloseSession: its lane state goes, every arm is void."""
    if ON:
        IMPL.forget(handle)


def adopt(session: Any) -> None:
    """The session's lane operations become its Python operations (the C wrapper calls this
    through ``abi.lane`` before any other Python call on the session). Under the session's
    lock (a ``session.Session``: not imported, the session imports this module): ``take`` hands them over and marks their kinds as Python's in one step."""
    with session.lock:
        for bit, mech, key, param in IMPL.take(session.handle):
            session.adopt_lane_operation(KIND_OF_BIT[bit], mech, key, param)
