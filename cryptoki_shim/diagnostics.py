"""What will fail, found before it fails: the configuration's environment (issue 21 item 2).

A valid configuration can still make every client see CKR_GENERAL_ERROR or CKR_DEVICE_ERROR:
an audit file in a directory that does not exist, an upstream module path with a typo, a TPM
device that is not there, a PIN variable the client process does not have. Each such case is
one check here, returning a ``Problem`` that names the file, the key and the fix. Three
readers, one list:

* ``cryptoki-shim config-check`` prints them and exits 3;
* ``cryptoki-shim doctor`` shows each as a warning (and exits non-zero);
* ``C_Initialize`` logs each at ``warning`` level, so a client that then fails has the
  reason in the log at the default level (before, it was at ``debug`` or nowhere).

Only cheap checks (``stat``/``access``, environment lookups): C_Initialize runs them. Loading
an upstream module or talking to a TPM is ``doctor``'s probe, not this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import audit, private_files
from . import config as config_mod


@dataclass(frozen=True)
class Problem:
    """One thing that will fail: ``source: key = value: what (fix)``."""

    source: str
    key: str
    value: str | None
    what: str
    fix: str

    def __str__(self) -> str:
        value = f" = {self.value!r}" if self.value is not None else ""
        return f"{self.source}: {self.key}{value}: {self.what} ({self.fix})"


def problems(cfg: config_mod.Config) -> list[Problem]:
    """Every problem of ``cfg`` in this process's environment, in a stable order."""
    out: list[Problem] = []
    out += _shadowed_config(cfg)
    out += _files_written(cfg)
    out += _audit_key(cfg)
    out += _syslog(cfg)
    out += _store(cfg)
    for i, slot in enumerate(cfg.slots):
        if slot.upstream is not None or slot.backend == "upstream":
            out += _upstream(cfg.source, i, slot)
        if slot.tpm is not None or slot.backend == "tpm":
            out += _tpm(cfg.source, i, slot)
    return out


# --------------------------------------------------------------------------- the file itself


def _shadowed_config(cfg: config_mod.Config) -> list[Problem]:
    """A ``~/.config/cryptoki-shim/config.toml`` that is not read because ``$XDG_CONFIG_HOME``
    points elsewhere (issue 21: the file was silently ignored, config-check said
    ``<defaults>: valid``)."""
    home_file = Path(os.path.expanduser("~")) / ".config" / "cryptoki-shim" / "config.toml"
    if os.environ.get("CRYPTOKI_SHIM_CONF") or not home_file.is_file():
        return []
    try:
        if cfg.source != "<defaults>" and Path(cfg.source).resolve() == home_file.resolve():
            return []
    except OSError:
        return []
    xdg = os.environ.get("XDG_CONFIG_HOME")
    where = f"XDG_CONFIG_HOME={xdg}" if xdg else "the search order"
    return [Problem(str(home_file), "file", None, f"not read: {where} makes {cfg.source} the configuration in force",
                    f"move it to {config_mod.search_paths()[0]}, or set CRYPTOKI_SHIM_CONF={home_file}")]


# --------------------------------------------------------------------------- files the module writes


def files_written(cfg: config_mod.Config) -> list[tuple[str, str]]:
    """``(key, path)`` of the files the module creates or appends to. The module never fails a
    call because one cannot be opened (it logs and goes on), so this is where an operator
    learns it."""
    files = [("[audit] file", cfg.audit.get("file")), ("[audit] key_file", cfg.audit.get("key_file"))]
    if cfg.log_file != "stderr":
        files.append(("[log] file", cfg.log_file))
    return [(key, os.path.expanduser(path)) for key, path in files if path]


def cannot_write(path: str) -> tuple[str, str] | None:
    """``(why, fix)`` when this user could not create or append to ``path``; None: it could."""
    target = Path(path)
    if target.is_dir():
        return "is a directory", "name a file inside it"
    if target.exists():
        return None if os.access(target, os.W_OK) else ("the file is not writable by you",
                                                        f"chown or chmod u+w {target}")
    parent = target.parent
    if not parent.is_dir():
        return f"the directory {parent} does not exist", f"mkdir -p -m 700 {parent}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable by you", "pick a directory you own, or fix its owner"
    return None


def _files_written(cfg: config_mod.Config) -> list[Problem]:
    out = []
    for key, path in files_written(cfg):
        found = cannot_write(path)
        if found:
            out.append(Problem(cfg.source, key, path, *found))
    return out


def _audit_key(cfg: config_mod.Config) -> list[Problem]:
    """No place for the audit key, or a key file group or others can access (refused): the
    module then writes no audit records."""
    if not (cfg.audit.get("file") or cfg.audit.get("syslog")):
        return []
    path = audit.key_path(cfg.audit, cfg.store_url)
    if path is None:
        return [Problem(cfg.source, "[audit] key_file", None, "not set, and the store is not a SQLite file to put "
                        "audit.key next to", "set [audit] key_file")]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return []  # made on first use; a key_file's directory is checked with the files written
    if not private_files.is_private(mode):
        return [Problem(cfg.source, "[audit] key_file", path, f"mode {mode & 0o777:04o}: group/others have access, "
                        "so the module refuses the key and writes no audit records", f"chmod 600 {path}")]
    return []


def _syslog(cfg: config_mod.Config) -> list[Problem]:
    """``[audit] syslog``: records go to a datagram socket that must exist (else each is an
    error line in our log, and the collector never sees them)."""
    address = cfg.audit.get("syslog_address") or "/dev/log"
    if not cfg.audit.get("syslog") or os.path.exists(address):
        return []
    return [Problem(cfg.source, "[audit] syslog_address", address, "no such socket: audit records sent to syslog "
                    "are lost", "start the syslog daemon (rsyslog, systemd-journald), or set syslog_address")]


# --------------------------------------------------------------------------- the store


def _store(cfg: config_mod.Config) -> list[Problem]:
    out = []
    url = cfg.store_url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):].split("?", 1)[0]
        if path and path != ":memory:":
            found = _cannot_create_tree(Path(path))
            if found:
                out.append(Problem(cfg.source, "[store] url", path, *found))
    if cfg.store_key_file:
        kf = os.path.expanduser(cfg.store_key_file)
        if not os.path.isfile(kf):
            out.append(Problem(cfg.source, "[store] key_file", kf, "does not exist: C_Login answers CKR_DEVICE_ERROR",
                               f"cryptoki-shim store-key-create {kf}, or restore it from its backup"))
        elif not os.access(kf, os.R_OK):
            out.append(Problem(cfg.source, "[store] key_file", kf, "not readable by you: C_Login answers "
                               "CKR_DEVICE_ERROR", "run as the store's owner, or fix the file's owner"))
    return out


def _cannot_create_tree(path: Path) -> tuple[str, str] | None:
    """The store file (or, when missing, the nearest existing directory above it, since the
    store makes its directories) must be writable."""
    if path.exists():
        if os.access(path, os.R_OK | os.W_OK):
            return None
        return "the store file is not readable and writable by you", "run as its owner (ls -l shows who)"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return None
    return (f"cannot be created: {parent} is not a directory you can write",
            "pick a directory you own (the module creates the rest)")


# --------------------------------------------------------------------------- backends


def _upstream(source: str, i: int, slot: config_mod.SlotConfig) -> list[Problem]:
    where = f"[slots[{i}].upstream]"
    cfg = slot.upstream or {}
    lib = cfg.get("library")
    out = []
    if not lib:
        out.append(Problem(source, f"{where} library", None, "not set: every key operation of slot "
                           f"{slot.id} answers CKR_DEVICE_ERROR", "set it to the vendor's PKCS#11 .so"))
    elif not os.path.isfile(lib):
        out.append(Problem(source, f"{where} library", lib, "no such file: slot "
                           f"{slot.id} answers CKR_DEVICE_ERROR", "give the path of the vendor's PKCS#11 .so "
                           "(dpkg -L <package> | grep '\\.so')"))
    elif not os.access(lib, os.R_OK):
        out.append(Problem(source, f"{where} library", lib, "not readable by you", "fix the file's mode"))
    if not (cfg.get("token_label") or cfg.get("token_serial")):
        out.append(Problem(source, f"{where} token_label", None, "neither token_label nor token_serial is set: the "
                           "first token found is used", "name the upstream token"))
    known = ("no_reinitialize", "no_os_locking")  # backends/upstream_client.QUIRKS
    unknown = [q.strip() for q in (cfg.get("quirks") or "").split(",") if q.strip() and q.strip() not in known]
    if unknown:
        out.append(Problem(source, f"{where} quirks", cfg.get("quirks"), f"unknown quirk {unknown[0]!r}: ignored",
                           f"allowed: {', '.join(known)} (docs/upstream.md \"Quirks\")"))
    pin_env, pin_file = cfg.get("pin_env"), cfg.get("pin_file")
    if pin_env and pin_env not in os.environ:
        out.append(Problem(source, f"{where} pin_env", pin_env, "not set in this environment: the upstream login "
                           "fails (CKR_DEVICE_ERROR)", f"export {pin_env} in the client's environment, or use pin_file"))
    elif pin_file and not os.access(pin_file, os.R_OK):
        out.append(Problem(source, f"{where} pin_file", pin_file, "not readable by you: the upstream login fails "
                           "(CKR_DEVICE_ERROR)", "create it (mode 600) or fix its owner"))
    elif not pin_env and not pin_file:
        out.append(Problem(source, f"{where} pin_env", None, "neither pin_env nor pin_file is set: the upstream "
                           "login fails (CKR_DEVICE_ERROR)", "set one of them"))
    return out


def _tpm(source: str, i: int, slot: config_mod.SlotConfig) -> list[Problem]:
    """The TCTI's device or socket must exist (the TSS's own error is a bare ``rc``)."""
    tcti = (slot.tpm or {}).get("tcti") or config_mod.TPM_KEYS["tcti"].default
    kind, _, conf = tcti.partition(":")
    key = f"[slots[{i}].tpm] tcti"
    if kind == "device":
        dev = conf or "/dev/tpmrm0"
        if not os.path.exists(dev):
            return [Problem(source, key, tcti, f"{dev} does not exist: key operations of slot {slot.id} answer "
                            "CKR_DEVICE_ERROR", "enable the TPM in the firmware, or point tcti at swtpm "
                            "(swtpm:path=SOCKET)")]
        if not os.access(dev, os.R_OK | os.W_OK):
            return [Problem(source, key, tcti, f"{dev} is not readable and writable by you",
                            "add the user to the tss group (usermod -aG tss USER), then log in again")]
    elif kind == "swtpm":
        params = dict(p.partition("=")[::2] for p in conf.split(",") if p)
        sock = params.get("path")
        if sock and not os.path.exists(sock):
            return [Problem(source, key, tcti, f"no swtpm socket at {sock}",
                            "start swtpm (swtpm socket --tpm2 --server type=unixio,path=...)")]
    return []
