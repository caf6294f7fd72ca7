"""Which CK_RV each function may return: the "Return values" lists of PKCS#11 3.0 §5 (and 3.2
for its functions).

Transcribed from the base specification's per-function lists (§5.4 general purpose through
§5.15 random numbers), grouped because the spec's lists share large common parts. §5.1 lets
every function return CKR_HOST_MEMORY and CKR_FUNCTION_FAILED (and CKR_GENERAL_ERROR, which
we never accept: in this project it means an unexpected exception, i.e. our bug).
Deviations we accept deliberately are listed in ``EXTRA`` with the reason.
"""

from __future__ import annotations

from cryptoki_shim import spec


def _codes(*names: str) -> frozenset[int]:
    return frozenset(int(getattr(spec, "CKR_" + n)) for n in names)


UNIVERSAL = _codes("OK", "HOST_MEMORY", "FUNCTION_FAILED")
DEVICE = _codes("CRYPTOKI_NOT_INITIALIZED", "DEVICE_ERROR", "DEVICE_MEMORY", "DEVICE_REMOVED")
SESSION = DEVICE | _codes("SESSION_CLOSED", "SESSION_HANDLE_INVALID", "FUNCTION_CANCELED", "ARGUMENTS_BAD")
ATTRS_IN = _codes("ATTRIBUTE_READ_ONLY", "ATTRIBUTE_TYPE_INVALID", "ATTRIBUTE_VALUE_INVALID",
                  "TEMPLATE_INCOMPLETE", "TEMPLATE_INCONSISTENT", "CURVE_NOT_SUPPORTED",
                  "DOMAIN_PARAMS_INVALID")
WRITE = _codes("SESSION_READ_ONLY", "TOKEN_WRITE_PROTECTED", "USER_NOT_LOGGED_IN", "PIN_EXPIRED")
CRYPT_INIT = SESSION | _codes("KEY_FUNCTION_NOT_PERMITTED", "KEY_HANDLE_INVALID", "KEY_SIZE_RANGE",
                              "KEY_TYPE_INCONSISTENT", "MECHANISM_INVALID", "MECHANISM_PARAM_INVALID",
                              "OPERATION_ACTIVE", "PIN_EXPIRED", "USER_NOT_LOGGED_IN")
CRYPT_STEP = SESSION | _codes("BUFFER_TOO_SMALL", "DATA_INVALID", "DATA_LEN_RANGE", "OPERATION_NOT_INITIALIZED",
                              "USER_NOT_LOGGED_IN")
DECRYPT_STEP = SESSION | _codes("BUFFER_TOO_SMALL", "ENCRYPTED_DATA_INVALID", "ENCRYPTED_DATA_LEN_RANGE",
                                "OPERATION_NOT_INITIALIZED", "USER_NOT_LOGGED_IN", "AEAD_DECRYPT_FAILED")
SIGN_STEP = CRYPT_STEP | _codes("FUNCTION_REJECTED")
VERIFY_STEP = SESSION | _codes("DATA_INVALID", "DATA_LEN_RANGE", "OPERATION_NOT_INITIALIZED",
                               "SIGNATURE_INVALID", "SIGNATURE_LEN_RANGE")

ALLOWED: dict[str, frozenset[int]] = {
    "C_Initialize": _codes("ARGUMENTS_BAD", "CANT_LOCK", "CRYPTOKI_ALREADY_INITIALIZED", "NEED_TO_CREATE_THREADS"),
    "C_Finalize": _codes("ARGUMENTS_BAD", "CRYPTOKI_NOT_INITIALIZED"),
    "C_GetInfo": _codes("ARGUMENTS_BAD", "CRYPTOKI_NOT_INITIALIZED"),
    "C_GetSlotList": _codes("ARGUMENTS_BAD", "BUFFER_TOO_SMALL", "CRYPTOKI_NOT_INITIALIZED"),
    "C_GetSlotInfo": DEVICE | _codes("ARGUMENTS_BAD", "SLOT_ID_INVALID"),
    "C_GetTokenInfo": DEVICE | _codes("ARGUMENTS_BAD", "SLOT_ID_INVALID", "TOKEN_NOT_PRESENT", "TOKEN_NOT_RECOGNIZED"),
    "C_GetMechanismList": DEVICE | _codes("ARGUMENTS_BAD", "BUFFER_TOO_SMALL", "SLOT_ID_INVALID",
                                          "TOKEN_NOT_PRESENT", "TOKEN_NOT_RECOGNIZED"),
    "C_GetMechanismInfo": DEVICE | _codes("ARGUMENTS_BAD", "MECHANISM_INVALID", "SLOT_ID_INVALID",
                                          "TOKEN_NOT_PRESENT", "TOKEN_NOT_RECOGNIZED"),
    "C_InitToken": DEVICE | _codes("ARGUMENTS_BAD", "PIN_INCORRECT", "PIN_LOCKED", "SESSION_EXISTS", "SLOT_ID_INVALID",
                                   "TOKEN_NOT_PRESENT", "TOKEN_NOT_RECOGNIZED", "TOKEN_WRITE_PROTECTED", "PIN_LEN_RANGE"),
    "C_InitPIN": SESSION | _codes("PIN_INVALID", "PIN_LEN_RANGE", "SESSION_READ_ONLY", "TOKEN_WRITE_PROTECTED",
                                  "USER_NOT_LOGGED_IN"),
    "C_SetPIN": SESSION | _codes("PIN_INCORRECT", "PIN_INVALID", "PIN_LEN_RANGE", "PIN_LOCKED", "SESSION_READ_ONLY",
                                 "TOKEN_WRITE_PROTECTED"),
    "C_OpenSession": DEVICE | _codes("ARGUMENTS_BAD", "SESSION_COUNT", "SESSION_PARALLEL_NOT_SUPPORTED",
                                     "SESSION_READ_WRITE_SO_EXISTS", "SLOT_ID_INVALID", "TOKEN_NOT_PRESENT",
                                     "TOKEN_NOT_RECOGNIZED", "TOKEN_WRITE_PROTECTED"),
    "C_CloseSession": SESSION,
    "C_CloseAllSessions": DEVICE | _codes("SLOT_ID_INVALID", "TOKEN_NOT_PRESENT"),
    "C_GetSessionInfo": SESSION,
    "C_SessionCancel": SESSION | _codes("OPERATION_CANCEL_FAILED"),
    "C_Login": SESSION | _codes("OPERATION_NOT_INITIALIZED", "PIN_INCORRECT", "PIN_LOCKED", "SESSION_READ_ONLY_EXISTS",
                                "USER_ALREADY_LOGGED_IN", "USER_ANOTHER_ALREADY_LOGGED_IN",
                                "USER_PIN_NOT_INITIALIZED", "USER_TOO_MANY_TYPES", "USER_TYPE_INVALID",
                                "PIN_LEN_RANGE"),
    "C_Logout": SESSION | _codes("USER_NOT_LOGGED_IN"),
    "C_CreateObject": SESSION | ATTRS_IN | WRITE,
    "C_CopyObject": SESSION | ATTRS_IN | WRITE | _codes("ACTION_PROHIBITED", "OBJECT_HANDLE_INVALID"),
    "C_DestroyObject": SESSION | WRITE | _codes("ACTION_PROHIBITED", "OBJECT_HANDLE_INVALID"),
    "C_GetObjectSize": SESSION | _codes("INFORMATION_SENSITIVE", "OBJECT_HANDLE_INVALID"),
    "C_GetAttributeValue": SESSION | _codes("ATTRIBUTE_SENSITIVE", "ATTRIBUTE_TYPE_INVALID", "BUFFER_TOO_SMALL",
                                            "OBJECT_HANDLE_INVALID"),
    "C_SetAttributeValue": SESSION | WRITE | _codes("ACTION_PROHIBITED", "ATTRIBUTE_READ_ONLY", "ATTRIBUTE_TYPE_INVALID",
                                                    "ATTRIBUTE_VALUE_INVALID", "OBJECT_HANDLE_INVALID",
                                                    "TEMPLATE_INCONSISTENT"),
    "C_FindObjectsInit": SESSION | _codes("ATTRIBUTE_TYPE_INVALID", "ATTRIBUTE_VALUE_INVALID", "OPERATION_ACTIVE",
                                          "PIN_EXPIRED"),
    "C_FindObjects": SESSION | _codes("OPERATION_NOT_INITIALIZED"),
    "C_FindObjectsFinal": SESSION | _codes("OPERATION_NOT_INITIALIZED"),
    "C_GenerateKey": SESSION | ATTRS_IN | WRITE | _codes("MECHANISM_INVALID", "MECHANISM_PARAM_INVALID",
                                                         "OPERATION_ACTIVE"),
    "C_GenerateKeyPair": SESSION | ATTRS_IN | WRITE | _codes("MECHANISM_INVALID", "MECHANISM_PARAM_INVALID",
                                                             "OPERATION_ACTIVE"),
    "C_GenerateRandom": SESSION | _codes("OPERATION_ACTIVE", "RANDOM_NO_RNG", "USER_NOT_LOGGED_IN"),
    "C_SeedRandom": SESSION | _codes("OPERATION_ACTIVE", "RANDOM_NO_RNG", "RANDOM_SEED_NOT_SUPPORTED",
                                     "USER_NOT_LOGGED_IN"),
    "C_DigestInit": SESSION | _codes("MECHANISM_INVALID", "MECHANISM_PARAM_INVALID", "OPERATION_ACTIVE",
                                     "PIN_EXPIRED", "USER_NOT_LOGGED_IN"),
    "C_Digest": CRYPT_STEP,
    "C_DigestUpdate": CRYPT_STEP,
    "C_DigestFinal": CRYPT_STEP,
}
for _kind, _step in (("Encrypt", CRYPT_STEP), ("Decrypt", DECRYPT_STEP), ("Sign", SIGN_STEP), ("Verify", VERIFY_STEP)):
    ALLOWED[f"C_{_kind}Init"] = CRYPT_INIT
    for _suffix in ("", "Update", "Final"):
        ALLOWED[f"C_{_kind}{_suffix}"] = _step

# PKCS#11 3.2 functions (their return value lists in the 3.2 base specification)
ALLOWED["C_VerifySignatureInit"] = CRYPT_INIT | _codes("SIGNATURE_LEN_RANGE")
for _suffix in ("", "Update", "Final"):
    ALLOWED[f"C_VerifySignature{_suffix}"] = VERIFY_STEP | _codes("USER_NOT_LOGGED_IN")
ALLOWED["C_GetSessionValidationFlags"] = SESSION
for _fn in ("C_AsyncComplete", "C_AsyncGetID", "C_AsyncJoin"):
    ALLOWED[_fn] = SESSION | _codes("FUNCTION_NOT_SUPPORTED")
_WRAP_COMMON = _codes("KEY_FUNCTION_NOT_PERMITTED", "MECHANISM_INVALID", "MECHANISM_PARAM_INVALID",
                      "OPERATION_ACTIVE", "PIN_EXPIRED", "USER_NOT_LOGGED_IN", "DATA_LEN_RANGE")
ALLOWED["C_WrapKeyAuthenticated"] = SESSION | _WRAP_COMMON | _codes(
    "BUFFER_TOO_SMALL", "KEY_HANDLE_INVALID", "KEY_NOT_WRAPPABLE", "KEY_SIZE_RANGE", "KEY_UNEXTRACTABLE",
    "WRAPPING_KEY_HANDLE_INVALID", "WRAPPING_KEY_SIZE_RANGE", "WRAPPING_KEY_TYPE_INCONSISTENT")
ALLOWED["C_UnwrapKeyAuthenticated"] = SESSION | ATTRS_IN | WRITE | _WRAP_COMMON | _codes(
    "UNWRAPPING_KEY_HANDLE_INVALID", "UNWRAPPING_KEY_SIZE_RANGE", "UNWRAPPING_KEY_TYPE_INCONSISTENT",
    "WRAPPED_KEY_INVALID", "WRAPPED_KEY_LEN_RANGE")

_KEM = SESSION | ATTRS_IN | WRITE | _codes("KEY_FUNCTION_NOT_PERMITTED", "KEY_HANDLE_INVALID", "KEY_SIZE_RANGE",
                                           "KEY_TYPE_INCONSISTENT", "MECHANISM_INVALID", "MECHANISM_PARAM_INVALID",
                                           "OPERATION_ACTIVE", "PIN_EXPIRED", "USER_NOT_LOGGED_IN")
ALLOWED["C_EncapsulateKey"] = _KEM | _codes("BUFFER_TOO_SMALL")
ALLOWED["C_DecapsulateKey"] = _KEM | _codes("WRAPPED_KEY_INVALID", "WRAPPED_KEY_LEN_RANGE")

# PKCS#11 3.0 message-based functions (§5.9, §5.11, §5.14, §5.15)
_MSG_PARAM = _codes("MECHANISM_PARAM_INVALID", "OPERATION_ACTIVE", "OPERATION_NOT_INITIALIZED")
for _kind, _step in (("Encrypt", CRYPT_STEP), ("Decrypt", DECRYPT_STEP), ("Sign", SIGN_STEP), ("Verify", VERIFY_STEP)):
    ALLOWED[f"C_Message{_kind}Init"] = CRYPT_INIT | _codes("OPERATION_CANCEL_FAILED")
    ALLOWED[f"C_{_kind}Message"] = _step | _MSG_PARAM | _codes("USER_NOT_LOGGED_IN", "TOKEN_RESOURCE_EXCEEDED")
    ALLOWED[f"C_{_kind}MessageNext"] = ALLOWED[f"C_{_kind}Message"]
    ALLOWED[f"C_{_kind}MessageBegin"] = SESSION | _MSG_PARAM | _codes("PIN_EXPIRED", "USER_NOT_LOGGED_IN",
                                                                      "TOKEN_RESOURCE_EXCEEDED")
    ALLOWED[f"C_Message{_kind}Final"] = SESSION | _codes("OPERATION_ACTIVE", "OPERATION_NOT_INITIALIZED",
                                                         "USER_NOT_LOGGED_IN")
# recovery (§5.13.7, §5.15.6), C_DigestKey (§5.12.4), the dual-function updates (§5.13)
ALLOWED["C_SignRecoverInit"] = ALLOWED["C_VerifyRecoverInit"] = CRYPT_INIT
ALLOWED["C_SignRecover"] = SIGN_STEP
ALLOWED["C_VerifyRecover"] = VERIFY_STEP | _codes("BUFFER_TOO_SMALL", "USER_NOT_LOGGED_IN")
ALLOWED["C_DigestKey"] = SESSION | _codes("KEY_HANDLE_INVALID", "KEY_INDIGESTIBLE", "KEY_SIZE_RANGE",
                                          "OPERATION_ACTIVE", "OPERATION_NOT_INITIALIZED")
for _fn, _step in (("C_DigestEncryptUpdate", CRYPT_STEP), ("C_SignEncryptUpdate", CRYPT_STEP),
                   ("C_DecryptDigestUpdate", DECRYPT_STEP), ("C_DecryptVerifyUpdate", DECRYPT_STEP)):
    ALLOWED[_fn] = _step | _codes("OPERATION_ACTIVE")

#: Codes we accept beyond the spec's lists, with the reason (keep this short).
EXTRA: dict[str, frozenset[int]] = {
    # §5.15 says nothing about a key too short/long for HMAC key generation; §5.13 lists it for Init.
    "C_GenerateKey": _codes("KEY_SIZE_RANGE"),
    "C_GenerateKeyPair": _codes("KEY_SIZE_RANGE"),
    # multi-part calls on a single-part-only mechanism (§5.2 lets a token refuse with this)
    "C_SignUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_VerifyUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_VerifySignatureUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_EncryptUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_DecryptUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_SignMessageNext": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_VerifyMessageNext": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_DigestEncryptUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_SignEncryptUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_DecryptDigestUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
    "C_DecryptVerifyUpdate": _codes("FUNCTION_NOT_SUPPORTED"),
}


def allowed(fn: str) -> frozenset[int]:
    """Every CKR ``fn`` may return (never CKR_GENERAL_ERROR)."""
    return ALLOWED[fn] | UNIVERSAL | EXTRA.get(fn, frozenset())
