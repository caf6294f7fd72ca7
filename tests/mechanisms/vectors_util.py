"""Helpers for the mechanism tests: NIST CAVP .rsp parsing from cryptography_vectors and a
minimal KeyView (the core's real one carries the same two fields)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import cryptography_vectors


@dataclass
class KeyView:
    attrs: dict
    cache: dict = field(default_factory=dict)


def vector_text(*parts: str) -> str:
    with cryptography_vectors.open_vector_file(os.path.join(*parts), "r") as f:
        return f.read()


def nist_records(*parts: str) -> Iterator[dict[str, Any]]:
    """Each record of a CAVP file as {KEY: value}, with the [section] header under
    "section" and values persisting from earlier lines of a group (n, e, Qx ...) merged in."""
    section = ""
    carried: dict[str, str] = {}
    record: dict[str, str] = {}
    for raw in vector_text(*parts).splitlines() + [""]:
        line = raw.strip()
        if line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            carried = {}
            continue
        if not line:
            if record:
                yield {"section": section, **carried, **record}
                carried.update({k: v for k, v in record.items() if k in ("n", "e", "d", "SHAAlg")})
                record = {}
            continue
        if "=" in line:
            key, _, value = line.partition("=")
            record[key.strip()] = value.strip()
    if record:
        yield {"section": section, **carried, **record}
