"""The token publishes the CKO_PROFILE objects of what it implements (PKCS#11 3.0 §4.13)."""

from cryptoki_shim import spec
def test_profiles(token, user_session):
    hs = token.find(user_session, {spec.CKA_CLASS: spec.CKO_PROFILE})
    ids = sorted(token.get(user_session, h, spec.CKA_PROFILE_ID) for h in hs)
    assert ids == sorted([spec.CKP_BASELINE_PROVIDER, spec.CKP_EXTENDED_PROVIDER, spec.CKP_AUTHENTICATION_TOKEN])
