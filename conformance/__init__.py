"""Conformance: real PKCS#11 clients and third-party suites against a built module.

``python -m conformance --module PATH [--module PATH2]`` runs every client in
``conformance.clients`` against a fresh token on each module and prints a table
``client | checks passed | failed | skipped`` per module (side by side when several), plus a
JSON report ``build/conformance-<module>.json``. The same checks run unchanged against
SoftHSM2, so each claim sits next to the reference (docs/conformance.md).
"""
