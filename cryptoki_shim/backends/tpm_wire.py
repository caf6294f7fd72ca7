"""The signing hot path in TPM command bytes, without ESAPI (issue 20 item 1, docs/tpm.md
"Performance").

Why not ESAPI here: tpm2-tss 3.2 computes every session HMAC through OpenSSL 3's EVP_PKEY
HMAC path, ~2 ms of client CPU per authorised command (measured with perf: algorithm
fetches and name lookups), more than the TPM's own ECDSA. The commands of one signature
are few and fixed, so they are marshalled here (TPM 2.0 Part 3) and the policy session's
HMAC is computed with ``hmac`` (Part 1 §19.6).

The hot path: ``TPM2_ReadPublic`` of the persistent SRK (is it still ours: its name),
``TPM2_Load`` of the key's blob under it (nothing stays loaded in the TPM between
operations), ``TPM2_StartAuthSession``
(policy, unsalted: signing carries no secret), ``TPM2_PolicyPCR``, ``TPM2_PolicyAuthValue``,
``TPM2_Sign`` with ``continueSession`` clear (the TPM drops the session with its answer) and
``TPM2_FlushContext`` of the key. A TPM error is raised as ``TSS2_Exception(rc)`` so that
``tpm_conn.cause_of`` maps it like any other (PCR mismatch, DA lockout, wrong auth unchanged).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Any

from tpm2_pytss import TSS2_Exception

ST_NO_SESSIONS = 0x8001
ST_SESSIONS = 0x8002
ST_HASHCHECK = 0x8024
RH_NULL = 0x40000007
RS_PW = 0x40000009
ALG_SHA256 = 0x000B
ALG_NULL = 0x0010
ALG_ECDSA = 0x0018
SE_POLICY = 0x01
CC_START_AUTH_SESSION = 0x176
CC_POLICY_PCR = 0x17F
CC_POLICY_AUTH_VALUE = 0x16B
CC_SIGN = 0x15D
CC_LOAD = 0x157
CC_FLUSH_CONTEXT = 0x165
CC_READ_PUBLIC = 0x173
CC_GET_CAPABILITY = 0x17A
CC_POLICY_GET_DIGEST = 0x189
CC_LOAD_EXTERNAL = 0x167
CC_VERIFY_SIGNATURE = 0x177
CC_POLICY_AUTHORIZE = 0x16A
RH_OWNER = 0x40000001
CAP_HANDLES = 0x00000001
CAP_TPM_PROPERTIES = 0x00000006
#: TPMA_SESSION.continueSession
CONTINUE = 0x01
#: TPM_RC_RETRY, _YIELDED, _TESTING: send the same command again (as ESAPI does)
_TRY_AGAIN = (0x922, 0x908, 0x90A)
_RETRIES = 10
#: the TPM answer we never exceed (TPM2_Sign with P-384 is < 200 bytes)
_MAX_RESPONSE = 4096


class ResponseTampered(Exception):
    """The response HMAC does not verify: something between us and the TPM changed it."""


def _b(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def _take_b(buf: bytes, pos: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">H", buf, pos)
    return buf[pos + 2:pos + 2 + n], pos + 2 + n


class Wire:
    """Raw commands over one open TCTI (``tpm2_pytss.TCTI``)."""

    def __init__(self, tcti: Any) -> None:
        self.tcti = tcti
        self.commands = 0

    def call(self, cc: int, handles: tuple[int, ...] = (), params: bytes = b"",
             auth: bytes = b"") -> bytes:
        """One command; returns the response after its header (handles, parameters, auth).
        ``auth`` is the marshalled authorisation area (then the tag is TPM_ST_SESSIONS)."""
        body = b"".join(struct.pack(">I", h) for h in handles)
        if auth:
            body += struct.pack(">I", len(auth)) + auth
        tag = ST_SESSIONS if auth else ST_NO_SESSIONS
        command = struct.pack(">HII", tag, 10 + len(body) + len(params), cc) + body + params
        for _ in range(_RETRIES):
            self.tcti.transmit(command)
            self.commands += 1
            response = self.tcti.receive(_MAX_RESPONSE, -1)
            _, size, rc = struct.unpack_from(">HII", response, 0)
            if rc not in _TRY_AGAIN:
                break
        if rc != 0:
            raise TSS2_Exception(rc)
        if size != len(response):
            raise TSS2_Exception(0x0A000A)  # TSS2_TCTI_RC_IO_ERROR: a short or long answer
        return response[10:]

    # ------------------------------------------------------------------ objects

    def load(self, parent: int, public: bytes, private: bytes) -> int:
        """TPM2_Load of a stored blob (marshalled TPM2B_PUBLIC / TPM2B_PRIVATE) under a parent
        with an empty auth (the SRK: password session, nothing secret on the bus). A parent
        that is not the one the blob was made under fails the blob's integrity check."""
        auth = struct.pack(">I", RS_PW) + _b(b"") + bytes([CONTINUE]) + _b(b"")
        rest = self.call(CC_LOAD, (parent,), private + public, auth)
        return int(struct.unpack_from(">I", rest, 0)[0])

    def flush(self, handle: int) -> None:
        self.call(CC_FLUSH_CONTEXT, params=struct.pack(">I", handle))

    def read_public_name(self, handle: int) -> bytes:
        """The name of the object at ``handle`` (TPM2_ReadPublic): what a persistent handle
        is verified by."""
        rest = self.call(CC_READ_PUBLIC, (handle,))
        _, pos = _take_b(rest, 0)           # outPublic (TPM2B_PUBLIC)
        name, _ = _take_b(rest, pos)        # name
        return name

    def handles(self, first: int) -> list[int]:
        """TPM2_GetCapability(TPM_CAP_HANDLES) from ``first`` within its range (0x80000000:
        transient objects, 0x02000000 / 0x03000000: sessions, 0x81000000: persistent)."""
        found: list[int] = []
        more = True
        while more:
            rest = self.call(CC_GET_CAPABILITY, params=struct.pack(">III", CAP_HANDLES, first, 64))
            more = bool(rest[0])
            (count,) = struct.unpack_from(">I", rest, 5)
            batch = list(struct.unpack_from(f">{count}I", rest, 9))
            found += [h for h in batch if h >> 24 == first >> 24]
            if not batch or batch[-1] >> 24 != first >> 24:
                break
            first = batch[-1] + 1
        return found

    def properties(self, first: int, count: int) -> dict[int, int]:
        """TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES): property -> value (Part 2 §6.13)."""
        rest = self.call(CC_GET_CAPABILITY, params=struct.pack(">III", CAP_TPM_PROPERTIES, first, count))
        (n,) = struct.unpack_from(">I", rest, 5)
        values = struct.unpack_from(f">{2 * n}I", rest, 9)
        return dict(zip(values[::2], values[1::2]))

    # ------------------------------------------------------------------ policy sessions

    def start_policy_session(self) -> tuple[int, bytes, bytes]:
        """An unsalted, unbound policy session (SHA-256): (handle, nonceCaller, nonceTPM).
        tpmKey and bind are the command's handles (Part 3 §11.1), both TPM_RH_NULL."""
        nonce = os.urandom(32)
        params = _b(nonce) + _b(b"") + struct.pack(">BHH", SE_POLICY, ALG_NULL, ALG_SHA256)
        rest = self.call(CC_START_AUTH_SESSION, (RH_NULL, RH_NULL), params)
        handle = int(struct.unpack_from(">I", rest, 0)[0])
        nonce_tpm, _ = _take_b(rest, 4)
        return handle, nonce, nonce_tpm

    def policy_pcr(self, session: int, selection: bytes) -> None:
        """TPM2_PolicyPCR with an empty pcrDigest: the TPM takes the current values, so a
        changed PCR shows at the authorised command as TPM_RC_POLICY_FAIL."""
        self.call(CC_POLICY_PCR, (session,), _b(b"") + selection)

    def policy_auth_value(self, session: int) -> None:
        self.call(CC_POLICY_AUTH_VALUE, (session,))

    def policy_get_digest(self, session: int) -> bytes:
        rest = self.call(CC_POLICY_GET_DIGEST, (session,))
        return _take_b(rest, 0)[0]

    def load_external_public(self, public: bytes) -> tuple[int, bytes]:
        """TPM2_LoadExternal of a public key alone (marshalled TPM2B_PUBLIC) in the owner
        hierarchy (a NULL-hierarchy key gives NULL tickets, which PolicyAuthorize refuses):
        (handle, name)."""
        rest = self.call(CC_LOAD_EXTERNAL, params=_b(b"") + public + struct.pack(">I", RH_OWNER))
        handle = int(struct.unpack_from(">I", rest, 0)[0])
        return handle, _take_b(rest, 4)[0]

    def verify_ecdsa(self, key: int, digest: bytes, r: bytes, s: bytes) -> bytes:
        """TPM2_VerifySignature (ECDSA-SHA256): the marshalled TPMT_TK_VERIFIED ticket."""
        rest = self.call(CC_VERIFY_SIGNATURE, (key,),
                         _b(digest) + struct.pack(">HH", ALG_ECDSA, ALG_SHA256) + _b(r) + _b(s))
        _, end = _take_b(rest, 6)  # tag (2) hierarchy (4) digest
        return rest[:end]

    def policy_authorize(self, session: int, approved: bytes, policy_ref: bytes, key_name: bytes,
                         ticket: bytes) -> None:
        """TPM2_PolicyAuthorize: the session's digest so far (``approved``) was signed by the
        key named ``key_name`` (the ticket proves it); the digest becomes the authority's."""
        self.call(CC_POLICY_AUTHORIZE, (session,), _b(approved) + _b(policy_ref) + _b(key_name) + ticket)

    # ------------------------------------------------------------------ signing

    def sign_ecdsa(self, key: int, key_name: bytes, auth_value: bytes, session: tuple[int, bytes, bytes],
                   digest: bytes, hash_alg: int) -> tuple[int, int]:
        """TPM2_Sign (ECDSA) authorised by a satisfied policy session with PolicyAuthValue:
        the HMAC key is sessionKey (empty: unsalted, unbound) ‖ the key's auth value without
        trailing zeros (Part 1 §19.6.8). continueSession clear: the TPM flushes the session."""
        handle, nonce_caller, nonce_tpm = session
        params = _b(digest) + struct.pack(">HH", ALG_ECDSA, hash_alg) + struct.pack(">HI", ST_HASHCHECK, RH_NULL) + _b(b"")
        attrs = 0
        key_bytes = auth_value.rstrip(b"\x00")
        cp_hash = hashlib.sha256(struct.pack(">I", CC_SIGN) + key_name + params).digest()
        mac = hmac.new(key_bytes, cp_hash + nonce_caller + nonce_tpm + bytes([attrs]), "sha256").digest()
        auth = struct.pack(">I", handle) + _b(nonce_caller) + bytes([attrs]) + _b(mac)
        rest = self.call(CC_SIGN, (key,), params, auth)
        (psize,) = struct.unpack_from(">I", rest, 0)
        rparams = rest[4:4 + psize]
        new_nonce, pos = _take_b(rest, 4 + psize)
        rattrs = rest[pos]
        rmac, _ = _take_b(rest, pos + 1)
        rp_hash = hashlib.sha256(struct.pack(">II", 0, CC_SIGN) + rparams).digest()
        expected = hmac.new(key_bytes, rp_hash + new_nonce + nonce_caller + bytes([rattrs]), "sha256").digest()
        if not hmac.compare_digest(expected, rmac):
            raise ResponseTampered("TPM2_Sign response HMAC does not verify")
        # TPMT_SIGNATURE: sigAlg (2) hash (2) signatureR (TPM2B) signatureS (TPM2B)
        r, pos = _take_b(rparams, 4)
        s, _ = _take_b(rparams, pos)
        return int.from_bytes(r, "big"), int.from_bytes(s, "big")
