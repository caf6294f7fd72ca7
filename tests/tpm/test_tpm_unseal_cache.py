"""The unseal cache's window (issue 20 item 5, docs/tpm.md "Sealed keys" and "Threat model").

Through the built library with ``unseal_cache_seconds = 1`` on swtpm: a sealed key unsealed
once keeps signing from memory *inside the window even after its PCRs changed* (the risk the
docs state), is refused with the PCR-mismatch code once the window has passed, and C_Logout
ends the window at once. The cache itself: an expired entry's bytes are overwritten, not just
dropped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p11 import USER_PIN, raises_ckr, write_config
from swtpm_helper import swtpm  # noqa: F401  (fixture)
from test_tpm_backend import ED25519, clean_pcr, extend_pcr16, gen_ec, public_key, slot_config, \
    user_token  # noqa: F401  (clean_pcr: fixture)

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm as tpm_backend

WINDOW = 1.0


def test_pcr_change_inside_the_window_is_seen_only_after_it(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti, cache=int(WINDOW)))
    with user_token(lib_path, conf, "cache") as (client, s):
        pub, priv = gen_ec(client, s, ED25519, label=b"cached")
        verify = public_key(client, s, pub).verify
        verify(client.sign(s, S.CKM_EDDSA, priv, b"1"), b"1")   # unsealed now, cached for WINDOW s
        started = time.monotonic()
        extend_pcr16(swtpm.tcti)                                 # the platform changes
        verify(client.sign(s, S.CKM_EDDSA, priv, b"2"), b"2")   # still in memory: still signs
        assert time.monotonic() - started < WINDOW
        time.sleep(WINDOW + 0.2)                                 # the window passes
        with raises_ckr(S.CKR_FUNCTION_REJECTED):                # unsealing again meets the new PCRs
            client.sign(s, S.CKM_EDDSA, priv, b"3")


def test_logout_ends_the_window(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti, cache=300))
    with user_token(lib_path, conf, "logout") as (client, s):
        pub, priv = gen_ec(client, s, ED25519, label=b"cached")
        public_key(client, s, pub).verify(client.sign(s, S.CKM_EDDSA, priv, b"1"), b"1")
        extend_pcr16(swtpm.tcti)
        public_key(client, s, pub).verify(client.sign(s, S.CKM_EDDSA, priv, b"2"), b"2")  # 300 s window
        client.logout(s)
        client.login(s, USER_PIN)
        [priv] = client.find(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_LABEL: b"cached"})
        with raises_ckr(S.CKR_FUNCTION_REJECTED):
            client.sign(s, S.CKM_EDDSA, priv, b"3")


def test_expired_entries_are_overwritten(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(tpm_backend.time, "monotonic", lambda: now[0])
    cache = tpm_backend.UnsealCache(5)
    raw = bytearray(b"secret key material")
    parsed = cache.put(b"tag", raw)
    parsed["pyca"] = object()
    now[0] += 4.9
    assert cache.get(b"tag") is not None and len(cache) == 1
    now[0] += 0.2
    assert cache.get(b"tag") is None and len(cache) == 0
    assert raw == bytearray(len(raw)) and parsed == {}      # wiped, not only forgotten
    assert tpm_backend.UnsealCache(0).put(b"tag", bytearray(b"x")) == {} and len(tpm_backend.UnsealCache(0)) == 0
