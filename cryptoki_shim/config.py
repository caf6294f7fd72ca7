"""Configuration: one TOML file, found by a fixed search order, validated on load.

Search order (DESIGN.md §5): ``$CRYPTOKI_SHIM_CONF``, then ``$XDG_CONFIG_HOME/cryptoki-shim/
config.toml`` (``~/.config/...``), then ``/etc/cryptoki-shim/config.toml``. With no file the
module serves one software token in slot 0 on the default SQLite file, so it works out of
the box. An invalid file makes ``C_Initialize`` fail with the reason logged — never a
half-working module.

The accepted keys are the tables below (``STORE_KEYS``, ``SLOT_KEYS`` ...): one place that
the validator, the defaults and the reference documentation read.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """An invalid configuration: the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None


STORE_KEYS: dict[str, Key] = {
    "url": Key(str, None, "SQLAlchemy URL of the store; default sqlite:///$XDG_DATA_HOME/cryptoki-shim/store.db"),
}
LOG_KEYS: dict[str, Key] = {
    "file": Key(str, None, 'log file, or "stderr"; no logging when absent (CRYPTOKI_SHIM_LOG overrides)'),
    "level": Key(str, "info", "log level", ("debug", "info", "warning", "error")),
}
SLOT_KEYS: dict[str, Key] = {
    "id": Key(int, None, "the slot ID clients see; stable across restarts and C_InitToken"),
    "description": Key(str, "cryptoki-shim software slot", "CK_SLOT_INFO.slotDescription (64 chars max)"),
    "backend": Key(str, "software", "where new keys live", ("software", "tpm", "upstream")),
    "kdf_cost": Key(str, "default", "cost of the PIN key derivation (Argon2id)", ("default", "high", "test")),
    "max_pin_failures": Key(int, 10, "consecutive wrong PINs before the PIN is locked"),
    "min_pin_len": Key(int, 4, "shortest PIN accepted (CK_TOKEN_INFO.ulMinPinLen)"),
    "max_pin_len": Key(int, 255, "longest PIN accepted (CK_TOKEN_INFO.ulMaxPinLen)"),
}


#: [slots.tpm] and [slots.upstream] sub-tables: their keys are declared by the backend issues
#: (TPM_KEYS / UPSTREAM_KEYS below); a slot that has one gets that backend.
TPM_KEYS: dict[str, Key] = {}
UPSTREAM_KEYS: dict[str, Key] = {}
SUBTABLES = {"tpm": TPM_KEYS, "upstream": UPSTREAM_KEYS}


@dataclass(frozen=True)
class SlotConfig:
    id: int
    description: str = SLOT_KEYS["description"].default
    backend: str = "software"
    kdf_cost: str = "default"
    max_pin_failures: int = 10
    min_pin_len: int = 4
    max_pin_len: int = 255
    tpm: dict[str, Any] | None = None
    upstream: dict[str, Any] | None = None


@dataclass(frozen=True)
class Config:
    source: str
    store_url: str
    log_file: str | None = None
    log_level: str = "info"
    slots: tuple[SlotConfig, ...] = field(default_factory=tuple)


def default_store_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + os.path.join(base, "cryptoki-shim", "store.db")


def find_config_file() -> Path | None:
    """The first file of the search order that exists (``$CRYPTOKI_SHIM_CONF`` must exist)."""
    env = os.environ.get("CRYPTOKI_SHIM_CONF")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"CRYPTOKI_SHIM_CONF={env}: no such file")
        return path
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    for candidate in (Path(xdg) / "cryptoki-shim" / "config.toml", Path("/etc/cryptoki-shim/config.toml")):
        if candidate.is_file():
            return candidate
    return None


def _section(source: str, where: str, data: Any, keys: dict[str, Key]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [{where}] must be a table")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ConfigError(f"{source}: [{where}] unknown key {unknown[0]!r}; allowed: {', '.join(sorted(keys))}")
    out: dict[str, Any] = {}
    for name, key in keys.items():
        if name not in data:
            out[name] = key.default
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, key.type):
            raise ConfigError(f"{source}: [{where}] {name} must be {getattr(key.type, '__name__', key.type)}, got {value!r}")
        if isinstance(value, str):
            value = os.path.expandvars(value)
        if key.choices and value not in key.choices:
            raise ConfigError(f"{source}: [{where}] {name} = {value!r}; allowed: {', '.join(map(str, key.choices))}")
        out[name] = value
    return out


def parse(text: str, source: str = "<config>") -> Config:
    """Validate a TOML document into a Config (ConfigError with file/key/allowed on error)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"store", "log", "slots"})
    if unknown:
        raise ConfigError(f"{source}: unknown section {unknown[0]!r}; allowed: store, log, slots")
    store = _section(source, "store", data.get("store", {}), STORE_KEYS)
    log = _section(source, "log", data.get("log", {}), LOG_KEYS)
    raw_slots = data.get("slots", [{"id": 0}])
    if not isinstance(raw_slots, list) or not raw_slots:
        raise ConfigError(f"{source}: [[slots]] must be a non-empty array of tables")
    slots = []
    for i, raw in enumerate(raw_slots):
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: [[slots]] entry {i} must be a table")
        raw = dict(raw)
        subtables = {name: _section(source, f"slots[{i}].{name}", raw.pop(name), keys)
                     for name, keys in SUBTABLES.items() if name in raw}
        values = _section(source, f"slots[{i}]", raw, SLOT_KEYS)
        values.update(subtables)
        if values["id"] is None or values["id"] < 0:
            raise ConfigError(f"{source}: [slots[{i}]] id is required (a non-negative integer)")
        if not 1 <= values["min_pin_len"] <= values["max_pin_len"] <= 255:
            raise ConfigError(f"{source}: [slots[{i}]] needs 1 <= min_pin_len <= max_pin_len <= 255")
        if values["max_pin_failures"] < 1:
            raise ConfigError(f"{source}: [slots[{i}]] max_pin_failures must be >= 1")
        slots.append(SlotConfig(**values))
    ids = [s.id for s in slots]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{source}: slot ids must be unique, got {ids}")
    return Config(
        source=source,
        store_url=store["url"] or default_store_url(),
        log_file=log["file"],
        log_level=log["level"],
        slots=tuple(slots),
    )


def load() -> Config:
    """The configuration in force: the file found by the search order, or the defaults."""
    path = find_config_file()
    if path is None:
        return parse("", "<defaults>")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(text, str(path))
