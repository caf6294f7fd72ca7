#!/usr/bin/env python3
"""Generate ``cryptoki_shim/spec.py`` from the PKCS#11 3.2 constant definitions below.

Why a generator: spec.py must hold every constant of the OASIS PKCS#11 ``pkcs11t.h`` as
plain Python, with one ``IntEnum`` per family and explicit module globals (so that
``from cryptoki_shim.spec import CKR_OK`` works for readers, greps and type checkers).
Writing ~1000 names twice by hand invites typos; here they are written once, in the
header's own ``#define`` form, and the module is derived from them.

Source of the values (read, not downloaded at build time -- this script needs no network):
  * oasis-tcs/pkcs11 ``working/3-00-current/pkcs11t.h`` (the 3.0 working header), and
  * oasis-tcs/pkcs11 ``published/3-01/pkcs11t.h`` for the 3.0 items the working copy lacks
    or misspells (``CKR_OPERATION_CANCEL_FAILED``, ``CKF_MULTI_MESSAGE``, ``CKG_MGF1_SHA3_*``,
    ``CKA_X2RATCHET_*``, ``CK_SP800_108_DKM_LENGTH_*``, ``CKM_SALSA20_KEY_GEN``, ...);
  * oasis-tcs/pkcs11 ``working/headers/pkcs11t.h`` (the PKCS#11 3.2 header: CRYPTOKI_VERSION
    3.2) for everything 3.1 and 3.2 add: ML-DSA / ML-KEM / SLH-DSA key types, mechanisms
    and parameter sets, ``CKA_PARAMETER_SET`` / ``CKA_SEED`` / ``CKA_ENCAPSULATE*``, the
    hedge variants, validation and trust objects, HSS/XMSS, the new ``CKR_`` codes. Those
    are written in one block at the end of DEFINES, marked ``/* 3.2 */`` and listed in
    ``SINCE_3_2`` (some of them first appeared in 3.1; the 3.2 header is the one source).
    The handful of 3.1 names kept earlier (the IKE PRF mechanisms, profiles 5 and 6) stay
    marked ``/* 3.1 */`` in ``SINCE_3_1``. The 3.1 spelling fixes (``*_KEY_DERIVATION``,
    ``CKM_DSA_PROBABILISTIC_PARAMETER_GEN``) are kept as aliases of the 3.0 names.
  * Prefixes the 3.2 header reuses for another type stay out of the enum family:
    ``CKS_LAST_VALIDATION_OK`` (NOT_IN_FAMILY); ``CKH_HEDGE_*`` and ``CKP_ML_DSA_*`` /
    ``CKP_ML_KEM_*`` / ``CKP_SLH_DSA_*`` are plain ints like the rest of CKH_/CKP_.

The 3.0 value list was cross-checked against NSS's ``pkcs11t.h`` (every shared name agrees);
the 3.2 function signatures (native/functions.h) against the published/3-02 ``pkcs11f.h``
and p11-kit's ``pkcs11.h``.

Usage:  python scripts/gen_spec.py [output]   (default: cryptoki_shim/spec.py)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# ---------------------------------------------------------------------------------------
# The constants, in pkcs11t.h form.  A trailing /* Deprecated */ (or a value that names
# another constant) marks an alias: it never becomes the canonical enum member.
# ---------------------------------------------------------------------------------------
DEFINES = r"""
#define CRYPTOKI_VERSION_MAJOR          3
#define CRYPTOKI_VERSION_MINOR          2
#define CRYPTOKI_VERSION_AMENDMENT      0
#define CK_TRUE         1
#define CK_FALSE        0
#define CK_UNAVAILABLE_INFORMATION      (~0UL)
#define CK_EFFECTIVELY_INFINITE         0UL
#define CK_INVALID_HANDLE       0UL
#define CKN_SURRENDER           0UL
#define CKN_OTP_CHANGED         1UL
#define CKF_TOKEN_PRESENT     0x00000001UL
#define CKF_REMOVABLE_DEVICE  0x00000002UL
#define CKF_HW_SLOT           0x00000004UL
#define CKF_RNG                     0x00000001UL
#define CKF_WRITE_PROTECTED         0x00000002UL
#define CKF_LOGIN_REQUIRED          0x00000004UL
#define CKF_USER_PIN_INITIALIZED    0x00000008UL
#define CKF_RESTORE_KEY_NOT_NEEDED  0x00000020UL
#define CKF_CLOCK_ON_TOKEN          0x00000040UL
#define CKF_PROTECTED_AUTHENTICATION_PATH 0x00000100UL
#define CKF_DUAL_CRYPTO_OPERATIONS  0x00000200UL
#define CKF_TOKEN_INITIALIZED       0x00000400UL
#define CKF_SECONDARY_AUTHENTICATION  0x00000800UL
#define CKF_USER_PIN_COUNT_LOW       0x00010000UL
#define CKF_USER_PIN_FINAL_TRY       0x00020000UL
#define CKF_USER_PIN_LOCKED          0x00040000UL
#define CKF_USER_PIN_TO_BE_CHANGED   0x00080000UL
#define CKF_SO_PIN_COUNT_LOW         0x00100000UL
#define CKF_SO_PIN_FINAL_TRY         0x00200000UL
#define CKF_SO_PIN_LOCKED            0x00400000UL
#define CKF_SO_PIN_TO_BE_CHANGED     0x00800000UL
#define CKF_ERROR_STATE              0x01000000UL
#define CKU_SO                  0UL
#define CKU_USER                1UL
#define CKU_CONTEXT_SPECIFIC    2UL
#define CKS_RO_PUBLIC_SESSION   0UL
#define CKS_RO_USER_FUNCTIONS   1UL
#define CKS_RW_PUBLIC_SESSION   2UL
#define CKS_RW_USER_FUNCTIONS   3UL
#define CKS_RW_SO_FUNCTIONS     4UL
#define CKF_RW_SESSION          0x00000002UL
#define CKF_SERIAL_SESSION      0x00000004UL
#define CKO_DATA              0x00000000UL
#define CKO_CERTIFICATE       0x00000001UL
#define CKO_PUBLIC_KEY        0x00000002UL
#define CKO_PRIVATE_KEY       0x00000003UL
#define CKO_SECRET_KEY        0x00000004UL
#define CKO_HW_FEATURE        0x00000005UL
#define CKO_DOMAIN_PARAMETERS 0x00000006UL
#define CKO_MECHANISM         0x00000007UL
#define CKO_OTP_KEY           0x00000008UL
#define CKO_PROFILE           0x00000009UL
#define CKO_VENDOR_DEFINED    0x80000000UL
#define CKP_INVALID_ID                0x00000000UL
#define CKP_BASELINE_PROVIDER         0x00000001UL
#define CKP_EXTENDED_PROVIDER         0x00000002UL
#define CKP_AUTHENTICATION_TOKEN      0x00000003UL
#define CKP_PUBLIC_CERTIFICATES_TOKEN 0x00000004UL
#define CKP_COMPLETE_PROVIDER         0x00000005UL /* 3.1 */
#define CKP_HKDF_TLS_TOKEN            0x00000006UL /* 3.1 */
#define CKP_VENDOR_DEFINED            0x80000000UL
#define CKH_MONOTONIC_COUNTER  0x00000001UL
#define CKH_CLOCK              0x00000002UL
#define CKH_USER_INTERFACE     0x00000003UL
#define CKH_VENDOR_DEFINED     0x80000000UL
#define CKK_RSA                 0x00000000UL
#define CKK_DSA                 0x00000001UL
#define CKK_DH                  0x00000002UL
#define CKK_ECDSA               0x00000003UL /* Deprecated */
#define CKK_EC                  0x00000003UL
#define CKK_X9_42_DH            0x00000004UL
#define CKK_KEA                 0x00000005UL
#define CKK_GENERIC_SECRET      0x00000010UL
#define CKK_RC2                 0x00000011UL
#define CKK_RC4                 0x00000012UL
#define CKK_DES                 0x00000013UL
#define CKK_DES2                0x00000014UL
#define CKK_DES3                0x00000015UL
#define CKK_CAST                0x00000016UL
#define CKK_CAST3               0x00000017UL
#define CKK_CAST5               0x00000018UL /* Deprecated */
#define CKK_CAST128             0x00000018UL
#define CKK_RC5                 0x00000019UL
#define CKK_IDEA                0x0000001AUL
#define CKK_SKIPJACK            0x0000001BUL
#define CKK_BATON               0x0000001CUL
#define CKK_JUNIPER             0x0000001DUL
#define CKK_CDMF                0x0000001EUL
#define CKK_AES                 0x0000001FUL
#define CKK_BLOWFISH            0x00000020UL
#define CKK_TWOFISH             0x00000021UL
#define CKK_SECURID             0x00000022UL
#define CKK_HOTP                0x00000023UL
#define CKK_ACTI                0x00000024UL
#define CKK_CAMELLIA            0x00000025UL
#define CKK_ARIA                0x00000026UL
#define CKK_MD5_HMAC            0x00000027UL
#define CKK_SHA_1_HMAC          0x00000028UL
#define CKK_RIPEMD128_HMAC      0x00000029UL
#define CKK_RIPEMD160_HMAC      0x0000002AUL
#define CKK_SHA256_HMAC         0x0000002BUL
#define CKK_SHA384_HMAC         0x0000002CUL
#define CKK_SHA512_HMAC         0x0000002DUL
#define CKK_SHA224_HMAC         0x0000002EUL
#define CKK_SEED                0x0000002FUL
#define CKK_GOSTR3410           0x00000030UL
#define CKK_GOSTR3411           0x00000031UL
#define CKK_GOST28147           0x00000032UL
#define CKK_CHACHA20            0x00000033UL
#define CKK_POLY1305            0x00000034UL
#define CKK_AES_XTS             0x00000035UL
#define CKK_SHA3_224_HMAC       0x00000036UL
#define CKK_SHA3_256_HMAC       0x00000037UL
#define CKK_SHA3_384_HMAC       0x00000038UL
#define CKK_SHA3_512_HMAC       0x00000039UL
#define CKK_BLAKE2B_160_HMAC    0x0000003aUL
#define CKK_BLAKE2B_256_HMAC    0x0000003bUL
#define CKK_BLAKE2B_384_HMAC    0x0000003cUL
#define CKK_BLAKE2B_512_HMAC    0x0000003dUL
#define CKK_SALSA20             0x0000003eUL
#define CKK_X2RATCHET           0x0000003fUL
#define CKK_EC_EDWARDS          0x00000040UL
#define CKK_EC_MONTGOMERY       0x00000041UL
#define CKK_HKDF                0x00000042UL
#define CKK_SHA512_224_HMAC     0x00000043UL
#define CKK_SHA512_256_HMAC     0x00000044UL
#define CKK_SHA512_T_HMAC       0x00000045UL
#define CKK_VENDOR_DEFINED      0x80000000UL
#define CK_CERTIFICATE_CATEGORY_UNSPECIFIED     0UL
#define CK_CERTIFICATE_CATEGORY_TOKEN_USER      1UL
#define CK_CERTIFICATE_CATEGORY_AUTHORITY       2UL
#define CK_CERTIFICATE_CATEGORY_OTHER_ENTITY    3UL
#define CK_SECURITY_DOMAIN_UNSPECIFIED     0UL
#define CK_SECURITY_DOMAIN_MANUFACTURER    1UL
#define CK_SECURITY_DOMAIN_OPERATOR        2UL
#define CK_SECURITY_DOMAIN_THIRD_PARTY     3UL
#define CKC_X_509               0x00000000UL
#define CKC_X_509_ATTR_CERT     0x00000001UL
#define CKC_WTLS                0x00000002UL
#define CKC_VENDOR_DEFINED      0x80000000UL
#define CKF_ARRAY_ATTRIBUTE     0x40000000UL
#define CK_OTP_FORMAT_DECIMAL           0UL
#define CK_OTP_FORMAT_HEXADECIMAL       1UL
#define CK_OTP_FORMAT_ALPHANUMERIC      2UL
#define CK_OTP_FORMAT_BINARY            3UL
#define CK_OTP_PARAM_IGNORED            0UL
#define CK_OTP_PARAM_OPTIONAL           1UL
#define CK_OTP_PARAM_MANDATORY          2UL
#define CKA_CLASS              0x00000000UL
#define CKA_TOKEN              0x00000001UL
#define CKA_PRIVATE            0x00000002UL
#define CKA_LABEL              0x00000003UL
#define CKA_UNIQUE_ID          0x00000004UL
#define CKA_APPLICATION        0x00000010UL
#define CKA_VALUE              0x00000011UL
#define CKA_OBJECT_ID          0x00000012UL
#define CKA_CERTIFICATE_TYPE   0x00000080UL
#define CKA_ISSUER             0x00000081UL
#define CKA_SERIAL_NUMBER      0x00000082UL
#define CKA_AC_ISSUER          0x00000083UL
#define CKA_OWNER              0x00000084UL
#define CKA_ATTR_TYPES         0x00000085UL
#define CKA_TRUSTED            0x00000086UL
#define CKA_CERTIFICATE_CATEGORY        0x00000087UL
#define CKA_JAVA_MIDP_SECURITY_DOMAIN   0x00000088UL
#define CKA_URL                         0x00000089UL
#define CKA_HASH_OF_SUBJECT_PUBLIC_KEY  0x0000008AUL
#define CKA_HASH_OF_ISSUER_PUBLIC_KEY   0x0000008BUL
#define CKA_NAME_HASH_ALGORITHM         0x0000008CUL
#define CKA_CHECK_VALUE                 0x00000090UL
#define CKA_KEY_TYPE           0x00000100UL
#define CKA_SUBJECT            0x00000101UL
#define CKA_ID                 0x00000102UL
#define CKA_SENSITIVE          0x00000103UL
#define CKA_ENCRYPT            0x00000104UL
#define CKA_DECRYPT            0x00000105UL
#define CKA_WRAP               0x00000106UL
#define CKA_UNWRAP             0x00000107UL
#define CKA_SIGN               0x00000108UL
#define CKA_SIGN_RECOVER       0x00000109UL
#define CKA_VERIFY             0x0000010AUL
#define CKA_VERIFY_RECOVER     0x0000010BUL
#define CKA_DERIVE             0x0000010CUL
#define CKA_START_DATE         0x00000110UL
#define CKA_END_DATE           0x00000111UL
#define CKA_MODULUS            0x00000120UL
#define CKA_MODULUS_BITS       0x00000121UL
#define CKA_PUBLIC_EXPONENT    0x00000122UL
#define CKA_PRIVATE_EXPONENT   0x00000123UL
#define CKA_PRIME_1            0x00000124UL
#define CKA_PRIME_2            0x00000125UL
#define CKA_EXPONENT_1         0x00000126UL
#define CKA_EXPONENT_2         0x00000127UL
#define CKA_COEFFICIENT        0x00000128UL
#define CKA_PUBLIC_KEY_INFO    0x00000129UL
#define CKA_PRIME              0x00000130UL
#define CKA_SUBPRIME           0x00000131UL
#define CKA_BASE               0x00000132UL
#define CKA_PRIME_BITS         0x00000133UL
#define CKA_SUBPRIME_BITS      0x00000134UL
#define CKA_SUB_PRIME_BITS     CKA_SUBPRIME_BITS
#define CKA_VALUE_BITS         0x00000160UL
#define CKA_VALUE_LEN          0x00000161UL
#define CKA_EXTRACTABLE        0x00000162UL
#define CKA_LOCAL              0x00000163UL
#define CKA_NEVER_EXTRACTABLE  0x00000164UL
#define CKA_ALWAYS_SENSITIVE   0x00000165UL
#define CKA_KEY_GEN_MECHANISM  0x00000166UL
#define CKA_MODIFIABLE         0x00000170UL
#define CKA_COPYABLE           0x00000171UL
#define CKA_DESTROYABLE        0x00000172UL
#define CKA_ECDSA_PARAMS       0x00000180UL /* Deprecated */
#define CKA_EC_PARAMS          0x00000180UL
#define CKA_EC_POINT           0x00000181UL
#define CKA_SECONDARY_AUTH     0x00000200UL /* Deprecated */
#define CKA_AUTH_PIN_FLAGS     0x00000201UL /* Deprecated */
#define CKA_ALWAYS_AUTHENTICATE  0x00000202UL
#define CKA_WRAP_WITH_TRUSTED    0x00000210UL
#define CKA_WRAP_TEMPLATE        (CKF_ARRAY_ATTRIBUTE|0x00000211UL)
#define CKA_UNWRAP_TEMPLATE      (CKF_ARRAY_ATTRIBUTE|0x00000212UL)
#define CKA_DERIVE_TEMPLATE      (CKF_ARRAY_ATTRIBUTE|0x00000213UL)
#define CKA_OTP_FORMAT                0x00000220UL
#define CKA_OTP_LENGTH                0x00000221UL
#define CKA_OTP_TIME_INTERVAL         0x00000222UL
#define CKA_OTP_USER_FRIENDLY_MODE    0x00000223UL
#define CKA_OTP_CHALLENGE_REQUIREMENT 0x00000224UL
#define CKA_OTP_TIME_REQUIREMENT      0x00000225UL
#define CKA_OTP_COUNTER_REQUIREMENT   0x00000226UL
#define CKA_OTP_PIN_REQUIREMENT       0x00000227UL
#define CKA_OTP_COUNTER               0x0000022EUL
#define CKA_OTP_TIME                  0x0000022FUL
#define CKA_OTP_USER_IDENTIFIER       0x0000022AUL
#define CKA_OTP_SERVICE_IDENTIFIER    0x0000022BUL
#define CKA_OTP_SERVICE_LOGO          0x0000022CUL
#define CKA_OTP_SERVICE_LOGO_TYPE     0x0000022DUL
#define CKA_GOSTR3410_PARAMS            0x00000250UL
#define CKA_GOSTR3411_PARAMS            0x00000251UL
#define CKA_GOST28147_PARAMS            0x00000252UL
#define CKA_HW_FEATURE_TYPE             0x00000300UL
#define CKA_RESET_ON_INIT               0x00000301UL
#define CKA_HAS_RESET                   0x00000302UL
#define CKA_PIXEL_X                     0x00000400UL
#define CKA_PIXEL_Y                     0x00000401UL
#define CKA_RESOLUTION                  0x00000402UL
#define CKA_CHAR_ROWS                   0x00000403UL
#define CKA_CHAR_COLUMNS                0x00000404UL
#define CKA_COLOR                       0x00000405UL
#define CKA_BITS_PER_PIXEL              0x00000406UL
#define CKA_CHAR_SETS                   0x00000480UL
#define CKA_ENCODING_METHODS            0x00000481UL
#define CKA_MIME_TYPES                  0x00000482UL
#define CKA_MECHANISM_TYPE              0x00000500UL
#define CKA_REQUIRED_CMS_ATTRIBUTES     0x00000501UL
#define CKA_DEFAULT_CMS_ATTRIBUTES      0x00000502UL
#define CKA_SUPPORTED_CMS_ATTRIBUTES    0x00000503UL
#define CKA_ALLOWED_MECHANISMS          (CKF_ARRAY_ATTRIBUTE|0x00000600UL)
#define CKA_PROFILE_ID                  0x00000601UL
#define CKA_X2RATCHET_BAG               0x00000602UL
#define CKA_X2RATCHET_BAGSIZE           0x00000603UL
#define CKA_X2RATCHET_BOBS1STMSG        0x00000604UL
#define CKA_X2RATCHET_CKR               0x00000605UL
#define CKA_X2RATCHET_CKS               0x00000606UL
#define CKA_X2RATCHET_DHP               0x00000607UL
#define CKA_X2RATCHET_DHR               0x00000608UL
#define CKA_X2RATCHET_DHS               0x00000609UL
#define CKA_X2RATCHET_HKR               0x0000060aUL
#define CKA_X2RATCHET_HKS               0x0000060bUL
#define CKA_X2RATCHET_ISALICE           0x0000060cUL
#define CKA_X2RATCHET_NHKR              0x0000060dUL
#define CKA_X2RATCHET_NHKS              0x0000060eUL
#define CKA_X2RATCHET_NR                0x0000060fUL
#define CKA_X2RATCHET_NS                0x00000610UL
#define CKA_X2RATCHET_PNS               0x00000611UL
#define CKA_X2RATCHET_RK                0x00000612UL
#define CKA_VENDOR_DEFINED              0x80000000UL
#define CKM_RSA_PKCS_KEY_PAIR_GEN      0x00000000UL
#define CKM_RSA_PKCS                   0x00000001UL
#define CKM_RSA_9796                   0x00000002UL
#define CKM_RSA_X_509                  0x00000003UL
#define CKM_MD2_RSA_PKCS               0x00000004UL
#define CKM_MD5_RSA_PKCS               0x00000005UL
#define CKM_SHA1_RSA_PKCS              0x00000006UL
#define CKM_RIPEMD128_RSA_PKCS         0x00000007UL
#define CKM_RIPEMD160_RSA_PKCS         0x00000008UL
#define CKM_RSA_PKCS_OAEP              0x00000009UL
#define CKM_RSA_X9_31_KEY_PAIR_GEN     0x0000000AUL
#define CKM_RSA_X9_31                  0x0000000BUL
#define CKM_SHA1_RSA_X9_31             0x0000000CUL
#define CKM_RSA_PKCS_PSS               0x0000000DUL
#define CKM_SHA1_RSA_PKCS_PSS          0x0000000EUL
#define CKM_DSA_KEY_PAIR_GEN           0x00000010UL
#define CKM_DSA                        0x00000011UL
#define CKM_DSA_SHA1                   0x00000012UL
#define CKM_DSA_SHA224                 0x00000013UL
#define CKM_DSA_SHA256                 0x00000014UL
#define CKM_DSA_SHA384                 0x00000015UL
#define CKM_DSA_SHA512                 0x00000016UL
#define CKM_DSA_SHA3_224               0x00000018UL
#define CKM_DSA_SHA3_256               0x00000019UL
#define CKM_DSA_SHA3_384               0x0000001AUL
#define CKM_DSA_SHA3_512               0x0000001BUL
#define CKM_DH_PKCS_KEY_PAIR_GEN       0x00000020UL
#define CKM_DH_PKCS_DERIVE             0x00000021UL
#define CKM_X9_42_DH_KEY_PAIR_GEN      0x00000030UL
#define CKM_X9_42_DH_DERIVE            0x00000031UL
#define CKM_X9_42_DH_HYBRID_DERIVE     0x00000032UL
#define CKM_X9_42_MQV_DERIVE           0x00000033UL
#define CKM_SHA256_RSA_PKCS            0x00000040UL
#define CKM_SHA384_RSA_PKCS            0x00000041UL
#define CKM_SHA512_RSA_PKCS            0x00000042UL
#define CKM_SHA256_RSA_PKCS_PSS        0x00000043UL
#define CKM_SHA384_RSA_PKCS_PSS        0x00000044UL
#define CKM_SHA512_RSA_PKCS_PSS        0x00000045UL
#define CKM_SHA224_RSA_PKCS            0x00000046UL
#define CKM_SHA224_RSA_PKCS_PSS        0x00000047UL
#define CKM_SHA512_224                 0x00000048UL
#define CKM_SHA512_224_HMAC            0x00000049UL
#define CKM_SHA512_224_HMAC_GENERAL    0x0000004AUL
#define CKM_SHA512_224_KEY_DERIVATION  0x0000004BUL
#define CKM_SHA512_256                 0x0000004CUL
#define CKM_SHA512_256_HMAC            0x0000004DUL
#define CKM_SHA512_256_HMAC_GENERAL    0x0000004EUL
#define CKM_SHA512_256_KEY_DERIVATION  0x0000004FUL
#define CKM_SHA512_T                   0x00000050UL
#define CKM_SHA512_T_HMAC              0x00000051UL
#define CKM_SHA512_T_HMAC_GENERAL      0x00000052UL
#define CKM_SHA512_T_KEY_DERIVATION    0x00000053UL
#define CKM_SHA3_256_RSA_PKCS          0x00000060UL
#define CKM_SHA3_384_RSA_PKCS          0x00000061UL
#define CKM_SHA3_512_RSA_PKCS          0x00000062UL
#define CKM_SHA3_256_RSA_PKCS_PSS      0x00000063UL
#define CKM_SHA3_384_RSA_PKCS_PSS      0x00000064UL
#define CKM_SHA3_512_RSA_PKCS_PSS      0x00000065UL
#define CKM_SHA3_224_RSA_PKCS          0x00000066UL
#define CKM_SHA3_224_RSA_PKCS_PSS      0x00000067UL
#define CKM_RC2_KEY_GEN                0x00000100UL
#define CKM_RC2_ECB                    0x00000101UL
#define CKM_RC2_CBC                    0x00000102UL
#define CKM_RC2_MAC                    0x00000103UL
#define CKM_RC2_MAC_GENERAL            0x00000104UL
#define CKM_RC2_CBC_PAD                0x00000105UL
#define CKM_RC4_KEY_GEN                0x00000110UL
#define CKM_RC4                        0x00000111UL
#define CKM_DES_KEY_GEN                0x00000120UL
#define CKM_DES_ECB                    0x00000121UL
#define CKM_DES_CBC                    0x00000122UL
#define CKM_DES_MAC                    0x00000123UL
#define CKM_DES_MAC_GENERAL            0x00000124UL
#define CKM_DES_CBC_PAD                0x00000125UL
#define CKM_DES2_KEY_GEN               0x00000130UL
#define CKM_DES3_KEY_GEN               0x00000131UL
#define CKM_DES3_ECB                   0x00000132UL
#define CKM_DES3_CBC                   0x00000133UL
#define CKM_DES3_MAC                   0x00000134UL
#define CKM_DES3_MAC_GENERAL           0x00000135UL
#define CKM_DES3_CBC_PAD               0x00000136UL
#define CKM_DES3_CMAC_GENERAL          0x00000137UL
#define CKM_DES3_CMAC                  0x00000138UL
#define CKM_CDMF_KEY_GEN               0x00000140UL
#define CKM_CDMF_ECB                   0x00000141UL
#define CKM_CDMF_CBC                   0x00000142UL
#define CKM_CDMF_MAC                   0x00000143UL
#define CKM_CDMF_MAC_GENERAL           0x00000144UL
#define CKM_CDMF_CBC_PAD               0x00000145UL
#define CKM_DES_OFB64                  0x00000150UL
#define CKM_DES_OFB8                   0x00000151UL
#define CKM_DES_CFB64                  0x00000152UL
#define CKM_DES_CFB8                   0x00000153UL
#define CKM_MD2                        0x00000200UL
#define CKM_MD2_HMAC                   0x00000201UL
#define CKM_MD2_HMAC_GENERAL           0x00000202UL
#define CKM_MD5                        0x00000210UL
#define CKM_MD5_HMAC                   0x00000211UL
#define CKM_MD5_HMAC_GENERAL           0x00000212UL
#define CKM_SHA_1                      0x00000220UL
#define CKM_SHA_1_HMAC                 0x00000221UL
#define CKM_SHA_1_HMAC_GENERAL         0x00000222UL
#define CKM_RIPEMD128                  0x00000230UL
#define CKM_RIPEMD128_HMAC             0x00000231UL
#define CKM_RIPEMD128_HMAC_GENERAL     0x00000232UL
#define CKM_RIPEMD160                  0x00000240UL
#define CKM_RIPEMD160_HMAC             0x00000241UL
#define CKM_RIPEMD160_HMAC_GENERAL     0x00000242UL
#define CKM_SHA256                     0x00000250UL
#define CKM_SHA256_HMAC                0x00000251UL
#define CKM_SHA256_HMAC_GENERAL        0x00000252UL
#define CKM_SHA224                     0x00000255UL
#define CKM_SHA224_HMAC                0x00000256UL
#define CKM_SHA224_HMAC_GENERAL        0x00000257UL
#define CKM_SHA384                     0x00000260UL
#define CKM_SHA384_HMAC                0x00000261UL
#define CKM_SHA384_HMAC_GENERAL        0x00000262UL
#define CKM_SHA512                     0x00000270UL
#define CKM_SHA512_HMAC                0x00000271UL
#define CKM_SHA512_HMAC_GENERAL        0x00000272UL
#define CKM_SECURID_KEY_GEN            0x00000280UL
#define CKM_SECURID                    0x00000282UL
#define CKM_HOTP_KEY_GEN               0x00000290UL
#define CKM_HOTP                       0x00000291UL
#define CKM_ACTI                       0x000002A0UL
#define CKM_ACTI_KEY_GEN               0x000002A1UL
#define CKM_SHA3_256                   0x000002B0UL
#define CKM_SHA3_256_HMAC              0x000002B1UL
#define CKM_SHA3_256_HMAC_GENERAL      0x000002B2UL
#define CKM_SHA3_256_KEY_GEN           0x000002B3UL
#define CKM_SHA3_224                   0x000002B5UL
#define CKM_SHA3_224_HMAC              0x000002B6UL
#define CKM_SHA3_224_HMAC_GENERAL      0x000002B7UL
#define CKM_SHA3_224_KEY_GEN           0x000002B8UL
#define CKM_SHA3_384                   0x000002C0UL
#define CKM_SHA3_384_HMAC              0x000002C1UL
#define CKM_SHA3_384_HMAC_GENERAL      0x000002C2UL
#define CKM_SHA3_384_KEY_GEN           0x000002C3UL
#define CKM_SHA3_512                   0x000002D0UL
#define CKM_SHA3_512_HMAC              0x000002D1UL
#define CKM_SHA3_512_HMAC_GENERAL      0x000002D2UL
#define CKM_SHA3_512_KEY_GEN           0x000002D3UL
#define CKM_CAST_KEY_GEN               0x00000300UL
#define CKM_CAST_ECB                   0x00000301UL
#define CKM_CAST_CBC                   0x00000302UL
#define CKM_CAST_MAC                   0x00000303UL
#define CKM_CAST_MAC_GENERAL           0x00000304UL
#define CKM_CAST_CBC_PAD               0x00000305UL
#define CKM_CAST3_KEY_GEN              0x00000310UL
#define CKM_CAST3_ECB                  0x00000311UL
#define CKM_CAST3_CBC                  0x00000312UL
#define CKM_CAST3_MAC                  0x00000313UL
#define CKM_CAST3_MAC_GENERAL          0x00000314UL
#define CKM_CAST3_CBC_PAD              0x00000315UL
#define CKM_CAST5_KEY_GEN              0x00000320UL
#define CKM_CAST128_KEY_GEN            0x00000320UL
#define CKM_CAST5_ECB                  0x00000321UL
#define CKM_CAST128_ECB                0x00000321UL
#define CKM_CAST5_CBC                  0x00000322UL /* Deprecated */
#define CKM_CAST128_CBC                0x00000322UL
#define CKM_CAST5_MAC                  0x00000323UL /* Deprecated */
#define CKM_CAST128_MAC                0x00000323UL
#define CKM_CAST5_MAC_GENERAL          0x00000324UL /* Deprecated */
#define CKM_CAST128_MAC_GENERAL        0x00000324UL
#define CKM_CAST5_CBC_PAD              0x00000325UL /* Deprecated */
#define CKM_CAST128_CBC_PAD            0x00000325UL
#define CKM_RC5_KEY_GEN                0x00000330UL
#define CKM_RC5_ECB                    0x00000331UL
#define CKM_RC5_CBC                    0x00000332UL
#define CKM_RC5_MAC                    0x00000333UL
#define CKM_RC5_MAC_GENERAL            0x00000334UL
#define CKM_RC5_CBC_PAD                0x00000335UL
#define CKM_IDEA_KEY_GEN               0x00000340UL
#define CKM_IDEA_ECB                   0x00000341UL
#define CKM_IDEA_CBC                   0x00000342UL
#define CKM_IDEA_MAC                   0x00000343UL
#define CKM_IDEA_MAC_GENERAL           0x00000344UL
#define CKM_IDEA_CBC_PAD               0x00000345UL
#define CKM_GENERIC_SECRET_KEY_GEN     0x00000350UL
#define CKM_CONCATENATE_BASE_AND_KEY   0x00000360UL
#define CKM_CONCATENATE_BASE_AND_DATA  0x00000362UL
#define CKM_CONCATENATE_DATA_AND_BASE  0x00000363UL
#define CKM_XOR_BASE_AND_DATA          0x00000364UL
#define CKM_EXTRACT_KEY_FROM_KEY       0x00000365UL
#define CKM_SSL3_PRE_MASTER_KEY_GEN    0x00000370UL
#define CKM_SSL3_MASTER_KEY_DERIVE     0x00000371UL
#define CKM_SSL3_KEY_AND_MAC_DERIVE    0x00000372UL
#define CKM_SSL3_MASTER_KEY_DERIVE_DH  0x00000373UL
#define CKM_TLS_PRE_MASTER_KEY_GEN     0x00000374UL
#define CKM_TLS_MASTER_KEY_DERIVE      0x00000375UL
#define CKM_TLS_KEY_AND_MAC_DERIVE     0x00000376UL
#define CKM_TLS_MASTER_KEY_DERIVE_DH   0x00000377UL
#define CKM_TLS_PRF                    0x00000378UL
#define CKM_SSL3_MD5_MAC               0x00000380UL
#define CKM_SSL3_SHA1_MAC              0x00000381UL
#define CKM_MD5_KEY_DERIVATION         0x00000390UL
#define CKM_MD2_KEY_DERIVATION         0x00000391UL
#define CKM_SHA1_KEY_DERIVATION        0x00000392UL
#define CKM_SHA256_KEY_DERIVATION      0x00000393UL
#define CKM_SHA384_KEY_DERIVATION      0x00000394UL
#define CKM_SHA512_KEY_DERIVATION      0x00000395UL
#define CKM_SHA224_KEY_DERIVATION      0x00000396UL
#define CKM_SHA3_256_KEY_DERIVE        0x00000397UL
#define CKM_SHA3_224_KEY_DERIVE        0x00000398UL
#define CKM_SHA3_384_KEY_DERIVE        0x00000399UL
#define CKM_SHA3_512_KEY_DERIVE        0x0000039AUL
#define CKM_SHAKE_128_KEY_DERIVE       0x0000039BUL
#define CKM_SHAKE_256_KEY_DERIVE       0x0000039CUL
#define CKM_SHA3_256_KEY_DERIVATION    CKM_SHA3_256_KEY_DERIVE /* 3.1 spelling */
#define CKM_SHA3_224_KEY_DERIVATION    CKM_SHA3_224_KEY_DERIVE /* 3.1 spelling */
#define CKM_SHA3_384_KEY_DERIVATION    CKM_SHA3_384_KEY_DERIVE /* 3.1 spelling */
#define CKM_SHA3_512_KEY_DERIVATION    CKM_SHA3_512_KEY_DERIVE /* 3.1 spelling */
#define CKM_SHAKE_128_KEY_DERIVATION   CKM_SHAKE_128_KEY_DERIVE /* 3.1 spelling */
#define CKM_SHAKE_256_KEY_DERIVATION   CKM_SHAKE_256_KEY_DERIVE /* 3.1 spelling */
#define CKM_PBE_MD2_DES_CBC            0x000003A0UL
#define CKM_PBE_MD5_DES_CBC            0x000003A1UL
#define CKM_PBE_MD5_CAST_CBC           0x000003A2UL
#define CKM_PBE_MD5_CAST3_CBC          0x000003A3UL
#define CKM_PBE_MD5_CAST5_CBC          0x000003A4UL /* Deprecated */
#define CKM_PBE_MD5_CAST128_CBC        0x000003A4UL
#define CKM_PBE_SHA1_CAST5_CBC         0x000003A5UL /* Deprecated */
#define CKM_PBE_SHA1_CAST128_CBC       0x000003A5UL
#define CKM_PBE_SHA1_RC4_128           0x000003A6UL
#define CKM_PBE_SHA1_RC4_40            0x000003A7UL
#define CKM_PBE_SHA1_DES3_EDE_CBC      0x000003A8UL
#define CKM_PBE_SHA1_DES2_EDE_CBC      0x000003A9UL
#define CKM_PBE_SHA1_RC2_128_CBC       0x000003AAUL
#define CKM_PBE_SHA1_RC2_40_CBC        0x000003ABUL
#define CKM_SP800_108_COUNTER_KDF      0x000003acUL
#define CKM_SP800_108_FEEDBACK_KDF     0x000003adUL
#define CKM_SP800_108_DOUBLE_PIPELINE_KDF 0x000003aeUL
#define CKM_PKCS5_PBKD2                0x000003B0UL
#define CKM_PBA_SHA1_WITH_SHA1_HMAC    0x000003C0UL
#define CKM_WTLS_PRE_MASTER_KEY_GEN         0x000003D0UL
#define CKM_WTLS_MASTER_KEY_DERIVE          0x000003D1UL
#define CKM_WTLS_MASTER_KEY_DERIVE_DH_ECC   0x000003D2UL
#define CKM_WTLS_PRF                        0x000003D3UL
#define CKM_WTLS_SERVER_KEY_AND_MAC_DERIVE  0x000003D4UL
#define CKM_WTLS_CLIENT_KEY_AND_MAC_DERIVE  0x000003D5UL
#define CKM_TLS10_MAC_SERVER                0x000003D6UL
#define CKM_TLS10_MAC_CLIENT                0x000003D7UL
#define CKM_TLS12_MAC                       0x000003D8UL
#define CKM_TLS12_KDF                       0x000003D9UL
#define CKM_TLS12_MASTER_KEY_DERIVE         0x000003E0UL
#define CKM_TLS12_KEY_AND_MAC_DERIVE        0x000003E1UL
#define CKM_TLS12_MASTER_KEY_DERIVE_DH      0x000003E2UL
#define CKM_TLS12_KEY_SAFE_DERIVE           0x000003E3UL
#define CKM_TLS_MAC                         0x000003E4UL
#define CKM_TLS_KDF                         0x000003E5UL
#define CKM_KEY_WRAP_LYNKS             0x00000400UL
#define CKM_KEY_WRAP_SET_OAEP          0x00000401UL
#define CKM_CMS_SIG                    0x00000500UL
#define CKM_KIP_DERIVE                 0x00000510UL
#define CKM_KIP_WRAP                   0x00000511UL
#define CKM_KIP_MAC                    0x00000512UL
#define CKM_CAMELLIA_KEY_GEN           0x00000550UL
#define CKM_CAMELLIA_ECB               0x00000551UL
#define CKM_CAMELLIA_CBC               0x00000552UL
#define CKM_CAMELLIA_MAC               0x00000553UL
#define CKM_CAMELLIA_MAC_GENERAL       0x00000554UL
#define CKM_CAMELLIA_CBC_PAD           0x00000555UL
#define CKM_CAMELLIA_ECB_ENCRYPT_DATA  0x00000556UL
#define CKM_CAMELLIA_CBC_ENCRYPT_DATA  0x00000557UL
#define CKM_CAMELLIA_CTR               0x00000558UL
#define CKM_ARIA_KEY_GEN               0x00000560UL
#define CKM_ARIA_ECB                   0x00000561UL
#define CKM_ARIA_CBC                   0x00000562UL
#define CKM_ARIA_MAC                   0x00000563UL
#define CKM_ARIA_MAC_GENERAL           0x00000564UL
#define CKM_ARIA_CBC_PAD               0x00000565UL
#define CKM_ARIA_ECB_ENCRYPT_DATA      0x00000566UL
#define CKM_ARIA_CBC_ENCRYPT_DATA      0x00000567UL
#define CKM_SEED_KEY_GEN               0x00000650UL
#define CKM_SEED_ECB                   0x00000651UL
#define CKM_SEED_CBC                   0x00000652UL
#define CKM_SEED_MAC                   0x00000653UL
#define CKM_SEED_MAC_GENERAL           0x00000654UL
#define CKM_SEED_CBC_PAD               0x00000655UL
#define CKM_SEED_ECB_ENCRYPT_DATA      0x00000656UL
#define CKM_SEED_CBC_ENCRYPT_DATA      0x00000657UL
#define CKM_SKIPJACK_KEY_GEN           0x00001000UL
#define CKM_SKIPJACK_ECB64             0x00001001UL
#define CKM_SKIPJACK_CBC64             0x00001002UL
#define CKM_SKIPJACK_OFB64             0x00001003UL
#define CKM_SKIPJACK_CFB64             0x00001004UL
#define CKM_SKIPJACK_CFB32             0x00001005UL
#define CKM_SKIPJACK_CFB16             0x00001006UL
#define CKM_SKIPJACK_CFB8              0x00001007UL
#define CKM_SKIPJACK_WRAP              0x00001008UL
#define CKM_SKIPJACK_PRIVATE_WRAP      0x00001009UL
#define CKM_SKIPJACK_RELAYX            0x0000100aUL
#define CKM_KEA_KEY_PAIR_GEN           0x00001010UL
#define CKM_KEA_KEY_DERIVE             0x00001011UL
#define CKM_KEA_DERIVE                 0x00001012UL
#define CKM_FORTEZZA_TIMESTAMP         0x00001020UL
#define CKM_BATON_KEY_GEN              0x00001030UL
#define CKM_BATON_ECB128               0x00001031UL
#define CKM_BATON_ECB96                0x00001032UL
#define CKM_BATON_CBC128               0x00001033UL
#define CKM_BATON_COUNTER              0x00001034UL
#define CKM_BATON_SHUFFLE              0x00001035UL
#define CKM_BATON_WRAP                 0x00001036UL
#define CKM_ECDSA_KEY_PAIR_GEN         0x00001040UL /* Deprecated */
#define CKM_EC_KEY_PAIR_GEN            0x00001040UL
#define CKM_ECDSA                      0x00001041UL
#define CKM_ECDSA_SHA1                 0x00001042UL
#define CKM_ECDSA_SHA224               0x00001043UL
#define CKM_ECDSA_SHA256               0x00001044UL
#define CKM_ECDSA_SHA384               0x00001045UL
#define CKM_ECDSA_SHA512               0x00001046UL
#define CKM_ECDSA_SHA3_224             0x00001047UL
#define CKM_ECDSA_SHA3_256             0x00001048UL
#define CKM_ECDSA_SHA3_384             0x00001049UL
#define CKM_ECDSA_SHA3_512             0x0000104aUL
#define CKM_ECDH1_DERIVE               0x00001050UL
#define CKM_ECDH1_COFACTOR_DERIVE      0x00001051UL
#define CKM_ECMQV_DERIVE               0x00001052UL
#define CKM_ECDH_AES_KEY_WRAP          0x00001053UL
#define CKM_RSA_AES_KEY_WRAP           0x00001054UL
#define CKM_EC_EDWARDS_KEY_PAIR_GEN    0x00001055UL
#define CKM_EC_MONTGOMERY_KEY_PAIR_GEN 0x00001056UL
#define CKM_EDDSA                      0x00001057UL
#define CKM_JUNIPER_KEY_GEN            0x00001060UL
#define CKM_JUNIPER_ECB128             0x00001061UL
#define CKM_JUNIPER_CBC128             0x00001062UL
#define CKM_JUNIPER_COUNTER            0x00001063UL
#define CKM_JUNIPER_SHUFFLE            0x00001064UL
#define CKM_JUNIPER_WRAP               0x00001065UL
#define CKM_FASTHASH                   0x00001070UL
#define CKM_AES_XTS                    0x00001071UL
#define CKM_AES_XTS_KEY_GEN            0x00001072UL
#define CKM_AES_KEY_GEN                0x00001080UL
#define CKM_AES_ECB                    0x00001081UL
#define CKM_AES_CBC                    0x00001082UL
#define CKM_AES_MAC                    0x00001083UL
#define CKM_AES_MAC_GENERAL            0x00001084UL
#define CKM_AES_CBC_PAD                0x00001085UL
#define CKM_AES_CTR                    0x00001086UL
#define CKM_AES_GCM                    0x00001087UL
#define CKM_AES_CCM                    0x00001088UL
#define CKM_AES_CTS                    0x00001089UL
#define CKM_AES_CMAC                   0x0000108AUL
#define CKM_AES_CMAC_GENERAL           0x0000108BUL
#define CKM_AES_XCBC_MAC               0x0000108CUL
#define CKM_AES_XCBC_MAC_96            0x0000108DUL
#define CKM_AES_GMAC                   0x0000108EUL
#define CKM_BLOWFISH_KEY_GEN           0x00001090UL
#define CKM_BLOWFISH_CBC               0x00001091UL
#define CKM_TWOFISH_KEY_GEN            0x00001092UL
#define CKM_TWOFISH_CBC                0x00001093UL
#define CKM_BLOWFISH_CBC_PAD           0x00001094UL
#define CKM_TWOFISH_CBC_PAD            0x00001095UL
#define CKM_DES_ECB_ENCRYPT_DATA       0x00001100UL
#define CKM_DES_CBC_ENCRYPT_DATA       0x00001101UL
#define CKM_DES3_ECB_ENCRYPT_DATA      0x00001102UL
#define CKM_DES3_CBC_ENCRYPT_DATA      0x00001103UL
#define CKM_AES_ECB_ENCRYPT_DATA       0x00001104UL
#define CKM_AES_CBC_ENCRYPT_DATA       0x00001105UL
#define CKM_GOSTR3410_KEY_PAIR_GEN     0x00001200UL
#define CKM_GOSTR3410                  0x00001201UL
#define CKM_GOSTR3410_WITH_GOSTR3411   0x00001202UL
#define CKM_GOSTR3410_KEY_WRAP         0x00001203UL
#define CKM_GOSTR3410_DERIVE           0x00001204UL
#define CKM_GOSTR3411                  0x00001210UL
#define CKM_GOSTR3411_HMAC             0x00001211UL
#define CKM_GOST28147_KEY_GEN          0x00001220UL
#define CKM_GOST28147_ECB              0x00001221UL
#define CKM_GOST28147                  0x00001222UL
#define CKM_GOST28147_MAC              0x00001223UL
#define CKM_GOST28147_KEY_WRAP         0x00001224UL
#define CKM_CHACHA20_KEY_GEN           0x00001225UL
#define CKM_CHACHA20                   0x00001226UL
#define CKM_POLY1305_KEY_GEN           0x00001227UL
#define CKM_POLY1305                   0x00001228UL
#define CKM_DSA_PARAMETER_GEN          0x00002000UL
#define CKM_DH_PKCS_PARAMETER_GEN      0x00002001UL
#define CKM_X9_42_DH_PARAMETER_GEN     0x00002002UL
#define CKM_DSA_PROBABLISTIC_PARAMETER_GEN    0x00002003UL
#define CKM_DSA_PROBABILISTIC_PARAMETER_GEN   CKM_DSA_PROBABLISTIC_PARAMETER_GEN /* 3.1 spelling */
#define CKM_DSA_SHAWE_TAYLOR_PARAMETER_GEN    0x00002004UL
#define CKM_DSA_FIPS_G_GEN             0x00002005UL
#define CKM_AES_OFB                    0x00002104UL
#define CKM_AES_CFB64                  0x00002105UL
#define CKM_AES_CFB8                   0x00002106UL
#define CKM_AES_CFB128                 0x00002107UL
#define CKM_AES_CFB1                   0x00002108UL
#define CKM_AES_KEY_WRAP               0x00002109UL
#define CKM_AES_KEY_WRAP_PAD           0x0000210AUL
#define CKM_AES_KEY_WRAP_KWP           0x0000210BUL
#define CKM_RSA_PKCS_TPM_1_1           0x00004001UL
#define CKM_RSA_PKCS_OAEP_TPM_1_1      0x00004002UL
#define CKM_SHA_1_KEY_GEN              0x00004003UL
#define CKM_SHA224_KEY_GEN             0x00004004UL
#define CKM_SHA256_KEY_GEN             0x00004005UL
#define CKM_SHA384_KEY_GEN             0x00004006UL
#define CKM_SHA512_KEY_GEN             0x00004007UL
#define CKM_SHA512_224_KEY_GEN         0x00004008UL
#define CKM_SHA512_256_KEY_GEN         0x00004009UL
#define CKM_SHA512_T_KEY_GEN           0x0000400aUL
#define CKM_NULL                       0x0000400bUL
#define CKM_BLAKE2B_160                0x0000400cUL
#define CKM_BLAKE2B_160_HMAC           0x0000400dUL
#define CKM_BLAKE2B_160_HMAC_GENERAL   0x0000400eUL
#define CKM_BLAKE2B_160_KEY_DERIVE     0x0000400fUL
#define CKM_BLAKE2B_160_KEY_GEN        0x00004010UL
#define CKM_BLAKE2B_256                0x00004011UL
#define CKM_BLAKE2B_256_HMAC           0x00004012UL
#define CKM_BLAKE2B_256_HMAC_GENERAL   0x00004013UL
#define CKM_BLAKE2B_256_KEY_DERIVE     0x00004014UL
#define CKM_BLAKE2B_256_KEY_GEN        0x00004015UL
#define CKM_BLAKE2B_384                0x00004016UL
#define CKM_BLAKE2B_384_HMAC           0x00004017UL
#define CKM_BLAKE2B_384_HMAC_GENERAL   0x00004018UL
#define CKM_BLAKE2B_384_KEY_DERIVE     0x00004019UL
#define CKM_BLAKE2B_384_KEY_GEN        0x0000401aUL
#define CKM_BLAKE2B_512                0x0000401bUL
#define CKM_BLAKE2B_512_HMAC           0x0000401cUL
#define CKM_BLAKE2B_512_HMAC_GENERAL   0x0000401dUL
#define CKM_BLAKE2B_512_KEY_DERIVE     0x0000401eUL
#define CKM_BLAKE2B_512_KEY_GEN        0x0000401fUL
#define CKM_SALSA20                    0x00004020UL
#define CKM_CHACHA20_POLY1305          0x00004021UL
#define CKM_SALSA20_POLY1305           0x00004022UL
#define CKM_X3DH_INITIALIZE            0x00004023UL
#define CKM_X3DH_RESPOND               0x00004024UL
#define CKM_X2RATCHET_INITIALIZE       0x00004025UL
#define CKM_X2RATCHET_RESPOND          0x00004026UL
#define CKM_X2RATCHET_ENCRYPT          0x00004027UL
#define CKM_X2RATCHET_DECRYPT          0x00004028UL
#define CKM_XEDDSA                     0x00004029UL
#define CKM_HKDF_DERIVE                0x0000402aUL
#define CKM_HKDF_DATA                  0x0000402bUL
#define CKM_HKDF_KEY_GEN               0x0000402cUL
#define CKM_SALSA20_KEY_GEN            0x0000402dUL
#define CKM_IKE2_PRF_PLUS_DERIVE       0x0000402eUL /* 3.1 */
#define CKM_IKE_PRF_DERIVE             0x0000402fUL /* 3.1 */
#define CKM_IKE1_PRF_DERIVE            0x00004030UL /* 3.1 */
#define CKM_IKE1_EXTENDED_DERIVE       0x00004031UL /* 3.1 */
#define CKM_VENDOR_DEFINED             0x80000000UL
#define CKF_HW                 0x00000001UL
#define CKF_MESSAGE_ENCRYPT    0x00000002UL
#define CKF_MESSAGE_DECRYPT    0x00000004UL
#define CKF_MESSAGE_SIGN       0x00000008UL
#define CKF_MESSAGE_VERIFY     0x00000010UL
#define CKF_MULTI_MESSAGE      0x00000020UL
#define CKF_MULTI_MESSGE       CKF_MULTI_MESSAGE
#define CKF_FIND_OBJECTS       0x00000040UL
#define CKF_ENCRYPT            0x00000100UL
#define CKF_DECRYPT            0x00000200UL
#define CKF_DIGEST             0x00000400UL
#define CKF_SIGN               0x00000800UL
#define CKF_SIGN_RECOVER       0x00001000UL
#define CKF_VERIFY             0x00002000UL
#define CKF_VERIFY_RECOVER     0x00004000UL
#define CKF_GENERATE           0x00008000UL
#define CKF_GENERATE_KEY_PAIR  0x00010000UL
#define CKF_WRAP               0x00020000UL
#define CKF_UNWRAP             0x00040000UL
#define CKF_DERIVE             0x00080000UL
#define CKF_EC_F_P             0x00100000UL
#define CKF_EC_F_2M            0x00200000UL
#define CKF_EC_ECPARAMETERS    0x00400000UL
#define CKF_EC_OID             0x00800000UL
#define CKF_EC_NAMEDCURVE      CKF_EC_OID   /* deprecated since PKCS#11 3.00 */
#define CKF_EC_UNCOMPRESS      0x01000000UL
#define CKF_EC_COMPRESS        0x02000000UL
#define CKF_EC_CURVENAME       0x04000000UL
#define CKF_EXTENSION          0x80000000UL
#define CKR_OK                                0x00000000UL
#define CKR_CANCEL                            0x00000001UL
#define CKR_HOST_MEMORY                       0x00000002UL
#define CKR_SLOT_ID_INVALID                   0x00000003UL
#define CKR_GENERAL_ERROR                     0x00000005UL
#define CKR_FUNCTION_FAILED                   0x00000006UL
#define CKR_ARGUMENTS_BAD                     0x00000007UL
#define CKR_NO_EVENT                          0x00000008UL
#define CKR_NEED_TO_CREATE_THREADS            0x00000009UL
#define CKR_CANT_LOCK                         0x0000000AUL
#define CKR_ATTRIBUTE_READ_ONLY               0x00000010UL
#define CKR_ATTRIBUTE_SENSITIVE               0x00000011UL
#define CKR_ATTRIBUTE_TYPE_INVALID            0x00000012UL
#define CKR_ATTRIBUTE_VALUE_INVALID           0x00000013UL
#define CKR_ACTION_PROHIBITED                 0x0000001BUL
#define CKR_DATA_INVALID                      0x00000020UL
#define CKR_DATA_LEN_RANGE                    0x00000021UL
#define CKR_DEVICE_ERROR                      0x00000030UL
#define CKR_DEVICE_MEMORY                     0x00000031UL
#define CKR_DEVICE_REMOVED                    0x00000032UL
#define CKR_ENCRYPTED_DATA_INVALID            0x00000040UL
#define CKR_ENCRYPTED_DATA_LEN_RANGE          0x00000041UL
#define CKR_AEAD_DECRYPT_FAILED               0x00000042UL
#define CKR_FUNCTION_CANCELED                 0x00000050UL
#define CKR_FUNCTION_NOT_PARALLEL             0x00000051UL
#define CKR_FUNCTION_NOT_SUPPORTED            0x00000054UL
#define CKR_KEY_HANDLE_INVALID                0x00000060UL
#define CKR_KEY_SIZE_RANGE                    0x00000062UL
#define CKR_KEY_TYPE_INCONSISTENT             0x00000063UL
#define CKR_KEY_NOT_NEEDED                    0x00000064UL
#define CKR_KEY_CHANGED                       0x00000065UL
#define CKR_KEY_NEEDED                        0x00000066UL
#define CKR_KEY_INDIGESTIBLE                  0x00000067UL
#define CKR_KEY_FUNCTION_NOT_PERMITTED        0x00000068UL
#define CKR_KEY_NOT_WRAPPABLE                 0x00000069UL
#define CKR_KEY_UNEXTRACTABLE                 0x0000006AUL
#define CKR_MECHANISM_INVALID                 0x00000070UL
#define CKR_MECHANISM_PARAM_INVALID           0x00000071UL
#define CKR_OBJECT_HANDLE_INVALID             0x00000082UL
#define CKR_OPERATION_ACTIVE                  0x00000090UL
#define CKR_OPERATION_NOT_INITIALIZED         0x00000091UL
#define CKR_PIN_INCORRECT                     0x000000A0UL
#define CKR_PIN_INVALID                       0x000000A1UL
#define CKR_PIN_LEN_RANGE                     0x000000A2UL
#define CKR_PIN_EXPIRED                       0x000000A3UL
#define CKR_PIN_LOCKED                        0x000000A4UL
#define CKR_SESSION_CLOSED                    0x000000B0UL
#define CKR_SESSION_COUNT                     0x000000B1UL
#define CKR_SESSION_HANDLE_INVALID            0x000000B3UL
#define CKR_SESSION_PARALLEL_NOT_SUPPORTED    0x000000B4UL
#define CKR_SESSION_READ_ONLY                 0x000000B5UL
#define CKR_SESSION_EXISTS                    0x000000B6UL
#define CKR_SESSION_READ_ONLY_EXISTS          0x000000B7UL
#define CKR_SESSION_READ_WRITE_SO_EXISTS      0x000000B8UL
#define CKR_SIGNATURE_INVALID                 0x000000C0UL
#define CKR_SIGNATURE_LEN_RANGE               0x000000C1UL
#define CKR_TEMPLATE_INCOMPLETE               0x000000D0UL
#define CKR_TEMPLATE_INCONSISTENT             0x000000D1UL
#define CKR_TOKEN_NOT_PRESENT                 0x000000E0UL
#define CKR_TOKEN_NOT_RECOGNIZED              0x000000E1UL
#define CKR_TOKEN_WRITE_PROTECTED             0x000000E2UL
#define CKR_UNWRAPPING_KEY_HANDLE_INVALID     0x000000F0UL
#define CKR_UNWRAPPING_KEY_SIZE_RANGE         0x000000F1UL
#define CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT  0x000000F2UL
#define CKR_USER_ALREADY_LOGGED_IN            0x00000100UL
#define CKR_USER_NOT_LOGGED_IN                0x00000101UL
#define CKR_USER_PIN_NOT_INITIALIZED          0x00000102UL
#define CKR_USER_TYPE_INVALID                 0x00000103UL
#define CKR_USER_ANOTHER_ALREADY_LOGGED_IN    0x00000104UL
#define CKR_USER_TOO_MANY_TYPES               0x00000105UL
#define CKR_WRAPPED_KEY_INVALID               0x00000110UL
#define CKR_WRAPPED_KEY_LEN_RANGE             0x00000112UL
#define CKR_WRAPPING_KEY_HANDLE_INVALID       0x00000113UL
#define CKR_WRAPPING_KEY_SIZE_RANGE           0x00000114UL
#define CKR_WRAPPING_KEY_TYPE_INCONSISTENT    0x00000115UL
#define CKR_RANDOM_SEED_NOT_SUPPORTED         0x00000120UL
#define CKR_RANDOM_NO_RNG                     0x00000121UL
#define CKR_DOMAIN_PARAMS_INVALID             0x00000130UL
#define CKR_CURVE_NOT_SUPPORTED               0x00000140UL
#define CKR_BUFFER_TOO_SMALL                  0x00000150UL
#define CKR_SAVED_STATE_INVALID               0x00000160UL
#define CKR_INFORMATION_SENSITIVE             0x00000170UL
#define CKR_STATE_UNSAVEABLE                  0x00000180UL
#define CKR_CRYPTOKI_NOT_INITIALIZED          0x00000190UL
#define CKR_CRYPTOKI_ALREADY_INITIALIZED      0x00000191UL
#define CKR_MUTEX_BAD                         0x000001A0UL
#define CKR_MUTEX_NOT_LOCKED                  0x000001A1UL
#define CKR_NEW_PIN_MODE                      0x000001B0UL
#define CKR_NEXT_OTP                          0x000001B1UL
#define CKR_EXCEEDED_MAX_ITERATIONS           0x000001B5UL
#define CKR_FIPS_SELF_TEST_FAILED             0x000001B6UL
#define CKR_LIBRARY_LOAD_FAILED               0x000001B7UL
#define CKR_PIN_TOO_WEAK                      0x000001B8UL
#define CKR_PUBLIC_KEY_INVALID                0x000001B9UL
#define CKR_FUNCTION_REJECTED                 0x00000200UL
#define CKR_TOKEN_RESOURCE_EXCEEDED           0x00000201UL
#define CKR_OPERATION_CANCEL_FAILED           0x00000202UL
#define CKR_VENDOR_DEFINED                    0x80000000UL
#define CKF_END_OF_MESSAGE   0x00000001UL
#define CKF_INTERFACE_FORK_SAFE  0x00000001UL
#define CKF_LIBRARY_CANT_CREATE_OS_THREADS 0x00000001UL
#define CKF_OS_LOCKING_OK                  0x00000002UL
#define CKF_DONT_BLOCK     1
#define CKG_MGF1_SHA1         0x00000001UL
#define CKG_MGF1_SHA256       0x00000002UL
#define CKG_MGF1_SHA384       0x00000003UL
#define CKG_MGF1_SHA512       0x00000004UL
#define CKG_MGF1_SHA224       0x00000005UL
#define CKG_MGF1_SHA3_224     0x00000006UL
#define CKG_MGF1_SHA3_256     0x00000007UL
#define CKG_MGF1_SHA3_384     0x00000008UL
#define CKG_MGF1_SHA3_512     0x00000009UL
#define CKZ_DATA_SPECIFIED    0x00000001UL
#define CKD_NULL                 0x00000001UL
#define CKD_SHA1_KDF             0x00000002UL
#define CKD_SHA1_KDF_ASN1        0x00000003UL
#define CKD_SHA1_KDF_CONCATENATE 0x00000004UL
#define CKD_SHA224_KDF           0x00000005UL
#define CKD_SHA256_KDF           0x00000006UL
#define CKD_SHA384_KDF           0x00000007UL
#define CKD_SHA512_KDF           0x00000008UL
#define CKD_CPDIVERSIFY_KDF      0x00000009UL
#define CKD_SHA3_224_KDF         0x0000000AUL
#define CKD_SHA3_256_KDF         0x0000000BUL
#define CKD_SHA3_384_KDF         0x0000000CUL
#define CKD_SHA3_512_KDF         0x0000000DUL
#define CKD_SHA1_KDF_SP800       0x0000000EUL
#define CKD_SHA224_KDF_SP800     0x0000000FUL
#define CKD_SHA256_KDF_SP800     0x00000010UL
#define CKD_SHA384_KDF_SP800     0x00000011UL
#define CKD_SHA512_KDF_SP800     0x00000012UL
#define CKD_SHA3_224_KDF_SP800   0x00000013UL
#define CKD_SHA3_256_KDF_SP800   0x00000014UL
#define CKD_SHA3_384_KDF_SP800   0x00000015UL
#define CKD_SHA3_512_KDF_SP800   0x00000016UL
#define CKD_BLAKE2B_160_KDF      0x00000017UL
#define CKD_BLAKE2B_256_KDF      0x00000018UL
#define CKD_BLAKE2B_384_KDF      0x00000019UL
#define CKD_BLAKE2B_512_KDF      0x0000001aUL
#define CKP_PKCS5_PBKD2_HMAC_SHA1          0x00000001UL
#define CKP_PKCS5_PBKD2_HMAC_GOSTR3411     0x00000002UL
#define CKP_PKCS5_PBKD2_HMAC_SHA224        0x00000003UL
#define CKP_PKCS5_PBKD2_HMAC_SHA256        0x00000004UL
#define CKP_PKCS5_PBKD2_HMAC_SHA384        0x00000005UL
#define CKP_PKCS5_PBKD2_HMAC_SHA512        0x00000006UL
#define CKP_PKCS5_PBKD2_HMAC_SHA512_224    0x00000007UL
#define CKP_PKCS5_PBKD2_HMAC_SHA512_256    0x00000008UL
#define CKZ_SALT_SPECIFIED        0x00000001UL
#define CK_OTP_VALUE          0UL
#define CK_OTP_PIN            1UL
#define CK_OTP_CHALLENGE      2UL
#define CK_OTP_TIME           3UL
#define CK_OTP_COUNTER        4UL
#define CK_OTP_FLAGS          5UL
#define CK_OTP_OUTPUT_LENGTH  6UL
#define CK_OTP_OUTPUT_FORMAT  7UL
#define CKF_NEXT_OTP          0x00000001UL
#define CKF_EXCLUDE_TIME      0x00000002UL
#define CKF_EXCLUDE_COUNTER   0x00000004UL
#define CKF_EXCLUDE_CHALLENGE 0x00000008UL
#define CKF_EXCLUDE_PIN       0x00000010UL
#define CKF_USER_FRIENDLY_OTP 0x00000020UL
#define CKG_NO_GENERATE      0x00000000UL
#define CKG_GENERATE         0x00000001UL
#define CKG_GENERATE_COUNTER 0x00000002UL
#define CKG_GENERATE_RANDOM  0x00000003UL
#define CK_SP800_108_ITERATION_VARIABLE 0x00000001UL
#define CK_SP800_108_OPTIONAL_COUNTER   0x00000002UL
#define CK_SP800_108_DKM_LENGTH         0x00000003UL
#define CK_SP800_108_BYTE_ARRAY         0x00000004UL
#define CK_SP800_108_COUNTER            CK_SP800_108_OPTIONAL_COUNTER
#define CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS     0x00000001UL
#define CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS 0x00000002UL
#define CKF_HKDF_SALT_NULL   0x00000001UL
#define CKF_HKDF_SALT_DATA   0x00000002UL
#define CKF_HKDF_SALT_KEY    0x00000004UL
# ---- PKCS#11 3.2 (oasis-tcs/pkcs11 working/headers/pkcs11t.h, the 3.2 header): what 3.0 lacks
#define CKF_SEED_RANDOM_REQUIRED     0x02000000UL /* 3.2 */
#define CKF_ASYNC_SESSION_SUPPORTED  0x04000000UL /* 3.2 */
#define CKF_ASYNC_SESSION            0x00000008UL /* 3.2 */
#define CKO_VALIDATION        0x0000000AUL /* 3.2 */
#define CKO_TRUST             0x0000000BUL /* 3.2 */
#define CKK_HSS                 0x00000046UL /* 3.2 */
#define CKK_XMSS                0x00000047UL /* 3.2 */
#define CKK_XMSSMT              0x00000048UL /* 3.2 */
#define CKK_ML_KEM              0x00000049UL /* 3.2 */
#define CKK_ML_DSA              0x0000004AUL /* 3.2 */
#define CKK_SLH_DSA             0x0000004BUL /* 3.2 */
#define CKA_HSS_LEVELS                  0x00000617UL /* 3.2 */
#define CKA_HSS_LMS_TYPE                0x00000618UL /* 3.2 */
#define CKA_HSS_LMOTS_TYPE              0x00000619UL /* 3.2 */
#define CKA_HSS_LMS_TYPES               0x0000061AUL /* 3.2 */
#define CKA_HSS_LMOTS_TYPES             0x0000061BUL /* 3.2 */
#define CKA_KEYS_REMAINING              0x0000061CUL /* 3.2 */
#define CKA_HSS_KEYS_REMAINING          CKA_KEYS_REMAINING /* 3.2, Deprecated */
#define CKA_PARAMETER_SET               0x0000061DUL /* 3.2 */
#define CKA_OBJECT_VALIDATION_FLAGS     0x0000061EUL /* 3.2 */
#define CKA_VALIDATION_TYPE             0x0000061FUL /* 3.2 */
#define CKA_VALIDATION_VERSION          0x00000620UL /* 3.2 */
#define CKA_VALIDATION_LEVEL            0x00000621UL /* 3.2 */
#define CKA_VALIDATION_MODULE_ID        0x00000622UL /* 3.2 */
#define CKA_VALIDATION_FLAG             0x00000623UL /* 3.2 */
#define CKA_VALIDATION_AUTHORITY_TYPE   0x00000624UL /* 3.2 */
#define CKA_VALIDATION_COUNTRY          0x00000625UL /* 3.2 */
#define CKA_VALIDATION_CERTIFICATE_IDENTIFIER 0x00000626UL /* 3.2 */
#define CKA_VALIDATION_CERTIFICATE_URI  0x00000627UL /* 3.2 */
#define CKA_VALIDATION_VENDOR_URI       0x00000628UL /* 3.2 */
#define CKA_VALIDATION_PROFILE          0x00000629UL /* 3.2 */
#define CKA_ENCAPSULATE_TEMPLATE        (CKF_ARRAY_ATTRIBUTE|0x0000062AUL) /* 3.2 */
#define CKA_DECAPSULATE_TEMPLATE        (CKF_ARRAY_ATTRIBUTE|0x0000062BUL) /* 3.2 */
#define CKA_TRUST_SERVER_AUTH           0x0000062CUL /* 3.2 */
#define CKA_TRUST_CLIENT_AUTH           0x0000062DUL /* 3.2 */
#define CKA_TRUST_CODE_SIGNING          0x0000062EUL /* 3.2 */
#define CKA_TRUST_EMAIL_PROTECTION      0x0000062FUL /* 3.2 */
#define CKA_TRUST_IPSEC_IKE             0x00000630UL /* 3.2 */
#define CKA_TRUST_TIME_STAMPING         0x00000631UL /* 3.2 */
#define CKA_TRUST_OCSP_SIGNING          0x00000632UL /* 3.2 */
#define CKA_ENCAPSULATE                 0x00000633UL /* 3.2 */
#define CKA_DECAPSULATE                 0x00000634UL /* 3.2 */
#define CKA_HASH_OF_CERTIFICATE         0x00000635UL /* 3.2 */
#define CKA_PUBLIC_CRC64_VALUE          0x00000636UL /* 3.2 */
#define CKA_SEED                        0x00000637UL /* 3.2 */
#define CKM_ML_KEM_KEY_PAIR_GEN        0x0000000FUL /* 3.2 */
#define CKM_ML_KEM                     0x00000017UL /* 3.2 */
#define CKM_ML_DSA_KEY_PAIR_GEN        0x0000001CUL /* 3.2 */
#define CKM_ML_DSA                     0x0000001DUL /* 3.2 */
#define CKM_HASH_ML_DSA                0x0000001FUL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA224         0x00000023UL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA256         0x00000024UL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA384         0x00000025UL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA512         0x00000026UL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA3_224       0x00000027UL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA3_256       0x00000028UL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA3_384       0x00000029UL /* 3.2 */
#define CKM_HASH_ML_DSA_SHA3_512       0x0000002AUL /* 3.2 */
#define CKM_HASH_ML_DSA_SHAKE128       0x0000002BUL /* 3.2 */
#define CKM_HASH_ML_DSA_SHAKE256       0x0000002CUL /* 3.2 */
#define CKM_SLH_DSA_KEY_PAIR_GEN       0x0000002DUL /* 3.2 */
#define CKM_SLH_DSA                    0x0000002EUL /* 3.2 */
#define CKM_HASH_SLH_DSA               0x00000034UL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA224        0x00000036UL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA256        0x00000037UL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA384        0x00000038UL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA512        0x00000039UL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA3_224      0x0000003AUL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA3_256      0x0000003BUL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA3_384      0x0000003CUL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHA3_512      0x0000003DUL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHAKE128      0x0000003EUL /* 3.2 */
#define CKM_HASH_SLH_DSA_SHAKE256      0x0000003FUL /* 3.2 */
#define CKM_TLS12_EXTENDED_MASTER_KEY_DERIVE    0x00000056UL /* 3.2 */
#define CKM_TLS12_EXTENDED_MASTER_KEY_DERIVE_DH 0x00000057UL /* 3.2 */
#define CKM_EC_KEY_PAIR_GEN_W_EXTRA_BITS 0x0000140BUL /* 3.2 */
#define CKM_AES_KEY_WRAP_PKCS7         0x0000210CUL /* 3.2 */
#define CKM_HSS_KEY_PAIR_GEN           0x00004032UL /* 3.2 */
#define CKM_HSS                        0x00004033UL /* 3.2 */
#define CKM_XMSS_KEY_PAIR_GEN          0x00004034UL /* 3.2 */
#define CKM_XMSSMT_KEY_PAIR_GEN        0x00004035UL /* 3.2 */
#define CKM_XMSS                       0x00004036UL /* 3.2 */
#define CKM_XMSSMT                     0x00004037UL /* 3.2 */
#define CKM_ECDH_X_AES_KEY_WRAP        0x00004038UL /* 3.2 */
#define CKM_ECDH_COF_AES_KEY_WRAP      0x00004039UL /* 3.2 */
#define CKM_PUB_KEY_FROM_PRIV_KEY      0x0000403AUL /* 3.2 */
#define CKM_ML_DSA_EXTERNAL_MU_GEN     0x0000403BUL /* 3.2 */
#define CKM_ML_DSA_EXTERNAL_MU         0x0000403CUL /* 3.2 */
#define CKF_ENCAPSULATE        0x10000000UL /* 3.2 */
#define CKF_DECAPSULATE        0x20000000UL /* 3.2 */
#define CKR_KEY_EXHAUSTED                     0x00000203UL /* 3.2 */
#define CKR_PENDING                           0x00000204UL /* 3.2 */
#define CKR_SESSION_ASYNC_NOT_SUPPORTED       0x00000205UL /* 3.2 */
#define CKR_SEED_RANDOM_REQUIRED              0x00000206UL /* 3.2 */
#define CKR_OPERATION_NOT_VALIDATED           0x00000207UL /* 3.2 */
#define CKR_TOKEN_NOT_INITIALIZED             0x00000208UL /* 3.2 */
#define CKR_PARAMETER_SET_NOT_SUPPORTED       0x00000209UL /* 3.2 */
#define CKG_GENERATE_COUNTER_XOR 0x00000004UL /* 3.2 */
#define CK_SP800_108_KEY_HANDLE         0x00000005UL /* 3.2 */
#define CKS_LAST_VALIDATION_OK 0x00000001UL /* 3.2 */
#define CKV_AUTHORITY_TYPE_UNSPECIFIED     0x00000000UL /* 3.2 */
#define CKV_AUTHORITY_TYPE_NIST_CMVP       0x00000001UL /* 3.2 */
#define CKV_AUTHORITY_TYPE_COMMON_CRITERIA 0x00000002UL /* 3.2 */
#define CKV_TYPE_UNSPECIFIED 0x00000000UL /* 3.2 */
#define CKV_TYPE_SOFTWARE    0x00000001UL /* 3.2 */
#define CKV_TYPE_HARDWARE    0x00000002UL /* 3.2 */
#define CKV_TYPE_FIRMWARE    0x00000003UL /* 3.2 */
#define CKV_TYPE_HYBRID      0x00000004UL /* 3.2 */
#define CKH_HEDGE_PREFERRED        0x00000000UL /* 3.2 */
#define CKH_HEDGE_REQUIRED         0x00000001UL /* 3.2 */
#define CKH_DETERMINISTIC_REQUIRED 0x00000002UL /* 3.2 */
#define CKP_ML_DSA_44          0x00000001UL /* 3.2 */
#define CKP_ML_DSA_65          0x00000002UL /* 3.2 */
#define CKP_ML_DSA_87          0x00000003UL /* 3.2 */
#define CKP_SLH_DSA_SHA2_128S  0x00000001UL /* 3.2 */
#define CKP_SLH_DSA_SHAKE_128S 0x00000002UL /* 3.2 */
#define CKP_SLH_DSA_SHA2_128F  0x00000003UL /* 3.2 */
#define CKP_SLH_DSA_SHAKE_128F 0x00000004UL /* 3.2 */
#define CKP_SLH_DSA_SHA2_192S  0x00000005UL /* 3.2 */
#define CKP_SLH_DSA_SHAKE_192S 0x00000006UL /* 3.2 */
#define CKP_SLH_DSA_SHA2_192F  0x00000007UL /* 3.2 */
#define CKP_SLH_DSA_SHAKE_192F 0x00000008UL /* 3.2 */
#define CKP_SLH_DSA_SHA2_256S  0x00000009UL /* 3.2 */
#define CKP_SLH_DSA_SHAKE_256S 0x0000000AUL /* 3.2 */
#define CKP_SLH_DSA_SHA2_256F  0x0000000BUL /* 3.2 */
#define CKP_SLH_DSA_SHAKE_256F 0x0000000CUL /* 3.2 */
#define CKP_ML_KEM_512         0x00000001UL /* 3.2 */
#define CKP_ML_KEM_768         0x00000002UL /* 3.2 */
#define CKP_ML_KEM_1024        0x00000003UL /* 3.2 */
#define CKT_TRUST_UNKNOWN           0x00000000UL /* 3.2 */
#define CKT_TRUSTED                 0x00000001UL /* 3.2 */
#define CKT_TRUST_ANCHOR            0x00000002UL /* 3.2 */
#define CKT_NOT_TRUSTED             0x00000003UL /* 3.2 */
#define CKT_TRUST_MUST_VERIFY_TRUST 0x00000004UL /* 3.2 */
"""

# Families that become IntEnum classes (prefix -> docstring).
ENUM_FAMILIES: dict[str, str] = {
    "CKR": "Return values (CK_RV), PKCS#11 3.0 base spec section 5.1.",
    "CKA": "Attribute types (CK_ATTRIBUTE_TYPE), base spec section 4.",
    "CKM": "Mechanism types (CK_MECHANISM_TYPE), current-mechanisms spec.",
    "CKO": "Object classes (CK_OBJECT_CLASS), base spec section 4.",
    "CKK": "Key types (CK_KEY_TYPE), base spec section 3.2 and mechanism spec.",
    "CKC": "Certificate types (CK_CERTIFICATE_TYPE), base spec section 4.6.",
    "CKU": "User types (CK_USER_TYPE), base spec section 3.4.",
    "CKS": "Session states (CK_STATE), base spec section 3.4 / 5.6.",
}

# Names that carry a family's prefix without being one of its values: 3.2 reuses CKS_ for
# the CK_SESSION_VALIDATION_FLAGS_TYPE of C_GetSessionValidationFlags (its 1 is not the
# session state CKS_RO_USER_FUNCTIONS). They stay plain ints.
NOT_IN_FAMILY = frozenset({"CKS_LAST_VALIDATION_OK"})

# Where the header gives two names for a value without marking either deprecated, the
# canonical (repr / log) name is chosen here.
PREFERRED: dict[str, str] = {
    # "Note that CAST128 and CAST5 are the same algorithm"; CAST5 names are deprecated.
    "CKM_CAST5_KEY_GEN": "CKM_CAST128_KEY_GEN",
    "CKM_CAST5_ECB": "CKM_CAST128_ECB",
}

# ---------------------------------------------------------------------------------------
# Attribute kinds: how each CKA_* value is laid out in C.  Taken from the attribute tables
# of the base spec (section 4: common/storage/data/certificate/key/public/private/secret/
# domain-parameter/mechanism/hw-feature/profile objects) and of the mechanism spec (RSA,
# DSA, EC, DH, X9.42, GOST, OTP, Double Ratchet key attributes).
#   BOOL       CK_BBOOL
#   ULONG      CK_ULONG and its typedefs (CK_OBJECT_CLASS, CK_KEY_TYPE, CK_CERTIFICATE_TYPE,
#              CK_MECHANISM_TYPE, CK_HW_FEATURE_TYPE, CK_PROFILE_ID, CK_FLAGS, ...)
#   BYTES      byte arrays, Big integers, RFC2279 (UTF-8) strings, DER encodings
#   DATE       CK_DATE
#   ATTR_ARRAY CK_ATTRIBUTE_PTR (templates)
#   MECH_ARRAY CK_MECHANISM_TYPE_PTR
#
# CKA_VENDOR_DEFINED is left out on purpose: it only marks where the vendor range starts
# (base spec 3.x: values from it up are reserved for vendors), it names no attribute, and
# the codec answers CKR_ATTRIBUTE_TYPE_INVALID for any type missing from ATTR_KIND.
# ---------------------------------------------------------------------------------------
NOT_ATTRIBUTES = frozenset({"CKA_VENDOR_DEFINED"})

ATTR_KINDS: dict[str, str] = {
    # Common object / storage (4.2, 4.4)
    "CKA_CLASS": "ULONG",
    "CKA_TOKEN": "BOOL",
    "CKA_PRIVATE": "BOOL",
    "CKA_LABEL": "BYTES",  # RFC2279 string
    "CKA_UNIQUE_ID": "BYTES",  # RFC2279 string
    "CKA_MODIFIABLE": "BOOL",
    "CKA_COPYABLE": "BOOL",
    "CKA_DESTROYABLE": "BOOL",
    # Data objects (4.5)
    "CKA_APPLICATION": "BYTES",  # RFC2279 string
    "CKA_VALUE": "BYTES",
    "CKA_OBJECT_ID": "BYTES",  # DER
    # Certificates (4.6)
    "CKA_CERTIFICATE_TYPE": "ULONG",
    "CKA_ISSUER": "BYTES",
    "CKA_SERIAL_NUMBER": "BYTES",
    "CKA_AC_ISSUER": "BYTES",
    "CKA_OWNER": "BYTES",
    "CKA_ATTR_TYPES": "BYTES",
    "CKA_TRUSTED": "BOOL",
    "CKA_CERTIFICATE_CATEGORY": "ULONG",
    "CKA_JAVA_MIDP_SECURITY_DOMAIN": "ULONG",
    "CKA_URL": "BYTES",  # RFC2279 string
    "CKA_HASH_OF_SUBJECT_PUBLIC_KEY": "BYTES",
    "CKA_HASH_OF_ISSUER_PUBLIC_KEY": "BYTES",
    "CKA_NAME_HASH_ALGORITHM": "ULONG",  # CK_MECHANISM_TYPE
    "CKA_CHECK_VALUE": "BYTES",
    # Keys (4.7 - 4.9)
    "CKA_KEY_TYPE": "ULONG",
    "CKA_SUBJECT": "BYTES",
    "CKA_ID": "BYTES",
    "CKA_SENSITIVE": "BOOL",
    "CKA_ENCRYPT": "BOOL",
    "CKA_DECRYPT": "BOOL",
    "CKA_WRAP": "BOOL",
    "CKA_UNWRAP": "BOOL",
    "CKA_SIGN": "BOOL",
    "CKA_SIGN_RECOVER": "BOOL",
    "CKA_VERIFY": "BOOL",
    "CKA_VERIFY_RECOVER": "BOOL",
    "CKA_DERIVE": "BOOL",
    "CKA_START_DATE": "DATE",
    "CKA_END_DATE": "DATE",
    "CKA_PUBLIC_KEY_INFO": "BYTES",  # DER SubjectPublicKeyInfo
    "CKA_EXTRACTABLE": "BOOL",
    "CKA_LOCAL": "BOOL",
    "CKA_NEVER_EXTRACTABLE": "BOOL",
    "CKA_ALWAYS_SENSITIVE": "BOOL",
    "CKA_KEY_GEN_MECHANISM": "ULONG",  # CK_MECHANISM_TYPE
    "CKA_SECONDARY_AUTH": "BOOL",  # deprecated
    "CKA_AUTH_PIN_FLAGS": "ULONG",  # deprecated, CK_FLAGS
    "CKA_ALWAYS_AUTHENTICATE": "BOOL",
    "CKA_WRAP_WITH_TRUSTED": "BOOL",
    "CKA_WRAP_TEMPLATE": "ATTR_ARRAY",
    "CKA_UNWRAP_TEMPLATE": "ATTR_ARRAY",
    "CKA_DERIVE_TEMPLATE": "ATTR_ARRAY",
    "CKA_ALLOWED_MECHANISMS": "MECH_ARRAY",
    # RSA (mechanisms 2.1)
    "CKA_MODULUS": "BYTES",  # Big integer
    "CKA_MODULUS_BITS": "ULONG",
    "CKA_PUBLIC_EXPONENT": "BYTES",
    "CKA_PRIVATE_EXPONENT": "BYTES",
    "CKA_PRIME_1": "BYTES",
    "CKA_PRIME_2": "BYTES",
    "CKA_EXPONENT_1": "BYTES",
    "CKA_EXPONENT_2": "BYTES",
    "CKA_COEFFICIENT": "BYTES",
    # DSA / DH / X9.42 / KEA domain values
    "CKA_PRIME": "BYTES",
    "CKA_SUBPRIME": "BYTES",
    "CKA_BASE": "BYTES",
    "CKA_PRIME_BITS": "ULONG",
    "CKA_SUBPRIME_BITS": "ULONG",
    "CKA_VALUE_BITS": "ULONG",
    "CKA_VALUE_LEN": "ULONG",
    # EC / Edwards / Montgomery
    "CKA_EC_PARAMS": "BYTES",  # DER
    "CKA_EC_POINT": "BYTES",  # DER OCTET STRING (or raw for Edwards/Montgomery)
    # OTP keys (mechanisms, OTP section)
    "CKA_OTP_FORMAT": "ULONG",
    "CKA_OTP_LENGTH": "ULONG",
    "CKA_OTP_TIME_INTERVAL": "ULONG",
    "CKA_OTP_USER_FRIENDLY_MODE": "BOOL",
    "CKA_OTP_CHALLENGE_REQUIREMENT": "ULONG",
    "CKA_OTP_TIME_REQUIREMENT": "ULONG",
    "CKA_OTP_COUNTER_REQUIREMENT": "ULONG",
    "CKA_OTP_PIN_REQUIREMENT": "ULONG",
    "CKA_OTP_COUNTER": "BYTES",
    "CKA_OTP_TIME": "BYTES",  # RFC2279 string
    "CKA_OTP_USER_IDENTIFIER": "BYTES",  # RFC2279 string
    "CKA_OTP_SERVICE_IDENTIFIER": "BYTES",  # RFC2279 string
    "CKA_OTP_SERVICE_LOGO": "BYTES",
    "CKA_OTP_SERVICE_LOGO_TYPE": "BYTES",  # RFC2279 string
    # GOST
    "CKA_GOSTR3410_PARAMS": "BYTES",
    "CKA_GOSTR3411_PARAMS": "BYTES",
    "CKA_GOST28147_PARAMS": "BYTES",
    # Hardware features (4.3 / 4.13)
    "CKA_HW_FEATURE_TYPE": "ULONG",
    "CKA_RESET_ON_INIT": "BOOL",
    "CKA_HAS_RESET": "BOOL",
    "CKA_PIXEL_X": "ULONG",
    "CKA_PIXEL_Y": "ULONG",
    "CKA_RESOLUTION": "ULONG",
    "CKA_CHAR_ROWS": "ULONG",
    "CKA_CHAR_COLUMNS": "ULONG",
    "CKA_COLOR": "BOOL",
    "CKA_BITS_PER_PIXEL": "ULONG",
    "CKA_CHAR_SETS": "BYTES",  # RFC2279 string
    "CKA_ENCODING_METHODS": "BYTES",  # RFC2279 string
    "CKA_MIME_TYPES": "BYTES",  # RFC2279 string
    # Mechanism objects (4.14)
    "CKA_MECHANISM_TYPE": "ULONG",
    # CMS signature mechanism objects
    "CKA_REQUIRED_CMS_ATTRIBUTES": "BYTES",
    "CKA_DEFAULT_CMS_ATTRIBUTES": "BYTES",
    "CKA_SUPPORTED_CMS_ATTRIBUTES": "BYTES",
    # Profile objects (4.15)
    "CKA_PROFILE_ID": "ULONG",
    # Double Ratchet secret key attributes (mechanisms, X2RATCHET)
    "CKA_X2RATCHET_BAG": "BYTES",
    "CKA_X2RATCHET_BAGSIZE": "ULONG",
    "CKA_X2RATCHET_BOBS1STMSG": "BOOL",
    "CKA_X2RATCHET_CKR": "BYTES",
    "CKA_X2RATCHET_CKS": "BYTES",
    "CKA_X2RATCHET_DHP": "BYTES",
    "CKA_X2RATCHET_DHR": "BYTES",
    "CKA_X2RATCHET_DHS": "BYTES",
    "CKA_X2RATCHET_HKR": "BYTES",
    "CKA_X2RATCHET_HKS": "BYTES",
    "CKA_X2RATCHET_ISALICE": "BOOL",
    "CKA_X2RATCHET_NHKR": "BYTES",
    "CKA_X2RATCHET_NHKS": "BYTES",
    "CKA_X2RATCHET_NR": "ULONG",
    "CKA_X2RATCHET_NS": "ULONG",
    "CKA_X2RATCHET_PNS": "ULONG",
    "CKA_X2RATCHET_RK": "BYTES",
    # HSS (3.1/3.2 stateful hash-based signatures)
    "CKA_HSS_LEVELS": "ULONG",
    "CKA_HSS_LMS_TYPE": "ULONG",  # CK_LMS_TYPE
    "CKA_HSS_LMOTS_TYPE": "ULONG",  # CK_LMOTS_TYPE
    "CKA_HSS_LMS_TYPES": "BYTES",  # CK_LMS_TYPE array, one per level
    "CKA_HSS_LMOTS_TYPES": "BYTES",  # CK_LMOTS_TYPE array, one per level
    "CKA_KEYS_REMAINING": "ULONG",
    # Post-quantum keys (3.2: ML-DSA, ML-KEM, SLH-DSA)
    "CKA_PARAMETER_SET": "ULONG",  # CK_ML_DSA/ML_KEM/SLH_DSA_PARAMETER_SET_TYPE
    "CKA_SEED": "BYTES",
    "CKA_ENCAPSULATE": "BOOL",
    "CKA_DECAPSULATE": "BOOL",
    "CKA_ENCAPSULATE_TEMPLATE": "ATTR_ARRAY",
    "CKA_DECAPSULATE_TEMPLATE": "ATTR_ARRAY",
    "CKA_PUBLIC_CRC64_VALUE": "BYTES",  # 8-byte CRC64 of the public key
    # Validation objects (3.2, CKO_VALIDATION)
    "CKA_OBJECT_VALIDATION_FLAGS": "ULONG",  # CK_FLAGS
    "CKA_VALIDATION_TYPE": "ULONG",  # CK_VALIDATION_TYPE
    "CKA_VALIDATION_VERSION": "BYTES",  # CK_VERSION (2 bytes)
    "CKA_VALIDATION_LEVEL": "ULONG",
    "CKA_VALIDATION_MODULE_ID": "BYTES",  # RFC2279 string
    "CKA_VALIDATION_FLAG": "ULONG",  # CK_FLAGS
    "CKA_VALIDATION_AUTHORITY_TYPE": "ULONG",  # CK_VALIDATION_AUTHORITY_TYPE
    "CKA_VALIDATION_COUNTRY": "BYTES",  # ISO 3166 two-letter code
    "CKA_VALIDATION_CERTIFICATE_IDENTIFIER": "BYTES",  # RFC2279 string
    "CKA_VALIDATION_CERTIFICATE_URI": "BYTES",  # RFC2279 string
    "CKA_VALIDATION_VENDOR_URI": "BYTES",  # RFC2279 string
    "CKA_VALIDATION_PROFILE": "BYTES",  # RFC2279 string
    # Trust objects (3.2, CKO_TRUST)
    "CKA_TRUST_SERVER_AUTH": "ULONG",  # CK_TRUST
    "CKA_TRUST_CLIENT_AUTH": "ULONG",
    "CKA_TRUST_CODE_SIGNING": "ULONG",
    "CKA_TRUST_EMAIL_PROTECTION": "ULONG",
    "CKA_TRUST_IPSEC_IKE": "ULONG",
    "CKA_TRUST_TIME_STAMPING": "ULONG",
    "CKA_TRUST_OCSP_SIGNING": "ULONG",
    "CKA_HASH_OF_CERTIFICATE": "BYTES",
    # cryptoki-shim vendor-defined (SHIM_DEFINES below)
    "CKA_SHIM_BACKEND": "ULONG",
    "CKA_SHIM_TPM_KIND": "ULONG",
    "CKA_SHIM_TPM_PUBLIC": "BYTES",
    "CKA_SHIM_TPM_PRIVATE": "BYTES",
    "CKA_SHIM_TPM_AUTH": "BYTES",
    "CKA_SHIM_TPM_PCRS": "BYTES",
    "CKA_SHIM_TPM_SEALED": "BYTES",
    "CKA_SHIM_TPM_ESCROW": "BYTES",
    "CKA_SHIM_UPSTREAM_REF": "BYTES",
}

# Our own vendor-defined attributes (see the comment emitted below): the one place every
# CKA_SHIM_* is defined, with its kind in ATTR_KINDS above (issue 16 item 5: no backend
# defines or registers attributes of its own). What each means is documented by its user:
# CKA_SHIM_TPM_* in backends/tpm_attrs.py, CKA_SHIM_UPSTREAM_REF in backends/upstream_attrs.py.
SHIM_DEFINES = [
    ("CKA_SHIM_BACKEND", "CKA_VENDOR_DEFINED | 0x53480001"),
    ("CKA_SHIM_TPM_KIND", "CKA_VENDOR_DEFINED | 0x53480101"),
    ("CKA_SHIM_TPM_PUBLIC", "CKA_VENDOR_DEFINED | 0x53480102"),
    ("CKA_SHIM_TPM_PRIVATE", "CKA_VENDOR_DEFINED | 0x53480103"),
    ("CKA_SHIM_TPM_AUTH", "CKA_VENDOR_DEFINED | 0x53480104"),
    ("CKA_SHIM_TPM_PCRS", "CKA_VENDOR_DEFINED | 0x53480105"),
    ("CKA_SHIM_TPM_SEALED", "CKA_VENDOR_DEFINED | 0x53480106"),
    ("CKA_SHIM_TPM_ESCROW", "CKA_VENDOR_DEFINED | 0x53480107"),
    ("CKA_SHIM_UPSTREAM_REF", "CKA_VENDOR_DEFINED | 0x53480201"),
]

_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(.+?)\s*(/\*(.*?)\*/)?\s*$")
_INT = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")
_NAME = re.compile(r"\b(CK\w+)\b")

MASK = (1 << 64) - 1  # CK_ULONG on LP64; (~0UL) is CK_UNAVAILABLE_INFORMATION


def parse(text: str) -> list[tuple[str, str, str]]:
    """Return (name, raw value expression, comment) for each #define, in header order."""
    out = []
    for line in text.splitlines():
        m = _DEFINE.match(line)
        if m:
            out.append((m.group(1), m.group(2), (m.group(4) or "").strip()))
    return out


def evaluate(expr: str, known: dict[str, int]) -> int:
    """Resolve a header value expression (hex/decimal with U/L suffixes, |, ~, names)."""
    py = _INT.sub(lambda m: str(int(m.group(1), 0)), expr)
    py = _NAME.sub(lambda m: str(known[m.group(1)]), py)
    if not re.fullmatch(r"[\d\s()|~&+x]*", py):
        raise ValueError(f"unexpected expression {expr!r}")
    return eval(py, {"__builtins__": {}}) & MASK  # noqa: S307 - digits and operators only


def family(name: str) -> str | None:
    prefix = name.split("_", 1)[0]
    return prefix if prefix in ENUM_FAMILIES and name not in NOT_IN_FAMILY else None


def _values() -> tuple[list[tuple[str, str, str]], dict[str, int], dict[str, bool], list[str]]:
    """(header entries, name -> value, name -> is an alias, every name in header order)."""
    entries = parse(DEFINES)
    values: dict[str, int] = {}
    is_alias: dict[str, bool] = {}
    for name, expr, comment in entries:
        if name in values:
            raise ValueError(f"duplicate define {name}")
        values[name] = evaluate(expr, values)
        is_alias[name] = bool(_NAME.fullmatch(expr.strip())) or "deprecated" in comment.lower()
    for name, expr in SHIM_DEFINES:
        values[name] = evaluate(expr, values)
        is_alias[name] = False
    order = [n for n, _, _ in entries] + [n for n, _ in SHIM_DEFINES]
    return entries, values, is_alias, order


INTS_HEADER = '''"""Every PKCS#11 3.2 constant of ``spec`` as a plain ``int`` (and cryptoki-shim's own).

GENERATED by ``scripts/gen_spec.py`` next to ``spec.py``; edit the generator, not this file.

``spec`` gives the enum families (``spec.CKR_OK`` is ``CKR.CKR_OK``, an ``IntEnum`` member
whose ``repr`` names it in logs). The operation path compares and hashes these values on
every call, and an ``IntEnum`` member is slower there than an ``int`` (its ``__eq__`` and
``__hash__`` go through the enum class): the hot path imports them from here instead
(``from ..spec_ints import CKR_OK, CKA_CLASS``), equal to the members, type ``int``.
Importing this module builds no enum.
"""'''


def build_ints() -> str:
    """The text of ``cryptoki_shim/spec_ints.py``: every name of ``spec``'s header, a plain int."""
    _entries, values, _is_alias, order = _values()
    lines = [INTS_HEADER, ""]
    for name in order:
        v = values[name]
        lines.append(f"{name} = 0x{v:08X}" if v > 9 else f"{name} = {v}")
    return "\n".join(lines) + "\n"


def build() -> str:
    entries, values, is_alias, order = _values()

    # Canonical member per (family, value): preferred > non-alias > first seen.
    canonical: dict[tuple[str, int], str] = {}
    for name in order:
        fam = family(name)
        if fam is None:
            continue
        key = (fam, values[name])
        cur = canonical.get(key)
        if cur is None or (is_alias[cur] and not is_alias[name]):
            canonical[key] = name
    for pref in PREFERRED.values():
        canonical[(family(pref), values[pref])] = pref  # type: ignore[index]

    since_3_1 = sorted(n for n, _, comment in entries if comment == "3.1")
    since_3_2 = sorted(n for n, _, comment in entries if comment.startswith("3.2"))

    lines: list[str] = []
    w = lines.append
    w(HEADER)
    w("")
    w("")
    w("# --- Enum families, built on first use (module __getattr__ below) ------------------")
    w("#")
    w("# Each family: its docstring, then (name, value) in class order -- canonical members")
    w("# first (header order), then aliases (deprecated or alternative spellings), which the")
    w("# enum makes aliases of the canonical member with the same value.")
    w("_FAMILIES: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {")
    for fam, doc in ENUM_FAMILIES.items():
        members = [n for n in order if family(n) == fam]
        canon = [n for n in members if canonical[(fam, values[n])] == n]
        aliases = [n for n in members if canonical[(fam, values[n])] != n]
        w(f'    "{fam}": ("{doc}", (')
        for n in canon:
            w(f'        ("{n}", 0x{values[n]:08X}),')
        for n in aliases:
            w(f'        ("{n}", 0x{values[n]:08X}),  # alias of {canonical[(fam, values[n])]}')
        w("    )),")
    w("}")
    w(LAZY_FAMILIES)
    w("")
    w("")
    w("# --- Plain integer constants (flags and small enumerations) -------------------------")
    w("")
    for name in order:
        if family(name) is None:
            v = values[name]
            w(f"{name} = 0x{v:08X}" if v > 9 else f"{name} = {v}")

    w("")
    w("# Names above that PKCS#11 3.0 does not define: 3.1 additions that native/pkcs11.h")
    w("# also exports (OASIS published/3-01/pkcs11t.h values).")
    w("SINCE_3_1: frozenset[str] = frozenset({")
    for n in since_3_1:
        w(f'    "{n}",')
    w("})")
    w("")
    w("# Names above that PKCS#11 3.0 does not define, taken from the 3.2 header (some first")
    w("# appeared in 3.1: HSS, CKR_KEY_EXHAUSTED, CKM_AES_KEY_WRAP_PKCS7, ...).")
    w("SINCE_3_2: frozenset[str] = frozenset({")
    for n in since_3_2:
        w(f'    "{n}",')
    w("})")

    # Vendor section, name functions, attribute kinds.
    w("")
    w("")
    w("# --- cryptoki-shim vendor-defined values --------------------------------------------")
    w("#")
    w("# CKA_SHIM_BACKEND (= CKA_VENDOR_DEFINED | 0x53480001, 'SH' + 1; a CK_ULONG) says which")
    w("# backend holds a key object's material. The core sets it when a key is created or")
    w("# generated; clients may read it (e.g. to check a key really lives in the TPM).")
    w("# CKA_SHIM_TPM_* (0xD34801xx: backends/tpm_attrs.py) and CKA_SHIM_UPSTREAM_REF")
    w("# (0xD3480201: backends/upstream_attrs.py) are kept by those backends; every vendor")
    w("# attribute is defined here, with its kind in ATTR_KIND, and nowhere else.")
    w("SHIM_BACKEND_SOFTWARE = 0  # material sealed in our SQLite store, used via pyca/cryptography")
    w("SHIM_BACKEND_TPM = 1  # material wrapped by / resident in a TPM 2.0")
    w("SHIM_BACKEND_UPSTREAM = 2  # material held by an upstream PKCS#11 module")
    w("")
    w("")
    w("# --- Names for logs ------------------------------------------------------------------")
    w("")
    w("")
    w("def _names(fam: str) -> dict[int, str]:")
    w('    """Value -> canonical spec name of one family, built on first use (canonical first wins)."""')
    w("    names = _NAMES.get(fam)")
    w("    if names is None:")
    w("        names = _NAMES[fam] = {value: name for name, value in reversed(_FAMILIES[fam][1])}")
    w("    return names")
    w("")
    w("")
    w("_NAMES: dict[str, dict[int, str]] = {}")
    for fam, what in (("CKR", "return value"), ("CKA", "attribute type"), ("CKM", "mechanism type"),
                      ("CKO", "object class"), ("CKK", "key type")):
        w("")
        w("")
        w(f"def {fam.lower()}_name(value: int) -> str:")
        w(f'    """Spec name of a {what} (``0x...`` hex for values the spec does not name)."""')
        w(f'    name = _names("{fam}").get(value)')
        w('    return name if name is not None else f"0x{value:08X}"')
    w("")
    w("")
    w("# --- Attribute kinds -----------------------------------------------------------------")
    w("")
    w("")
    w("class AttrKind(enum.Enum):")
    w('    """How an attribute value is laid out in C (docs/architecture.md, "Attribute values")."""')
    w("")
    for k in ("BOOL", "ULONG", "BYTES", "DATE", "ATTR_ARRAY", "MECH_ARRAY"):
        w(f'    {k} = "{k.lower()}"')
    w("")
    w("")
    w("# Every CKA_* attribute of PKCS#11 3.2 (plus our CKA_SHIM_*) -> its kind.  Not in it:")
    w("# CKA_VENDOR_DEFINED, which marks the start of the vendor range and names no attribute,")
    w("# so the codec rejects it (CKR_ATTRIBUTE_TYPE_INVALID) like any unknown vendor type.")
    w("ATTR_KIND: dict[int, AttrKind] = {")
    cka_canon = [
        n for n in order
        if family(n) == "CKA" and canonical[("CKA", values[n])] == n and n not in NOT_ATTRIBUTES
    ]
    missing = [n for n in cka_canon if n not in ATTR_KINDS]
    extra = [n for n in ATTR_KINDS if n not in cka_canon]
    if missing or extra:
        raise ValueError(f"ATTR_KINDS out of step: missing {missing}, unknown {extra}")
    for n in cka_canon:
        w(f"    0x{values[n]:08X}: AttrKind.{ATTR_KINDS[n]},  # {n}")
    w("}")
    return "\n".join(lines) + "\n"


HEADER = '''"""PKCS#11 3.2 constants and the attribute-kind table.

GENERATED by ``scripts/gen_spec.py`` from the OASIS PKCS#11 ``pkcs11t.h`` values (3.0,
plus the 3.1/3.2 additions of the 3.2 header, listed in ``SINCE_3_2``);
edit the generator, not this file.

* ``CKR``, ``CKA``, ``CKM``, ``CKO``, ``CKK``, ``CKC``, ``CKU``, ``CKS`` are ``IntEnum``
  classes whose members carry the full spec name (``CKR.CKR_OK``); every member is also a
  module global (``CKR_OK is CKR.CKR_OK``), so values compare as ints and ``repr`` shows
  the spec name in logs.  Deprecated names (``CKK_ECDSA``, ``CKA_ECDSA_PARAMS``, ...)
  are enum aliases of the current name.
* Each family is built on first use (``from cryptoki_shim.spec import CKM_AES_GCM`` or
  ``spec.CKM``, through the module ``__getattr__``), then its members are plain module
  globals: building all ~1000 enum members costs several milliseconds that every host
  would pay at C_Initialize (issue #9, cold start), mostly for mechanism names that are
  only needed once a mechanism is used.
* Flags (``CKF_*``) and the other small enumerations (``CKN_``, ``CKP_``, ``CKH_``,
  ``CKD_``, ``CKG_``, ``CKZ_``, ``CK_*``) are plain ints: their values overlap by design.
* ``ckr_name`` / ``cka_name`` / ``ckm_name`` / ``cko_name`` / ``ckk_name`` turn a number
  into its spec name for logs (dict lookups built on first use, without the enums;
  unknown values print as hex).
* ``AttrKind`` and ``ATTR_KIND`` tell the attribute codec how each ``CKA_*`` value is
  encoded in C (see docs/architecture.md, "Attribute values"); ``ATTR_KIND`` is keyed by
  plain ints (equal to the ``CKA`` members).
* ``CKA_SHIM_*`` are cryptoki-shim's own vendor-defined attributes (all of them).
* ``SINCE_3_1`` names the few 3.1 additions kept earlier; ``SINCE_3_2`` every other name
  3.0 lacks (from the 3.2 header: PQC, validation, trust, async, HSS/XMSS ...).
* ``CKS_LAST_VALIDATION_OK`` (a CK_SESSION_VALIDATION_FLAGS_TYPE), ``CKH_HEDGE_*`` (a
  CK_HEDGE_TYPE) and ``CKP_ML_DSA_*`` & co. (parameter sets) are plain ints.
"""

from __future__ import annotations

import enum
import threading
from enum import IntEnum
from typing import Any'''

# The module-level machinery that builds an enum family on first access.
LAZY_FAMILIES = '''

_BUILD_LOCK = threading.Lock()
#: CPython's fast enum constructor (3.11+, what the standard library uses for its own enums
#: at start-up: about 7x faster than the functional API for CKM's 400 members). Private,
#: so the documented functional API is the fallback where it is missing.
_simple_enum = getattr(enum, "_simple_enum", None)


def _build(fam: str) -> type[IntEnum]:
    """Create family ``fam``'s IntEnum once and publish it and its members as globals."""
    with _BUILD_LOCK:  # two threads must not create two distinct classes
        built: type[IntEnum] | None = globals().get(fam)
        if built is not None:
            return built
        doc, members = _FAMILIES[fam]
        cls: type[IntEnum]
        if _simple_enum is not None:
            body: dict[str, Any] = dict(members)
            body.update(__doc__=doc, __module__=__name__, __qualname__=fam)
            cls = _simple_enum(IntEnum)(type(fam, (), body))
        else:
            cls = IntEnum(fam, members, module=__name__, qualname=fam)  # type: ignore[misc, no-redef]
            cls.__doc__ = doc
        globals().update(cls.__members__)
        globals()[fam] = cls
        return cls


def __getattr__(name: str) -> Any:
    """``CKR`` / ``CKR_OK`` ... before their family was built: build it (PEP 562)."""
    fam = name[:3]
    if fam in _FAMILIES and (len(name) == 3 or name[3] == "_"):
        _build(fam)
        try:
            return globals()[name]
        except KeyError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    names = set(globals())
    for fam, (_doc, members) in _FAMILIES.items():
        names.add(fam)
        names.update(n for n, _v in members)
    return sorted(names)'''


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "cryptoki_shim" / "spec.py"
    out.write_text(build())
    out.with_name("spec_ints.py").write_text(build_ints())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
