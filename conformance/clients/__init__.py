"""The clients, in report order. Each module defines NAME, DESCRIPTION, ``requires(target)``
(the reason it cannot run here, or None) and ``checks(target) -> list[Check]``."""

CLIENTS = (
    "pkcs11_tool",
    "openssl_engine",
    "openssl_provider",
    "p11kit",
    "gnutls",
    "nss",
    "java",
    "openssh",
    "python_suites",
    "spec_clauses",
)
