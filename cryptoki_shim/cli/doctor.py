"""``doctor`` (checks, each step reported) and ``p11-kit-module`` (registers the library).

doctor checks what an operator gets wrong in the first hour: the configuration, the store
(exists, schema, permissions), each token, the TPM / upstream backends a slot configures,
and finally the ``.so`` loaded in a child process exactly as a C client does it
(dlopen, C_GetFunctionList, C_Initialize, C_GetInfo, C_GetSlotList, C_Finalize).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from .. import config as config_mod
from .. import diagnostics
from .common import CliError, EXIT_CHECK, EXIT_USAGE, emit, table
from .installed import check_installation, default_library


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("doctor", parents=[parent], help="check configuration, store, backends and the library")
    p.add_argument("--library", type=Path, default=None, help="libcryptoki_shim.so (default: build/)")
    p.set_defaults(func=doctor)

    p = sub.add_parser("p11-kit-module", parents=[parent], help="write a p11-kit .module file for the library")
    p.add_argument("--library", type=Path, default=None)
    p.add_argument("--name", default="cryptoki-shim")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="file to write (default: ~/.config/pkcs11/modules/<name>.module; '-': stdout)")
    p.set_defaults(func=p11_kit_module)

    p = sub.add_parser("store-key-create", parents=[parent],
                       help="make a store key file ([store] key_file): 32 random bytes, mode 0600")
    p.add_argument("path", type=Path, help="the file to create (never replaced if it exists)")
    p.set_defaults(func=store_key_create)


class Steps:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, step: str, status: str, detail: str) -> None:
        self.rows.append({"step": step, "status": status, "detail": detail})

    @property
    def failed(self) -> bool:
        return any(r["status"] == "FAIL" for r in self.rows)

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)

    @property
    def clean(self) -> bool:
        """No failure and no warning: doctor's exit 0 (issue 21: it warned, then said "all good")."""
        return not self.failed and not self.count("warn")

    def verdict(self) -> str:
        if self.clean:
            return "all good"
        return f"problems found: {self.count('FAIL')} failure(s), {self.count('warn')} warning(s)"


def _check_config(steps: Steps) -> config_mod.Config | None:
    try:
        path = config_mod.find_config_file()
        cfg = config_mod.load()
    except config_mod.ConfigError as exc:
        steps.add("config", "FAIL", str(exc))
        return None
    searched = " or ".join(str(p) for p in config_mod.search_paths())
    steps.add("config", "ok", f"{path or f'no file ({searched}): built-in defaults'}; slots {[s.id for s in cfg.slots]}")
    for problem in diagnostics.problems(cfg):  # what config-check reports: each one fails clients later
        steps.add(f"config: {problem.key}", "warn", str(problem))
    return cfg


def _check_store(steps: Steps, cfg: config_mod.Config) -> Any:
    from sqlalchemy.engine import make_url

    url = make_url(cfg.store_url)
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database)
        if not path.exists():
            steps.add("store", "info", f"{path} does not exist yet (created at the first use)")
        else:
            st = path.stat()
            mode = stat.S_IMODE(st.st_mode)
            dmode = stat.S_IMODE(path.parent.stat().st_mode)
            problems = []
            if st.st_uid != os.getuid():
                problems.append(f"owned by uid {st.st_uid}, not you ({os.getuid()})")
            if not os.access(path, os.R_OK | os.W_OK):
                problems.append("not readable and writable by you")
            if dmode & 0o022:
                problems.append(f"directory mode {dmode:o}: others may replace the file")
            steps.add("store permissions", "warn" if problems else "ok",
                      "; ".join(problems) or f"{path} mode {mode:o}, directory {dmode:o}")
            exposed = _exposed_store_files(path)
            if exposed:  # issue 15: a copy of the file is an offline PIN search
                steps.add("store file modes", "FAIL", "readable by group/others (a copy allows offline PIN "
                          "guessing; chmod 600): " + ", ".join(exposed))
    from ..errors import CryptokiError
    from ..store import Store
    from ..store.pg import safe_url

    shown = safe_url(cfg.store_url)
    try:
        store = Store(cfg.store_url, key_file=cfg.store_key_file, connect=cfg.store_connect,
                      connect_timeout=cfg.store_connect_timeout)
    except (CryptokiError, Exception) as exc:
        steps.add("store", "FAIL", f"{shown}: {exc}")
        return None
    steps.add("store", "ok", f"{shown} opened, schema current")
    try:
        probed = store.probe()
    except (CryptokiError, Exception) as exc:
        steps.add("store server", "FAIL", str(exc))
        probed = None
    if probed is not None:
        steps.add("store server", "ok" if probed[0] else "FAIL", probed[1])
    if cfg.store_key_file:
        _check_key_file(steps, cfg.store_key_file)
    return store


def _check_key_file(steps: Steps, path: str) -> None:
    from ..errors import CryptokiError
    from ..store import key_file

    try:
        kf = key_file.load(path)
    except CryptokiError as exc:
        steps.add("store key file", "FAIL", str(exc))
        return
    steps.add("store key file", "ok", f"{path} (id {kf.key_id}) seals the PIN records")


#: The database and the files SQLite keeps beside it (same content, same exposure).
STORE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _exposed_store_files(db: Path) -> list[str]:
    """``name mode`` of each store file that group or others can access."""
    from ..private_files import is_private

    found = []
    for suffix in STORE_SUFFIXES:
        f = Path(f"{db}{suffix}")
        try:
            mode = stat.S_IMODE(f.stat().st_mode)
        except FileNotFoundError:
            continue
        if not is_private(mode):
            found.append(f"{f.name} {mode:o}")
    return found


def _check_tokens(steps: Steps, cfg: config_mod.Config, store: Any) -> None:
    for slot in cfg.slots:
        rec = store.token(slot.id)
        if rec is None:
            steps.add(f"slot {slot.id} token", "warn", "not initialized (cryptoki-shim init-token)")
            continue
        detail = f"{rec.label.decode('utf-8', 'replace').strip()!r} serial {rec.serial}"
        status = "ok"
        if rec.user_pin is None:
            status, detail = "warn", detail + "; no user PIN (cryptoki-shim unlock-pin)"
        elif rec.user_pin.failures >= slot.max_pin_failures:
            status, detail = "warn", detail + "; user PIN LOCKED (cryptoki-shim unlock-pin)"
        steps.add(f"slot {slot.id} token", status, detail)


def _check_backends(steps: Steps, cfg: config_mod.Config) -> None:
    """Each TPM / upstream backend a slot configures, probed for real: the upstream module
    loaded, its token found and logged in to (``UpstreamBackend.probe``); the TPM opened
    through its TCTI and asked for a primary key (``_probe_tpm``)."""
    from .. import backends

    for slot in cfg.slots:
        for name in ("tpm", "upstream"):
            if not getattr(slot, name, None) and slot.backend != name:
                continue
            try:
                made = backends.make_backends(slot)
                backend = made.get(backends.BY_NAME[name])
                probe = getattr(backend, "probe", None)
                detail = probe() if callable(probe) else _probe_tpm(slot)
                steps.add(f"slot {slot.id} {name}", "ok", str(detail))
            except Exception as exc:  # an unreachable TPM / upstream library is the finding
                steps.add(f"slot {slot.id} {name}", "FAIL", f"{type(exc).__name__}: {exc}")


def _probe_tpm(slot: config_mod.SlotConfig) -> str:
    """Open the slot's TPM as an operation does (its lock, its TCTI) and create the storage
    primary key: reachable, and answering commands."""
    from ..backends import tpm_conn

    tpm = slot.tpm or {}
    tcti = tpm.get("tcti") or config_mod.TPM_KEYS["tcti"].default
    with tpm_conn.open_tpm(tcti, "doctor probe", lock_file=tpm.get("lock_file") or ""):
        pass
    return f"{tcti}: reachable, storage primary key created"


PROBE = Path(__file__).with_name("probe.py")


def _check_library(steps: Steps, lib: Path) -> None:
    """The probe child runs with the module's log at warning level in a temporary file: a step
    that fails is shown with its CKR name and the module's own reason (issue 21: a bare
    ``rv 0x5``)."""
    import re
    import tempfile

    from .. import spec

    if not lib.is_file():
        steps.add("library", "FAIL", f"{lib} not found (./run build, or --library)")
        return
    with tempfile.TemporaryDirectory(prefix="cryptoki-shim-doctor-") as tmp:
        log_file = Path(tmp) / "module.log"
        env = {**os.environ, "CRYPTOKI_SHIM_LOG": str(log_file), "CRYPTOKI_SHIM_LOG_LEVEL": "WARNING"}
        try:
            proc = subprocess.run([sys.executable, str(PROBE), str(lib)], capture_output=True, text=True,
                                  timeout=60, env=env)
        except subprocess.TimeoutExpired:
            steps.add("library", "FAIL", f"{lib}: no answer within 60 s (hang at load?)")
            return
        logged = [ln.split(": ", 1)[-1] for ln in (log_file.read_text(errors="replace").splitlines()
                                                    if log_file.exists() else [])]
    got = 0
    for line in proc.stdout.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        got += 1
        detail = re.sub(r"rv (0x[0-9a-f]+)", lambda m: spec.ckr_name(int(m.group(1), 16)), r["detail"])
        if not r["ok"] and logged:
            detail = f"{detail}; the module logged: {' | '.join(logged[-3:])}"
        steps.add(f"library: {r['step']}", "ok" if r["ok"] else "FAIL", detail)
    if proc.returncode != 0 and not got:
        steps.add("library", "FAIL", f"probe exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    elif proc.returncode == 0 and logged:
        steps.add("library log", "warn", " | ".join(logged[-3:]))


def doctor(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
    steps = Steps()
    cfg = _check_config(steps)
    if cfg is not None:
        store = _check_store(steps, cfg)
        if store is not None:
            _check_tokens(steps, cfg, store)
            store.close()
        _check_backends(steps, cfg)
    lib = args.library or default_library()
    _check_library(steps, lib)
    check_installation(steps, lib)
    emit(args, {"ok": steps.clean, "steps": steps.rows},
         lambda: table(steps.rows, ["step", "status", "detail"]) + "\n\n" + steps.verdict())
    return 0 if steps.clean else EXIT_CHECK


def store_key_create(args: argparse.Namespace) -> int:
    """``store-key-create PATH``: the key file of ``[store] key_file`` (store/key_file.py)."""
    from ..store import key_file

    try:
        kf = key_file.create(str(args.path))
    except FileExistsError:
        raise CliError(f"{args.path} exists; a key file is never replaced (the PIN records sealed under it "
                       "would be lost)", EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"{args.path}: {exc.strerror}", EXIT_USAGE) from None
    emit(args, {"ok": True, "file": str(args.path), "key_id": kf.key_id},
         f"wrote {args.path} (mode 600, id {kf.key_id})\n  configure: [store] key_file = \"{args.path}\"\n"
         "  back it up apart from the store: without it no PIN opens the tokens")
    return 0


def p11_kit_module(args: argparse.Namespace) -> int:
    lib = (args.library or default_library()).resolve()
    if not lib.is_file():
        raise CliError(f"{lib} not found (./run build, or --library)", EXIT_USAGE)
    text = (f"# cryptoki-shim: PKCS#11 provider (written by cryptoki-shim p11-kit-module)\n"
            f"module: {lib}\n"
            "critical: no\n"
            "trust-policy: no\n")
    if args.output is not None and str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    out = args.output or xdg / "pkcs11" / "modules" / f"{args.name}.module"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    emit(args, {"ok": True, "file": str(out), "module": str(lib)},
         f"wrote {out}\n  check: p11-kit list-modules | grep -A3 {args.name}")
    return 0
