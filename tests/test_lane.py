"""The native lane (issue 22; native/lane.c, core/lane.py, docs/security.md "The native lane").

C_DigestInit + C_Digest answered in C only repeat verdicts Python made. So every test here is
differential where it can be: the same call sequence through the .so with ``[module]
native_lane = true`` and ``false`` must give the same return values and outputs, call by
call (the buffer-length protocol, NULL pointers, wrong lengths, operation-active cases,
Update/Final/GetOperationState after a lane C_DigestInit, C_SessionCancel, close, logout,
finalize); with the lane on, the lane's own state (``_cryptoki_shim_lane.state``) shows
that the lane did serve the C_DigestInit the scenario is about, so a scenario cannot
silently test Python twice. Then threads (results checked against hashlib) and a fork child.
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from p11 import LIB, P11, SO_PIN, USER_PIN, ffi, write_config
from test_native_hosts import build_dir, conf  # noqa: F401  (fixtures)
from cryptoki_shim import spec
from cryptoki_shim.abi import limits

CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512 = 0x220, 0x255, 0x250, 0x260, 0x270
DIGESTS = {CKM_SHA_1: "sha1", CKM_SHA224: "sha224", CKM_SHA256: "sha256", CKM_SHA384: "sha384",
           CKM_SHA512: "sha512"}
OFF = "[module]\nnative_lane = false\n"
DIGEST_BIT = 1


def _lane() -> Any:
    import _cryptoki_shim_lane  # type: ignore[import-not-found]  # published by the library

    return _cryptoki_shim_lane


@contextmanager
def module(tmp_path: Path, on: bool, monkeypatch: pytest.MonkeyPatch) -> Iterator[P11]:
    """The library initialized on a fresh store with the lane on or off, a token ready."""
    directory = tmp_path / ("on" if on else "off")
    directory.mkdir()
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(directory, extra="" if on else OFF)))
    p = P11(LIB)
    p.initialize()
    try:
        p.init_token(0, SO_PIN, "lane")
        s = p.open(0)
        p.login(s, SO_PIN, user=0)
        p.init_pin(s, USER_PIN)
        p.close(s)
        yield p
    finally:
        p.call("C_Finalize", ffi.NULL)


class Trace:
    """Calls on one session, recorded as (function, rv, output) without handles."""

    def __init__(self, p: P11, on: bool) -> None:
        self.p, self.on, self.rows = p, on, []  # type: ignore[var-annotated]
        self.keep: list[Any] = []

    def rv(self, name: str, *args: Any) -> int:
        rv = self.p.call(name, *args)
        self.rows.append((name, spec.ckr_name(rv)))
        return rv

    def init(self, s: int, mech: int = CKM_SHA256, param: bytes | None = None, *, lane: bool | None = None) -> int:
        """C_DigestInit; ``lane`` True/False: with the lane on, it must (not) have served it."""
        m, keep = self.p.mechanism(mech, param)
        self.keep += [m, keep]
        rv = self.rv("C_DigestInit", s, m)
        if self.on and lane is not None:
            assert bool(_lane().state(s)[3] & DIGEST_BIT) is lane, _lane().state(s)
        return rv

    def digest(self, s: int, data: Any, length: int | None = None, out: int | None = 64,
               out_len: int | None = 64) -> None:
        """C_Digest with a buffer of ``out`` bytes (None: NULL) and *pulDigestLen = out_len
        (None: a NULL length pointer)."""
        if isinstance(data, bytes):
            length = len(data) if length is None else length
            data = ffi.new("unsigned char[]", data) if data else ffi.NULL
        buf = ffi.new("unsigned char[]", out) if out is not None else ffi.NULL
        n = ffi.new("CK_ULONG *", out_len) if out_len is not None else ffi.NULL
        rv = self.p.call("C_Digest", s, data, length, buf, n)
        got_len = n[0] if n != ffi.NULL else None
        got = bytes(ffi.buffer(buf, min(got_len, out))) if rv == 0 and buf != ffi.NULL and got_len else None
        self.rows.append(("C_Digest", spec.ckr_name(rv), got_len, got))

    def warm(self, s: int, mech: int = CKM_SHA256) -> None:
        """A C_DigestInit Python answers (it arms the lane) and its C_Digest."""
        self.init(s, mech, lane=False)
        self.digest(s, b"warm")


def _differential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: Callable[[Trace, P11], None]) -> list:
    traces = []
    for on in (True, False):
        with module(tmp_path, on, monkeypatch) as p:
            t = Trace(p, on)
            scenario(t, p)
            traces.append(t.rows)
    assert traces[0] == traces[1]
    return traces[0]


DATA = os.urandom(1024)


def _served(t: Trace, p: P11) -> None:
    s = p.open(0)
    for mech, name in DIGESTS.items():
        t.warm(s, mech)
        for data in (DATA, b"", b"x" * 200):
            t.init(s, mech, lane=True)
            t.digest(s, data)
            assert t.rows[-1][3] == hashlib.new(name, data).digest()
    t.digest(s, DATA)  # the operation ended: CKR_OPERATION_NOT_INITIALIZED


def test_lane_serves_every_digest_and_matches_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _differential(tmp_path, monkeypatch, _served)
    assert rows[-1][1] == "CKR_OPERATION_NOT_INITIALIZED"


def _length_protocol(t: Trace, p: P11) -> None:
    s = p.open(0)
    t.warm(s)
    t.init(s, lane=True)
    t.digest(s, DATA, out=None)            # a length query: 32, the operation stays
    t.digest(s, DATA, out=31, out_len=31)  # too small: CKR_BUFFER_TOO_SMALL, 32
    t.digest(s, DATA, out=32, out_len=32)  # exact
    t.digest(s, DATA)                      # ended
    t.init(s, lane=True)
    t.digest(s, DATA, out=16, out_len=16)  # too small first
    t.digest(s, DATA + b"other")           # other data after the work: refused, ended
    t.digest(s, DATA)
    t.init(s, lane=True)
    t.digest(s, DATA, out=64, out_len=None)  # NULL length pointer: CKR_ARGUMENTS_BAD, ended
    t.digest(s, DATA)
    t.init(s, lane=True)
    t.digest(s, ffi.NULL, 5)                 # NULL data with a length
    t.digest(s, DATA)
    t.init(s, lane=True)
    t.digest(s, ffi.NULL, limits.DATA.size + 1)  # over the limit: CKR_DATA_LEN_RANGE
    t.digest(s, DATA)
    t.init(s, lane=True)
    t.digest(s, ffi.NULL, 0)                 # no data, NULL pointer: the digest of b""
    t.init(s, lane=True)
    t.digest(s, DATA, out=64, out_len=0)     # a buffer with *pulDigestLen 0: too small
    t.digest(s, DATA)


def test_buffer_length_protocol_and_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _differential(tmp_path, monkeypatch, _length_protocol)
    assert ("C_Digest", "CKR_BUFFER_TOO_SMALL", 32, None) in rows
    assert ("C_Digest", "CKR_OK", 32, hashlib.sha256(b"").digest()) in rows
    assert {r[1] for r in rows} >= {"CKR_ARGUMENTS_BAD", "CKR_DATA_LEN_RANGE", "CKR_OPERATION_NOT_INITIALIZED",
                                    "CKR_OPERATION_ACTIVE"}


def _operation_active(t: Trace, p: P11) -> None:
    s = p.open(0)
    t.warm(s)
    t.init(s, lane=True)
    t.init(s, CKM_SHA512)              # a digest is active (the lane's): CKR_OPERATION_ACTIVE, it stays
    t.digest(s, DATA)                  # the first one's SHA-256
    t.init(s, lane=True)
    t.init(s, 0x12345678)              # an unknown mechanism while active: OPERATION_ACTIVE first
    t.digest(s, DATA)
    t.init(s, CKM_SHA256, b"\x00\x01", lane=False)  # a parameter: Python's answer, no operation
    t.init(s, CKM_SHA384, lane=False)  # not armed: Python's operation (and an arm for SHA-384)
    t.init(s, lane=False)              # Python's digest is active: the lane must not start one
    t.digest(s, DATA)                  # the SHA-384
    t.init(s, lane=True)
    t.digest(s, DATA)
    t.init(s, lane=True)
    t.rv("C_DigestInit", s, ffi.NULL)  # NULL mechanism: cancels (3.0)
    t.digest(s, DATA)
    t.rv("C_DigestInit", 0xDEAD, t.p.mechanism(CKM_SHA256)[0])  # no such session
    t.digest(s, DATA)


def test_operation_active_and_cancel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _differential(tmp_path, monkeypatch, _operation_active)
    assert rows[3] == ("C_DigestInit", "CKR_OPERATION_ACTIVE")
    assert ("C_Digest", "CKR_OK", 48, hashlib.sha384(DATA).digest()) in rows


def _multipart_after_lane_init(t: Trace, p: P11) -> None:
    s = p.open(0)
    t.warm(s)
    t.init(s, lane=True)
    t.rv("C_DigestUpdate", s, DATA[:100], 100)
    t.rv("C_DigestUpdate", s, DATA[100:], len(DATA) - 100)
    out, n = ffi.new("unsigned char[64]"), ffi.new("CK_ULONG *", 64)
    t.rv("C_DigestFinal", s, out, n)
    t.rows.append(bytes(ffi.buffer(out, n[0])))
    t.init(s, lane=True)
    t.rv("C_DigestUpdate", s, DATA, len(DATA))
    t.digest(s, DATA)  # a one-shot after an update: refused (OPERATION_ACTIVE), ended
    t.init(s, lane=True)
    n[0] = 64
    t.rv("C_DigestFinal", s, out, n)  # Final without update: the digest of nothing
    t.rows.append(bytes(ffi.buffer(out, n[0])))


def test_update_and_final_after_a_lane_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _differential(tmp_path, monkeypatch, _multipart_after_lane_init)
    assert hashlib.sha256(DATA).digest() in rows
    assert hashlib.sha256(b"").digest() in rows


def _operation_state(t: Trace, p: P11) -> None:
    s = p.open(0)
    t.warm(s)
    t.init(s, lane=True)
    n = ffi.new("CK_ULONG *")
    t.rv("C_GetOperationState", s, ffi.NULL, n)
    blob = ffi.new("unsigned char[]", n[0])
    t.rv("C_GetOperationState", s, blob, n)
    t.rv("C_DigestUpdate", s, b"first", 5)
    t.rv("C_SetOperationState", s, blob, n[0], 0, 0)  # back to the saved (fresh) digest
    t.rv("C_DigestUpdate", s, b"second", 6)
    out, m = ffi.new("unsigned char[64]"), ffi.new("CK_ULONG *", 64)
    t.rv("C_DigestFinal", s, out, m)
    t.rows.append(bytes(ffi.buffer(out, m[0])))
    t.init(s, lane=False)  # C_SetOperationState moved the epoch: Python answers (and arms again)
    t.digest(s, DATA)
    t.init(s, lane=True)
    t.digest(s, DATA)


def test_get_and_set_operation_state_after_a_lane_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _differential(tmp_path, monkeypatch, _operation_state)
    assert hashlib.sha256(b"second").digest() in rows


def _endings(t: Trace, p: P11) -> None:
    s = p.open(0)
    t.warm(s)
    t.init(s, lane=True)
    t.rv("C_SessionCancel", s, spec.CKF_DIGEST)
    t.digest(s, DATA)                    # cancelled
    t.init(s, lane=True)
    t.rv("C_SessionCancel", s, spec.CKF_SIGN)  # another kind: the digest stays
    t.digest(s, DATA)
    # logout ends every operation of the application's sessions, the lane's too
    s2 = p.open(0)
    t.rv("C_Login", s2, spec.CKU_USER, USER_PIN, len(USER_PIN))
    t.warm(s)
    t.init(s, lane=True)
    t.rv("C_Logout", s2)
    t.digest(s, DATA)
    # a closed session's lane operation goes with it; its handle is invalid for the lane too
    t.warm(s)
    t.init(s, lane=True)
    t.rv("C_CloseSession", s)
    t.digest(s, DATA)
    t.init(s)
    # C_CloseAllSessions
    s3 = p.open(0)
    t.warm(s3)
    t.init(s3, lane=True)
    t.rv("C_CloseAllSessions", 0)
    t.digest(s3, DATA)
    t.init(s3)


def test_cancel_logout_close_end_the_lane_operation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _differential(tmp_path, monkeypatch, _endings)
    assert rows.count(("C_Digest", "CKR_OPERATION_NOT_INITIALIZED", 64, None)) == 2
    assert rows.count(("C_Digest", "CKR_SESSION_HANDLE_INVALID", 64, None)) == 2


def _epoch(t: Trace, p: P11) -> None:
    s = p.open(0)
    t.warm(s)
    t.init(s, lane=True)
    t.digest(s, DATA)
    # any function off the verdict-neutral list voids the arms: the next Init is Python's
    t.rv("C_Login", s, spec.CKU_USER, USER_PIN, len(USER_PIN))
    t.init(s, lane=False)
    t.digest(s, DATA)
    t.init(s, lane=True)  # ... which armed it again
    t.digest(s, DATA)
    # a neutral function does not
    info = ffi.new("CK_SESSION_INFO *")
    t.rv("C_GetSessionInfo", s, info)
    t.init(s, lane=True)
    t.digest(s, DATA)
    # arms are per session
    s2 = p.open(0)
    t.init(s2, lane=False)
    t.digest(s2, DATA)


def test_epoch_voids_arms_and_arms_are_per_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _differential(tmp_path, monkeypatch, _epoch)


def test_lane_off_never_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with module(tmp_path, False, monkeypatch) as p:
        t = Trace(p, True)  # "on" only to assert the lane's state
        s = p.open(0)
        t.warm(s)
        t.init(s, lane=False)
        t.digest(s, DATA)
        p.session_info(s)
        p.session_info(s)
        assert _lane().state(s) == (0, 0, 0, 0, 0, 0, 0)


def test_finalize_with_a_lane_operation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(t: Trace, p: P11) -> None:
        s = p.open(0)
        t.warm(s)
        t.init(s, lane=True)
        t.rv("C_Finalize", ffi.NULL)
        t.digest(s, DATA)  # CKR_CRYPTOKI_NOT_INITIALIZED
        p.initialize()
        t.digest(s, DATA)  # the old handle: CKR_SESSION_HANDLE_INVALID
        t.init(s)

    rows = _differential(tmp_path, monkeypatch, scenario)
    assert rows[-3:] == [("C_Digest", "CKR_CRYPTOKI_NOT_INITIALIZED", 64, None),
                         ("C_Digest", "CKR_SESSION_HANDLE_INVALID", 64, None),
                         ("C_DigestInit", "CKR_SESSION_HANDLE_INVALID")]


def test_threads_own_sessions_results_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """4 threads, a session each, 2000 lane digests each of distinct data: every digest is
    hashlib's, and the lane served them (its Inits leave no Python operation behind)."""
    with module(tmp_path, True, monkeypatch) as p:
        errors: list[str] = []

        def work(seed: int) -> None:
            s = p.open(0)
            m, _keep = p.mechanism(CKM_SHA256)
            out, n = ffi.new("unsigned char[32]"), ffi.new("CK_ULONG *")
            for i in range(2000):
                data = f"{seed}:{i}".encode() * (1 + i % 50)
                if p.call("C_DigestInit", s, m) != 0:
                    errors.append("init")
                    return
                n[0] = 32
                rv = p.call("C_Digest", s, data, len(data), out, n)
                if rv != 0 or bytes(ffi.buffer(out, 32)) != hashlib.sha256(data).digest():
                    errors.append(f"digest {rv}")
                    return
            if _lane().state(s)[4] == 0:
                errors.append("never armed")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []


def test_threads_sharing_one_session_never_get_a_wrong_digest(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads racing C_DigestInit/C_Digest on one session (allowed, if unwise): each call
    answers CKR_OK with the right digest of its own data, or CKR_OPERATION_ACTIVE /
    CKR_OPERATION_NOT_INITIALIZED (the other thread's operation), never another digest; and
    the session ends with at most one digest operation (a final Init either succeeds or finds
    one active, and then a Digest ends it)."""
    with module(tmp_path, True, monkeypatch) as p:
        s = p.open(0)
        m, _keep = p.mechanism(CKM_SHA256)
        bad: list[Any] = []

        def work(seed: int) -> None:
            out, n = ffi.new("unsigned char[32]"), ffi.new("CK_ULONG *")
            for i in range(3000):
                data = f"{seed}-{i}".encode()
                rv = p.call("C_DigestInit", s, m)
                if rv not in (0, spec.CKR_OPERATION_ACTIVE):
                    bad.append(("init", rv))
                n[0] = 32
                rv = p.call("C_Digest", s, data, len(data), out, n)
                if rv == 0:
                    digest = bytes(ffi.buffer(out, 32))
                    if digest != hashlib.sha256(data).digest():
                        # the other thread's operation may have taken this data: still a
                        # SHA-256 of exactly this input, so any mismatch is a fault
                        bad.append(("digest", data))
                elif rv != spec.CKR_OPERATION_NOT_INITIALIZED:
                    bad.append(("digest rv", rv))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert bad == []
        rv = p.call("C_DigestInit", s, m)
        assert rv in (0, spec.CKR_OPERATION_ACTIVE)
        out, n = ffi.new("unsigned char[32]"), ffi.new("CK_ULONG *", 32)
        assert p.call("C_Digest", s, b"end", 3, out, n) == 0
        assert p.call("C_Digest", s, b"end", 3, out, n) == spec.CKR_OPERATION_NOT_INITIALIZED


def test_fork_child_has_no_lane_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lane operation in the parent; the child (module reset, CKR_CRYPTOKI_NOT_INITIALIZED)
    gets nothing from the lane, and after its own C_Initialize the parent's handle is invalid;
    the parent's operation is intact."""
    with module(tmp_path, True, monkeypatch) as p:
        s = p.open(0)
        t = Trace(p, True)
        t.warm(s)
        t.init(s, lane=True)
        p.session_info(s)
        p.session_info(s)  # (the lane's answer: the child must not get it)
        assert _lane().state(s)[5:] == (1, 1)
        pid = os.fork()
        if pid == 0:  # the child: report by exit status only
            code = 0
            try:
                out, n = ffi.new("unsigned char[32]"), ffi.new("CK_ULONG *", 32)
                if p.call("C_Digest", s, b"x", 1, out, n) != spec.CKR_CRYPTOKI_NOT_INITIALIZED:
                    code = 2
                elif _lane().state(s) != (0, 0, 0, 0, 0, 0, 0):
                    code = 3
                elif p.call("C_GetSessionInfo", s, ffi.new("CK_SESSION_INFO *")) != spec.CKR_CRYPTOKI_NOT_INITIALIZED:
                    code = 7
                elif p.call("C_Initialize", ffi.NULL) != 0:
                    code = 4
                elif p.call("C_Digest", s, b"x", 1, out, n) != spec.CKR_SESSION_HANDLE_INVALID:
                    code = 5
            except BaseException:
                code = 6
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        t.digest(s, DATA)
        assert t.rows[-1] == ("C_Digest", "CKR_OK", 32, hashlib.sha256(DATA).digest())


# ---------------------------------------------------------------------- HMAC sign/verify

SIGN_BIT, VERIFY_BIT = 2, 4
KEY = bytes(range(32))


def _hmac_key(p: P11, s: int, **extra: Any) -> int:
    attrs = {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET, spec.CKA_VALUE: KEY,
             spec.CKA_SIGN: True, spec.CKA_VERIFY: True, spec.CKA_TOKEN: False}
    attrs.update({getattr(spec, name): value for name, value in extra.items()})
    return p.create(s, attrs)


def _mac(data: bytes, name: str = "sha256") -> bytes:
    import hmac

    return hmac.new(KEY, data, name).digest()


class MacTrace(Trace):
    def mac_init(self, fn: str, s: int, key: int, mech: int = spec.CKM_SHA256_HMAC, param: bytes | None = None, *,
                 lane: bool | None = None) -> int:
        m, keep = self.p.mechanism(mech, param)
        self.keep += [m, keep]
        rv = self.rv(fn, s, m, key)
        if self.on and lane is not None:
            bit = SIGN_BIT if fn == "C_SignInit" else VERIFY_BIT
            assert bool(_lane().state(s)[3] & bit) is lane, (fn, _lane().state(s))
        return rv

    def sign(self, s: int, data: Any, length: int | None = None, out: int | None = 64,
             out_len: int | None = 64) -> None:
        if isinstance(data, bytes):
            length = len(data) if length is None else length
            data = ffi.new("unsigned char[]", data) if data else ffi.NULL
        buf = ffi.new("unsigned char[]", out) if out is not None else ffi.NULL
        n = ffi.new("CK_ULONG *", out_len) if out_len is not None else ffi.NULL
        rv = self.p.call("C_Sign", s, data, length, buf, n)
        got_len = n[0] if n != ffi.NULL else None
        got = bytes(ffi.buffer(buf, min(got_len, out))) if rv == 0 and buf != ffi.NULL and got_len else None
        self.rows.append(("C_Sign", spec.ckr_name(rv), got_len, got))

    def verify(self, s: int, data: bytes, sig: Any, sig_len: int | None = None) -> None:
        if isinstance(sig, bytes):
            sig_len = len(sig) if sig_len is None else sig_len
            sig = ffi.new("unsigned char[]", sig) if sig else ffi.NULL
        d = ffi.new("unsigned char[]", data) if data else ffi.NULL
        self.rows.append(("C_Verify", spec.ckr_name(self.p.call("C_Verify", s, d, len(data), sig, sig_len))))

    def warm_mac(self, s: int, key: int, mech: int = spec.CKM_SHA256_HMAC) -> None:
        self.mac_init("C_SignInit", s, key, mech, lane=False)
        self.sign(s, b"warm")
        self.mac_init("C_VerifyInit", s, key, mech, lane=False)
        self.verify(s, b"warm", self.rows[-2][3])


def _keyed_differential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: Callable[[Any, P11, int], None],
                        trace: type[MacTrace] | None = None) -> list:
    """Runs ``scenario`` on a logged-in session with the lane on, then off (a ``trace`` each,
    MacTrace by default): both traces must be equal call by call."""
    traces = []
    for on in (True, False):
        with module(tmp_path, on, monkeypatch) as p:
            s = p.open(0)
            p.login(s, USER_PIN)
            t = (trace or MacTrace)(p, on)
            scenario(t, p, s)
            traces.append(t.rows)
    assert traces[0] == traces[1]
    return traces[0]


def _mac_served(t: MacTrace, p: P11, s: int) -> None:
    key = _hmac_key(p, s)
    for mech, name in ((spec.CKM_SHA_1_HMAC, "sha1"), (spec.CKM_SHA224_HMAC, "sha224"),
                       (spec.CKM_SHA256_HMAC, "sha256"), (spec.CKM_SHA384_HMAC, "sha384"),
                       (spec.CKM_SHA512_HMAC, "sha512")):
        t.warm_mac(s, key, mech)
        for data in (b"", b"x" * 64, DATA):
            t.mac_init("C_SignInit", s, key, mech, lane=True)
            t.sign(s, data)
            assert t.rows[-1][3] == _mac(data, name)
            t.mac_init("C_VerifyInit", s, key, mech, lane=True)
            t.verify(s, data, _mac(data, name))
            t.mac_init("C_VerifyInit", s, key, mech, lane=True)
            t.verify(s, data, bytes(len(_mac(data, name))))  # wrong MAC: CKR_SIGNATURE_INVALID
    t.sign(s, DATA)
    t.verify(s, DATA, _mac(DATA))


def test_hmac_served_and_matches_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _mac_served)
    assert rows.count(("C_Verify", "CKR_SIGNATURE_INVALID")) == 15
    assert rows[-2:] == [("C_Sign", "CKR_OPERATION_NOT_INITIALIZED", 64, None),
                         ("C_Verify", "CKR_OPERATION_NOT_INITIALIZED")]


def _mac_protocol(t: MacTrace, p: P11, s: int) -> None:
    key = _hmac_key(p, s)
    t.warm_mac(s, key)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.sign(s, DATA, out=None)             # length query: the operation stays
    t.sign(s, DATA, out=31, out_len=31)   # too small
    t.sign(s, DATA, out=32, out_len=32)
    t.sign(s, DATA)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.sign(s, DATA, out=64, out_len=None)  # NULL length pointer
    t.sign(s, DATA)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.sign(s, ffi.NULL, 3)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.sign(s, ffi.NULL, limits.DATA.size + 1)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.mac_init("C_SignInit", s, key, spec.CKM_SHA512_HMAC)  # active: CKR_OPERATION_ACTIVE, stays
    t.rv("C_SignUpdate", s, DATA, len(DATA))
    n, out = ffi.new("CK_ULONG *", 64), ffi.new("unsigned char[64]")
    t.rv("C_SignFinal", s, out, n)
    t.rows.append(bytes(ffi.buffer(out, n[0])))
    t.mac_init("C_VerifyInit", s, key, lane=True)
    t.verify(s, DATA, _mac(DATA)[:31])     # wrong length: CKR_SIGNATURE_LEN_RANGE
    t.verify(s, DATA, _mac(DATA))          # ended
    t.mac_init("C_VerifyInit", s, key, lane=True)
    t.verify(s, DATA, ffi.NULL, 32)        # NULL signature
    t.mac_init("C_VerifyInit", s, key, lane=True)
    t.verify(s, DATA, b"x" * (limits.SIGNATURE.size + 1))
    t.mac_init("C_VerifyInit", s, key, lane=True)
    t.rv("C_VerifyUpdate", s, DATA, len(DATA))
    t.rv("C_VerifyFinal", s, _mac(DATA), 32)
    t.mac_init("C_SignInit", s, key, spec.CKM_SHA256_HMAC_GENERAL, (16).to_bytes(8, "little"), lane=False)
    t.sign(s, DATA)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.rv("C_SignInit", s, ffi.NULL, key)   # NULL mechanism: cancel
    t.sign(s, DATA)
    t.mac_init("C_SignInit", s, key + 1000)  # no such key
    t.mac_init("C_SignInit", s, key, lane=True)
    n[0] = 0
    t.rv("C_GetOperationState", s, ffi.NULL, n)
    t.sign(s, DATA)


def test_hmac_buffer_protocol_and_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _mac_protocol)
    assert _mac(DATA) in rows
    assert {r[1] for r in rows if len(r) > 1} >= {"CKR_BUFFER_TOO_SMALL", "CKR_ARGUMENTS_BAD", "CKR_DATA_LEN_RANGE",
                                                  "CKR_SIGNATURE_LEN_RANGE", "CKR_OPERATION_ACTIVE",
                                                  "CKR_KEY_HANDLE_INVALID"}


def _mac_abuse(t: MacTrace, p: P11, s: int) -> None:
    # 1. destroy the key: the next Init is refused exactly as without the lane; an operation
    #    started before goes on (Python's does too)
    key = _hmac_key(p, s)
    t.warm_mac(s, key)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.rv("C_DestroyObject", s, key)
    t.sign(s, DATA)
    t.mac_init("C_SignInit", s, key, lane=False)
    # 2. CKA_SIGN set to FALSE
    key = _hmac_key(p, s)
    t.warm_mac(s, key)
    tpl_rv = p.call("C_SetAttributeValue", s, key, *_template({spec.CKA_SIGN: False}))
    t.rows.append(("C_SetAttributeValue", spec.ckr_name(tpl_rv)))
    t.mac_init("C_SignInit", s, key, lane=False)
    t.mac_init("C_VerifyInit", s, key, lane=False)  # (the epoch moved: verify is Python's once)
    t.verify(s, DATA, _mac(DATA))
    # 3. CKA_ALLOWED_MECHANISMS changed (or refused: the answer is the same either way)
    key = _hmac_key(p, s)
    t.warm_mac(s, key)
    tpl_rv = p.call("C_SetAttributeValue", s, key, *_template({spec.CKA_ALLOWED_MECHANISMS: [spec.CKM_SHA384_HMAC]}))
    t.rows.append(("C_SetAttributeValue", spec.ckr_name(tpl_rv)))
    t.mac_init("C_SignInit", s, key, lane=False)
    t.sign(s, DATA)
    # 4. a private session key, then logout: gone with the login
    key = _hmac_key(p, s, CKA_PRIVATE=True)
    t.warm_mac(s, key)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.sign(s, DATA)
    t.rv("C_Logout", s)
    t.mac_init("C_SignInit", s, key, lane=False)
    t.mac_init("C_VerifyInit", s, key, lane=False)
    t.rv("C_Login", s, spec.CKU_USER, USER_PIN, len(USER_PIN))
    t.mac_init("C_SignInit", s, key, lane=False)
    # 5. the session that made the key closes: the key goes, another session's Init is refused;
    #    its operation started before goes on
    maker = p.open(0)
    key = _hmac_key(p, maker)
    t.warm_mac(s, key)
    t.mac_init("C_SignInit", s, key, lane=True)
    t.rv("C_CloseSession", maker)
    t.sign(s, DATA)
    t.mac_init("C_SignInit", s, key, lane=False)
    # 6. a key without CKA_SIGN never arms sign; verify arms
    key = _hmac_key(p, s, CKA_SIGN=False)
    t.mac_init("C_SignInit", s, key, lane=False)
    t.mac_init("C_SignInit", s, key, lane=False)
    t.mac_init("C_VerifyInit", s, key, lane=False)
    t.verify(s, DATA, _mac(DATA))
    t.mac_init("C_VerifyInit", s, key, lane=True)
    t.verify(s, DATA, _mac(DATA))
    # 7. a token key is never armed
    key = _hmac_key(p, s, CKA_TOKEN=True)
    t.warm_mac(s, key)
    t.mac_init("C_SignInit", s, key, lane=False)
    t.sign(s, DATA)


def _template(attrs: dict[int, Any]) -> tuple[Any, int]:
    from p11 import Template

    tpl = Template(attrs)
    _KEEP.append(tpl)
    return tpl.array, tpl.count


_KEEP: list[Any] = []


def test_hmac_verdict_changes_answer_as_without_the_lane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _mac_abuse)
    assert rows.count(("C_Sign", "CKR_OK", 32, _mac(DATA))) >= 3  # the operations started before went on
    assert ("C_SignInit", "CKR_KEY_HANDLE_INVALID") in rows
    assert ("C_SignInit", "CKR_KEY_FUNCTION_NOT_PERMITTED") in rows


def test_hmac_threads_on_a_shared_session_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """4 threads, a session each, one session key made by the main session: 1500 lane MACs
    and verifications each, every MAC checked against Python's hmac."""
    with module(tmp_path, True, monkeypatch) as p:
        main = p.open(0)
        p.login(main, USER_PIN)
        key = _hmac_key(p, main)
        errors: list[Any] = []

        def work(seed: int) -> None:
            s = p.open(0)
            m, _keep = p.mechanism(spec.CKM_SHA256_HMAC)
            out, n = ffi.new("unsigned char[32]"), ffi.new("CK_ULONG *")
            for i in range(1500):
                data = f"{seed}/{i}".encode() * (1 + i % 9)
                n[0] = 32
                if p.call("C_SignInit", s, m, key) != 0 or p.call("C_Sign", s, data, len(data), out, n) != 0:
                    errors.append("sign")
                    return
                mac = bytes(ffi.buffer(out, 32))
                if mac != _mac(data):
                    errors.append(("mac", data))
                    return
                if p.call("C_VerifyInit", s, m, key) != 0 or p.call("C_Verify", s, data, len(data), out, 32) != 0:
                    errors.append("verify")
                    return
            if not _lane().state(s)[0]:
                errors.append("never armed")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []


# ---------------------------------------------------------------------- AES-GCM encryption

ENCRYPT_BIT = 8
AES_KEY = bytes(range(100, 116))


def _aes_key(p: P11, s: int, **extra: Any) -> int:
    attrs = {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_VALUE: AES_KEY,
             spec.CKA_ENCRYPT: True, spec.CKA_DECRYPT: True, spec.CKA_TOKEN: False}
    attrs.update({getattr(spec, name): value for name, value in extra.items()})
    return p.create(s, attrs)


def _gcm(iv: bytes, aad: bytes, data: bytes, tag_bits: int = 128) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(AES_KEY), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    out = enc.update(data) + enc.finalize()
    return out + enc.tag[: tag_bits // 8]


class GcmTrace(MacTrace):
    def gcm_init(self, s: int, key: int, iv: Any = b"\x01" * 12, aad: Any = b"", tag_bits: int = 128,
                 iv_len: int | None = None, aad_len: int | None = None, param_len: int | None = None,
                 mech: int = spec.CKM_AES_GCM, *, lane: bool | None = None) -> int:
        g = ffi.new("CK_GCM_PARAMS *")
        keep = [g]
        for field, value, length in (("pIv", iv, iv_len), ("pAAD", aad, aad_len)):
            if isinstance(value, bytes):
                buf = ffi.new("unsigned char[]", value) if value else ffi.NULL
                keep.append(buf)
                setattr(g, field, buf)
                length = len(value) if length is None else length
            else:
                setattr(g, field, value)
            setattr(g, "ulIvLen" if field == "pIv" else "ulAADLen", length)
        g.ulIvBits = 8 * g.ulIvLen
        g.ulTagBits = tag_bits
        m = ffi.new("CK_MECHANISM *")
        m.mechanism, m.pParameter = mech, g
        m.ulParameterLen = ffi.sizeof("CK_GCM_PARAMS") if param_len is None else param_len
        self.keep += [m, keep]
        rv = self.rv("C_EncryptInit", s, m, key)
        if self.on and lane is not None:
            assert bool(_lane().state(s)[3] & ENCRYPT_BIT) is lane, _lane().state(s)
        return rv

    def encrypt(self, s: int, data: Any, length: int | None = None, out: int | None = 2048,
                out_len: int | None = 2048) -> None:
        if isinstance(data, bytes):
            length = len(data) if length is None else length
            data = ffi.new("unsigned char[]", data) if data else ffi.NULL
        buf = ffi.new("unsigned char[]", out) if out is not None else ffi.NULL
        n = ffi.new("CK_ULONG *", out_len) if out_len is not None else ffi.NULL
        rv = self.p.call("C_Encrypt", s, data, length, buf, n)
        got_len = n[0] if n != ffi.NULL else None
        got = bytes(ffi.buffer(buf, min(got_len, out))) if rv == 0 and buf != ffi.NULL and got_len else None
        self.rows.append(("C_Encrypt", spec.ckr_name(rv), got_len, got))

    #: the IV of the trace's default parameter, and what a shared scenario calls
    IV_SIZE = 12

    def cipher_init(self, s: int, key: int, iv: bytes | None = None, *, lane: bool | None = None) -> int:
        return self.gcm_init(s, key, b"\x01" * self.IV_SIZE if iv is None else iv, lane=lane)

    def expected(self, iv: bytes, data: bytes) -> bytes:
        return _gcm(iv, b"", data)

    def warm(self, s: int, key: int) -> None:
        self.cipher_init(s, key, lane=False)
        self.encrypt(s, b"warm")



def _gcm_served(t: GcmTrace, p: P11, s: int) -> None:
    key = _aes_key(p, s)
    t.warm(s, key)
    for iv, aad, tag_bits, data in ((b"\x02" * 12, b"", 128, DATA), (b"\x03" * 8, b"aad", 96, b""),
                                    (b"\x04" * 128, b"a" * 256, 32, b"x" * 33), (b"\x05" * 16, b"", 64, DATA)):
        t.gcm_init(s, key, iv, aad, tag_bits, lane=True)
        t.encrypt(s, data)
        assert t.rows[-1][3] == _gcm(iv, aad, data, tag_bits)
    t.encrypt(s, DATA)


def test_gcm_served_and_matches_pyca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _gcm_served, GcmTrace)
    assert rows[-1] == ("C_Encrypt", "CKR_OPERATION_NOT_INITIALIZED", 2048, None)


def _gcm_params(t: GcmTrace, p: P11, s: int) -> None:
    """Every parameter the lane does not take goes to Python, whose answer is the same as
    without the lane; the ones it takes give pyca's output."""
    key = _aes_key(p, s)
    t.warm(s, key)
    cases: list[dict[str, Any]] = [
        {"iv": b""}, {"iv": b"\x01" * 7}, {"iv": b"\x01" * 129}, {"iv": ffi.NULL, "iv_len": 12},
        {"iv": b"\x01" * 12, "iv_len": 1 << 40}, {"tag_bits": 0}, {"tag_bits": 24}, {"tag_bits": 100},
        {"tag_bits": 136}, {"aad": b"b" * 300}, {"aad": ffi.NULL, "aad_len": 5}, {"aad": b"", "aad_len": 1 << 40},
        {"param_len": 8}, {"param_len": 0}, {"iv": b"\x01" * 8}, {"iv": b"\x01" * 128, "tag_bits": 32},
    ]
    for case in cases:
        t.gcm_init(s, key, **case)
        t.encrypt(s, DATA[:100])
    m = ffi.new("CK_MECHANISM *")
    m.mechanism, m.pParameter, m.ulParameterLen = spec.CKM_AES_GCM, ffi.NULL, ffi.sizeof("CK_GCM_PARAMS")
    t.rv("C_EncryptInit", s, m, key)  # NULL parameter with a length
    t.encrypt(s, DATA)


def test_gcm_parameters_bad_and_good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _gcm_params, GcmTrace)
    assert rows.count(("C_EncryptInit", "CKR_OK")) >= 4
    assert ("C_EncryptInit", "CKR_MECHANISM_PARAM_INVALID") in rows
    assert ("C_Encrypt", "CKR_OK", 100 + 16, _gcm(b"\x01" * 8, b"", DATA[:100])) in rows
    assert ("C_Encrypt", "CKR_OK", 100 + 16, _gcm(b"\x01" * 12, b"b" * 300, DATA[:100])) in rows


def _cipher_protocol(t: GcmTrace, p: P11, s: int) -> None:
    """The buffer protocol, multi-part after a lane Init, state, cancel and verdict changes of
    one encrypting mechanism (GcmTrace: AES-GCM, CbcTrace: AES-CBC-PAD)."""
    key = _aes_key(p, s)
    t.warm(s, key)
    t.cipher_init(s, key, lane=True)
    t.encrypt(s, DATA, out=None)                 # length query
    t.encrypt(s, DATA, out=1039, out_len=1039)   # too small
    t.encrypt(s, DATA, out=1040, out_len=1040)
    t.encrypt(s, DATA)
    t.cipher_init(s, key, lane=True)
    t.encrypt(s, DATA[:31], out=31, out_len=31)  # too small for either
    t.encrypt(s, DATA[:31], out=48, out_len=48)
    t.cipher_init(s, key, lane=True)
    t.encrypt(s, DATA, out=2048, out_len=None)
    t.cipher_init(s, key, lane=True)
    t.encrypt(s, ffi.NULL, 7)
    t.cipher_init(s, key, lane=True)
    t.encrypt(s, ffi.NULL, limits.DATA.size + 1)
    t.cipher_init(s, key, lane=True)
    t.cipher_init(s, key, b"\x09" * t.IV_SIZE)  # active: CKR_OPERATION_ACTIVE, stays
    out, n = ffi.new("unsigned char[2048]"), ffi.new("CK_ULONG *", 2048)
    t.rv("C_EncryptUpdate", s, DATA, 1000, out, n)
    t.rows.append(bytes(ffi.buffer(out, n[0])))
    n[0] = 2048
    t.rv("C_EncryptFinal", s, out, n)
    t.rows.append(bytes(ffi.buffer(out, n[0])))
    t.cipher_init(s, key, lane=True)
    n[0] = 0
    t.rv("C_GetOperationState", s, ffi.NULL, n)
    t.encrypt(s, DATA)
    t.cipher_init(s, key, lane=True)
    t.rv("C_SessionCancel", s, spec.CKF_ENCRYPT)
    t.encrypt(s, DATA)
    t.cipher_init(s, key, lane=True)
    t.rv("C_EncryptInit", s, ffi.NULL, key)
    t.encrypt(s, DATA)
    # verdict changes
    t.cipher_init(s, key, lane=True)
    t.rv("C_DestroyObject", s, key)
    t.encrypt(s, DATA)                           # started before: goes on
    t.cipher_init(s, key, lane=False)            # CKR_KEY_HANDLE_INVALID
    key = _aes_key(p, s)
    t.warm(s, key)
    t.rows.append(("set", spec.ckr_name(p.call("C_SetAttributeValue", s, key,
                                                *_template({spec.CKA_ENCRYPT: False})))))
    t.cipher_init(s, key, lane=False)
    key = _aes_key(p, s, CKA_PRIVATE=True)
    t.warm(s, key)
    t.rv("C_Logout", s)
    t.cipher_init(s, key, lane=False)


def test_gcm_protocol_multipart_and_verdict_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _cipher_protocol, GcmTrace)
    assert ("C_Encrypt", "CKR_OK", 1040, _gcm(b"\x01" * 12, b"", DATA)) in rows
    assert ("C_EncryptInit", "CKR_KEY_HANDLE_INVALID") in rows
    assert ("C_EncryptInit", "CKR_KEY_FUNCTION_NOT_PERMITTED") in rows


def _encrypt_in_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trace: type[GcmTrace]) -> None:
    """4 threads, a session each, one AES session key: 1500 encryptions each under distinct
    IVs, every output checked against pyca, and the lane served them."""
    with module(tmp_path, True, monkeypatch) as p:
        main = p.open(0)
        p.login(main, USER_PIN)
        key = _aes_key(p, main)
        errors: list[Any] = []

        def work(seed: int) -> None:
            s = p.open(0)
            out, n = ffi.new("unsigned char[2048]"), ffi.new("CK_ULONG *")
            t = trace(p, False)
            t.warm(s, key)
            served = 0
            for i in range(1500):
                iv = (seed.to_bytes(4, "big") + i.to_bytes(4, "big")).rjust(t.IV_SIZE, b"\x00")
                data = os.urandom(i % 300)
                if t.cipher_init(s, key, iv) != 0:
                    errors.append("init")
                    return
                served += bool(_lane().state(s)[3] & ENCRYPT_BIT)
                n[0] = 2048
                if p.call("C_Encrypt", s, data, len(data), out, n) != 0:
                    errors.append("encrypt")
                    return
                if bytes(ffi.buffer(out, n[0])) != t.expected(iv, data):
                    errors.append(("output", i))
                    return
            if served == 0:
                errors.append("never served")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []


def test_gcm_threads_on_a_shared_session_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypt_in_threads(tmp_path, monkeypatch, GcmTrace)


# ---------------------------------------------------------------------- a C host


def test_c_host_known_answers_threads_and_fork(build_dir: Path, conf: Path) -> None:
    """tests/native/host_lane.c: the library started Python itself (fork gate and GIL entry
    gate live): SHA-256, HMAC-SHA-256 (RFC 4231 case 2, and a wrong MAC refused) and
    AES-128-GCM (NIST cases 1 and 2) known answers repeated on a session (the lane's Inits),
    in 2 threads on the same session keys, and a fork with a lane digest active."""
    from test_native_hosts import assert_ok, compile_host, host_env, run

    host = compile_host(build_dir, "host_lane")
    assert_ok(run([str(host), str(LIB), "300"], host_env(conf), timeout=120))


def test_no_lane_init_while_a_verdict_changing_call_is_in_flight(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """While a function off the verdict-neutral list is inside Python (here a C_Login at the
    default KDF cost, with a wrong PIN: hundreds of ms), an armed C_DigestInit is not served
    by the lane (it goes to Python and answers there); after the call the epoch has moved, so
    the next Init is Python's too, and the one after is the lane's again."""
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(tmp_path, kdf_cost="default")))
    p = P11(LIB)
    p.initialize()
    try:
        p.init_token(0, SO_PIN, "lane")
        s, other = p.open(0), p.open(0)
        t = Trace(p, True)
        t.warm(s)
        t.init(s, lane=True)
        t.digest(s, DATA)
        assert _lane().changing() == 0
        rvs: list[int] = []
        login = threading.Thread(target=lambda: rvs.append(p.call("C_Login", other, spec.CKU_SO, b"wrong-pin", 9)))
        login.start()
        for _ in range(5000):
            if _lane().changing():
                break
            threading.Event().wait(0.001)
        during = _lane().changing()
        t.init(s, lane=False)  # in flight: Python's (answered CKR_OK there)
        still = _lane().changing()
        t.digest(s, DATA)
        login.join()
        assert during >= 1 and still >= 1, "the login ended before the Init: nothing was shown"
        assert rvs == [spec.CKR_PIN_INCORRECT]
        assert _lane().changing() == 0
        t.init(s, lane=False)  # the epoch moved at the end of the login
        t.digest(s, DATA)
        t.init(s, lane=True)
        t.digest(s, DATA)
        assert [r[1] for r in t.rows] == ["CKR_OK"] * len(t.rows)
    finally:
        p.call("C_Finalize", ffi.NULL)


def _gcm_overlap(t: GcmTrace, p: P11, s: int) -> None:
    """In place and partly overlapping buffers: the answer and the bytes are Python's."""
    key = _aes_key(p, s)
    t.warm(s, key)
    for shift in (0, 1, 17, -5):
        buf = ffi.new("unsigned char[]", 4096)
        base = 1024
        ffi.memmove(buf + base, DATA[:300], 300)
        n = ffi.new("CK_ULONG *", 2048)
        t.gcm_init(s, key, lane=True)
        rv = p.call("C_Encrypt", s, buf + base, 300, buf + base + shift, n)
        t.rows.append(("C_Encrypt", spec.ckr_name(rv), n[0], bytes(ffi.buffer(buf + base + shift, n[0]))))
        assert t.rows[-1][3] == _gcm(b"\x01" * 12, b"", DATA[:300])


def test_gcm_in_place_and_overlapping_buffers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _keyed_differential(tmp_path, monkeypatch, _gcm_overlap, GcmTrace)


# ---------------------------------------------------------------------- AES-CBC-PAD encryption


def _cbc_pad(iv: bytes, data: bytes, key: bytes = AES_KEY) -> bytes:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    pad = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(pad.update(data) + pad.finalize()) + enc.finalize()


class CbcTrace(GcmTrace):
    def cbc_init(self, s: int, key: int, iv: Any = b"\x01" * 16, param_len: int | None = None,
                 mech: int = spec.CKM_AES_CBC_PAD, *, lane: bool | None = None) -> int:
        """C_EncryptInit of AES-CBC-PAD with ``iv`` (bytes, or a raw pointer such as NULL) and
        ulParameterLen ``param_len`` (default: the IV's length)."""
        m = ffi.new("CK_MECHANISM *")
        buf = ffi.new("unsigned char[]", iv) if isinstance(iv, bytes) and iv else (ffi.NULL if iv == b"" else iv)
        m.mechanism, m.pParameter = mech, buf
        m.ulParameterLen = (len(iv) if isinstance(iv, bytes) else 16) if param_len is None else param_len
        self.keep += [m, buf]
        rv = self.rv("C_EncryptInit", s, m, key)
        if self.on and lane is not None:
            assert bool(_lane().state(s)[3] & ENCRYPT_BIT) is lane, _lane().state(s)
        return rv

    IV_SIZE = 16

    def cipher_init(self, s: int, key: int, iv: bytes | None = None, *, lane: bool | None = None) -> int:
        return self.cbc_init(s, key, b"\x01" * self.IV_SIZE if iv is None else iv, lane=lane)

    def expected(self, iv: bytes, data: bytes) -> bytes:
        return _cbc_pad(iv, data)


def _cbc_served(t: CbcTrace, p: P11, s: int) -> None:
    key = _aes_key(p, s)
    t.warm(s, key)
    for i, data in enumerate((DATA, b"", b"x", b"y" * 15, b"z" * 16, DATA[:1000], DATA[:33])):
        iv = bytes([i]) * 16
        t.cbc_init(s, key, iv, lane=True)
        t.encrypt(s, data)
        assert t.rows[-1][3] == _cbc_pad(iv, data)
        assert t.rows[-1][2] == (len(data) // 16 + 1) * 16
    t.encrypt(s, DATA)
    for value in (bytes(range(24)), bytes(range(32))):  # AES-192 and AES-256 keys
        other = p.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                             spec.CKA_VALUE: value, spec.CKA_ENCRYPT: True, spec.CKA_TOKEN: False})
        t.warm(s, other)
        t.cbc_init(s, other, b"\x07" * 16, lane=True)
        t.encrypt(s, DATA[:100])
        assert t.rows[-1][3] == _cbc_pad(b"\x07" * 16, DATA[:100], value)


def test_cbc_pad_served_and_matches_pyca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _cbc_served, CbcTrace)
    assert ("C_Encrypt", "CKR_OPERATION_NOT_INITIALIZED", 2048, None) in rows


def _cbc_params(t: CbcTrace, p: P11, s: int) -> None:
    """Every IV the lane does not take goes to Python (same answer as without the lane); a
    CBC_PAD arm is not a GCM arm (nor the other way round), nor an arm for another key."""
    key = _aes_key(p, s)
    t.warm(s, key)
    cases: list[dict[str, Any]] = [
        {"iv": b"\x01" * 15}, {"iv": b"\x01" * 17}, {"iv": b""}, {"iv": ffi.NULL, "param_len": 16},
        {"iv": b"\x01" * 16, "param_len": 0}, {"iv": b"\x01" * 16, "param_len": 1 << 40},
    ]
    for case in cases:
        t.cbc_init(s, key, lane=False, **case)
        t.encrypt(s, DATA[:100])
    t.cbc_init(s, key, b"\x02" * 16, lane=True)
    t.encrypt(s, DATA[:100])
    t.gcm_init(s, key, lane=False)             # armed for CBC_PAD only: Python's (and arms GCM)
    t.encrypt(s, DATA[:100])
    t.cbc_init(s, key, b"\x03" * 16, lane=True)  # both armed now
    t.encrypt(s, DATA[:100])
    t.gcm_init(s, key, lane=True)
    t.encrypt(s, DATA[:100])
    other = _aes_key(p, s)
    t.cbc_init(s, other, b"\x04" * 16, lane=False)  # another key: never armed
    t.encrypt(s, DATA[:100])
    t.cbc_init(s, key, b"\x05" * 16, mech=spec.CKM_AES_CBC, lane=False)  # no padding: not the lane's
    t.encrypt(s, DATA[:96])


def test_cbc_pad_parameters_bad_and_good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _cbc_params, CbcTrace)
    assert rows.count(("C_EncryptInit", "CKR_MECHANISM_PARAM_INVALID")) >= 4
    assert ("C_Encrypt", "CKR_OK", 112, _cbc_pad(b"\x02" * 16, DATA[:100])) in rows
    assert ("C_Encrypt", "CKR_OK", 112, _cbc_pad(b"\x03" * 16, DATA[:100])) in rows
    assert ("C_Encrypt", "CKR_OK", 112, _cbc_pad(b"\x04" * 16, DATA[:100])) in rows


def test_cbc_pad_protocol_multipart_and_verdict_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _keyed_differential(tmp_path, monkeypatch, _cipher_protocol, CbcTrace)
    assert ("C_Encrypt", "CKR_OK", 1040, None) in rows
    assert ("C_Encrypt", "CKR_BUFFER_TOO_SMALL", 1040, None) in rows
    assert ("C_Encrypt", "CKR_OK", 1040, _cbc_pad(b"\x01" * 16, DATA)) in rows
    assert ("C_Encrypt", "CKR_OK", 32, _cbc_pad(b"\x01" * 16, DATA[:31])) in rows
    parts = [r for r in rows if isinstance(r, bytes)]  # Update + Final after the lane's Init
    assert parts[0] + parts[1] == _cbc_pad(b"\x01" * 16, DATA[:1000])
    assert ("C_EncryptInit", "CKR_OPERATION_ACTIVE") in rows
    assert ("C_EncryptInit", "CKR_KEY_HANDLE_INVALID") in rows
    assert ("C_EncryptInit", "CKR_KEY_FUNCTION_NOT_PERMITTED") in rows


def _cbc_overlap(t: CbcTrace, p: P11, s: int) -> None:
    """In place and partly overlapping buffers: the answer and the bytes are Python's."""
    key = _aes_key(p, s)
    t.warm(s, key)
    for shift in (0, 1, 16, -5):
        buf = ffi.new("unsigned char[]", 4096)
        base = 1024
        ffi.memmove(buf + base, DATA[:300], 300)
        n = ffi.new("CK_ULONG *", 2048)
        t.cbc_init(s, key, lane=True)
        rv = p.call("C_Encrypt", s, buf + base, 300, buf + base + shift, n)
        t.rows.append(("C_Encrypt", spec.ckr_name(rv), n[0], bytes(ffi.buffer(buf + base + shift, n[0]))))
        assert t.rows[-1][3] == _cbc_pad(b"\x01" * 16, DATA[:300])


def test_cbc_pad_in_place_and_overlapping_buffers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _keyed_differential(tmp_path, monkeypatch, _cbc_overlap, CbcTrace)


def test_cbc_pad_threads_on_a_shared_session_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypt_in_threads(tmp_path, monkeypatch, CbcTrace)


# ---------------------------------------------------------------------- C_GetSessionInfo


class InfoTrace(Trace):
    def info(self, s: int, *, served: bool | None = None, null: bool = False) -> None:
        """C_GetSessionInfo, recorded as (rv, slot, state, flags, device error); ``served``
        True/False: with the lane on, the lane did (not) answer it (its per-session count)."""
        before = _lane().state(s)[6] if self.on else 0
        info = ffi.NULL if null else ffi.new("CK_SESSION_INFO *")
        rv = self.p.call("C_GetSessionInfo", s, info)
        got = (info.slotID, info.state, info.flags, info.ulDeviceError) if rv == 0 and not null else None
        self.rows.append(("C_GetSessionInfo", spec.ckr_name(rv), got))
        if self.on and served is not None:
            assert (_lane().state(s)[6] == before + 1) is served, (_lane().state(s), before)


def _info_scenario(t: InfoTrace, p: P11) -> None:
    ro, rw = p.open(0, rw=False), p.open(0)
    for s in (ro, rw):
        t.info(s, served=False)                  # Python's answer arms the lane
        t.info(s, served=True)
        t.info(s, served=True)
        t.info(s, null=True, served=False)       # CKR_ARGUMENTS_BAD: Python's
    p.login(rw, USER_PIN)                        # every session's state moves
    for s in (ro, rw):
        t.info(s, served=False)
        t.info(s, served=True)
    t.rv("C_Login", ro, spec.CKU_USER, USER_PIN, len(USER_PIN))  # CKR_USER_ALREADY_LOGGED_IN
    t.info(ro, served=False)                     # (any call off the neutral list voids it)
    p.logout(ro)
    for s in (ro, rw):
        t.info(s, served=False)
        t.info(s, served=True)
    p.close(ro)
    t.info(ro, served=False)                     # CKR_SESSION_HANDLE_INVALID
    t.info(ro, served=False)
    t.rv("C_Login", rw, spec.CKU_SO, SO_PIN, len(SO_PIN))
    t.info(rw, served=False)
    t.info(rw, served=True)                      # CKS_RW_SO_FUNCTIONS
    other = p.open(0)
    t.info(other, served=False)
    t.info(other, served=True)
    t.rv("C_CloseAllSessions", 0)
    t.info(rw, served=False)                     # CKR_SESSION_HANDLE_INVALID (and logged out)
    t.info(other, served=False)
    fresh = p.open(0, rw=False)
    t.info(fresh, served=False)
    t.info(fresh, served=True)                   # CKS_RO_PUBLIC_SESSION
    t.rv("C_CloseSession", fresh)
    t.info(fresh, served=False)


def test_get_session_info_answers_as_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Differential over R/O and R/W sessions, user and SO logins, logout, close and
    C_CloseAllSessions: the lane answers a repeated C_GetSessionInfo only while nothing that
    could change the answer has happened since Python's, and the answers are Python's."""
    traces = []
    for on in (True, False):
        with module(tmp_path, on, monkeypatch) as p:
            t = InfoTrace(p, on)
            _info_scenario(t, p)
            traces.append(t.rows)
    assert traces[0] == traces[1]
    rows = traces[0]
    states = {r[2][1] for r in rows if r[0] == "C_GetSessionInfo" and r[2]}
    assert {spec.CKS_RO_PUBLIC_SESSION, spec.CKS_RW_PUBLIC_SESSION, spec.CKS_RO_USER_FUNCTIONS,
            spec.CKS_RW_USER_FUNCTIONS, spec.CKS_RW_SO_FUNCTIONS} <= states
    assert rows.count(("C_GetSessionInfo", "CKR_SESSION_HANDLE_INVALID", None)) == 5
    assert ("C_GetSessionInfo", "CKR_ARGUMENTS_BAD", None) in rows


def test_get_session_info_threads_and_a_concurrent_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2 threads repeat C_GetSessionInfo on their own sessions while a third logs in and out:
    every answer is a state the session can be in, and after the last logout every answer is
    the public one (no stale login state survives in the lane)."""
    with module(tmp_path, True, monkeypatch) as p:
        keep = p.open(0)
        sessions = [p.open(0), p.open(0, rw=False)]
        allowed = {sessions[0]: {spec.CKS_RW_PUBLIC_SESSION, spec.CKS_RW_USER_FUNCTIONS},
                   sessions[1]: {spec.CKS_RO_PUBLIC_SESSION, spec.CKS_RO_USER_FUNCTIONS}}
        errors: list[Any] = []
        stop = threading.Event()

        def work(s: int) -> None:
            info = ffi.new("CK_SESSION_INFO *")
            while not stop.is_set():
                if p.call("C_GetSessionInfo", s, info) != 0 or info.state not in allowed[s]:
                    errors.append((s, info.state))
                    return

        threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
        for th in threads:
            th.start()
        for _ in range(20):
            p.login(keep, USER_PIN)
            p.logout(keep)
        stop.set()
        for th in threads:
            th.join()
        assert errors == []
        for s in sessions:
            for _ in range(3):
                assert p.session_info(s).state in {spec.CKS_RW_PUBLIC_SESSION, spec.CKS_RO_PUBLIC_SESSION}
            assert _lane().state(s)[6] > 0
