"""cryptoki-shim: a PKCS#11 provider written in Python, loaded by C clients as a shared library."""

__version__ = "0.1.0"
