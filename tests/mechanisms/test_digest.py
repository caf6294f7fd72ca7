"""Digest mechanisms against NIST CAVP short/long message vectors (cryptography_vectors)."""

from __future__ import annotations

import hashlib

import pytest

from cryptoki_shim.mechanisms import registry
from cryptoki_shim.spec import (
    CKF_DIGEST,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA512_224,
    CKM_SHA512_256,
    CKM_SHA_1,
)
from vectors_util import nist_records

FILES = {
    CKM_SHA_1: ("hashes", "SHA1", "SHA1{}Msg.rsp"),
    CKM_SHA224: ("hashes", "SHA2", "SHA224{}Msg.rsp"),
    CKM_SHA256: ("hashes", "SHA2", "SHA256{}Msg.rsp"),
    CKM_SHA384: ("hashes", "SHA2", "SHA384{}Msg.rsp"),
    CKM_SHA512: ("hashes", "SHA2", "SHA512{}Msg.rsp"),
    CKM_SHA512_224: ("hashes", "SHA2", "SHA512_224{}Msg.rsp"),
    CKM_SHA512_256: ("hashes", "SHA2", "SHA512_256{}Msg.rsp"),
    CKM_SHA3_224: ("hashes", "SHA3", "SHA3_224{}Msg.rsp"),
    CKM_SHA3_256: ("hashes", "SHA3", "SHA3_256{}Msg.rsp"),
    CKM_SHA3_384: ("hashes", "SHA3", "SHA3_384{}Msg.rsp"),
    CKM_SHA3_512: ("hashes", "SHA3", "SHA3_512{}Msg.rsp"),
}


def _vectors(ckm: int, kind: str):
    *parts, name = FILES[ckm]
    for rec in nist_records(*parts, name.format(kind)):
        if "MD" in rec:
            msg = bytes.fromhex(rec["Msg"]) if int(rec["Len"]) else b""
            yield msg, bytes.fromhex(rec["MD"])


def _ctx(ckm: int):
    entry = registry.lookup(ckm)
    return entry.family.digest_init(entry, None)


@pytest.mark.parametrize("ckm", sorted(FILES))
@pytest.mark.parametrize("kind", ["Short", "Long"])
def test_nist_vectors_oneshot_and_multipart(ckm, kind):
    count = 0
    for msg, md in _vectors(ckm, kind):
        assert _ctx(ckm).oneshot(msg) == md
        ctx = _ctx(ckm)
        for i in range(0, len(msg), 7):
            ctx.update(msg[i : i + 7])
        assert ctx.final() == md
        count += 1
    assert count > 10


@pytest.mark.parametrize("ckm", sorted(FILES))
def test_entry_flags_and_length_hint(ckm):
    entry = registry.lookup(ckm)
    assert entry.flags == CKF_DIGEST
    ctx = _ctx(ckm)
    hint = ctx.length_hint("oneshot", 3)
    assert hint is not None and hint >= len(ctx.oneshot(b"abc"))


def test_digest_key_is_digested_like_data():
    """C_DigestKey: the key value enters the running digest (spec §5.12)."""
    ctx = _ctx(CKM_SHA256)
    ctx.update(b"head")
    ctx.digest_key(b"\x01" * 32)
    ctx.update(b"tail")
    assert ctx.final() == hashlib.sha256(b"head" + b"\x01" * 32 + b"tail").digest()
