"""The module is a guest in its host's process: its crypto and its output stay its own (issue 25).

What this does, once, when the embedding init code attaches the entries (the first C_* call
into Python, before any of our code can import ``cryptography``):

* **The wheel's OpenSSL never reads the host's configuration.** The ``cryptography`` wheel
  carries its own OpenSSL, which reads ``$OPENSSL_CONF`` when the extension initialises it,
  at import. A host's file can name ``default_properties = ?provider=pkcs11`` or load
  pkcs11-provider early, and that provider, started inside our call, calls back into us
  (issue 25, items 1 and 2). So the extension is imported here with each of the variables
  that steer OpenSSL's start-up (``NEUTRAL_OPENSSL_ENV``) that the host has set pointing at
  nothing, and the host's values are put back right after. A variable the host has not set
  is left alone: the wheel then looks in its compiled-in directories (under
  ``/opt/pyca/cryptography/openssl``, which do not exist on a normal system and only root
  could create), and our defaults are the built-in ones (the default and legacy providers
  are compiled into the wheel). Environment variables are the only way in: the wheel's
  OpenSSL symbols are not exported, so no ``OPENSSL_init_crypto(NO_LOAD_CONFIG)`` can be
  called on it. Only values of variables that exist are swapped (glibc replaces the entry's
  pointer in place; the environment array is never reallocated, which a concurrent
  ``getenv`` in another host thread could not survive), for the import of one extension
  (a few ms), once per process. A host thread that reads one of these variables in that
  window sees the neutral value.
* **The system OpenSSL is not started by us.** In a C host (we own the interpreter) the
  stdlib's OpenSSL bindings are made unimportable (``SYSTEM_OPENSSL_MODULES``): SQLAlchemy
  imports asyncio, which imports ``ssl`` if it can, and ``hashlib``, which imports
  ``_hashlib`` if it can; their start-up loads the *host's* OpenSSL configuration into the
  host's library (seen: pkcs11-provider, early-loaded, called C_Initialize on us from
  inside our C_InitToken). Nothing of ours speaks TLS or uses hashlib on a C_* path
  (native/digest.c and pyca do); asyncio works without ``ssl``, and ``hashlib``/``hmac``
  fall back to CPython's built-in hashes (MD5, SHA-1, SHA-2, SHA-3, BLAKE2). In a Python
  host these modules are the host's to have.
* **A Python host's copy of a dependency never replaces ours silently.** The init code puts
  our venv's site-packages first on ``sys.path``; a dependency the host had already imported
  from elsewhere is accepted only in the version our venv holds (``check_dependencies``):
  otherwise the module refuses to start, with a log line that names both (issue 15, item 11:
  Debian's python3-cryptography 38 has no Argon2id, and C_Login failed later with
  CKR_GENERAL_ERROR).
* **Nothing reaches the host's stdout or stderr** (``silence_output``): when we started the
  interpreter (a C host), ``sys.stdout``/``sys.stderr`` become a sink that hands each line to
  our logger, so warnings, cffi's "Exception ignored from cffi callback" and any library's
  print end in our log or nowhere. In a Python host those streams are the host's; there an
  unraisable-exception hook takes the reports that come from our entries, and a
  ``warnings.showwarning`` wrapper the warnings raised in our package, and each passes
  every other one on to the host's.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

_log = logging.getLogger(__name__)

#: What OpenSSL reads at start-up, and the value it sees while our copy starts: os.devnull is
#: an empty configuration file, and as a module or engine directory it holds nothing.
NEUTRAL_OPENSSL_ENV = {
    "OPENSSL_CONF": os.devnull,
    "OPENSSL_MODULES": os.devnull,
    "OPENSSL_ENGINES": os.devnull,
}

#: Stdlib modules whose import starts the system libssl/libcrypto (see the module docstring).
SYSTEM_OPENSSL_MODULES = ("ssl", "_ssl", "_hashlib")

#: The extension whose import starts the wheel's OpenSSL.
OPENSSL_EXTENSION = "cryptography.hazmat.bindings._rust"

#: Our third-party dependencies, by import name -> distribution name.
DEPENDENCIES = {
    "cryptography": "cryptography",
    "sqlalchemy": "SQLAlchemy",
    "pyrage": "pyrage",
    "tpm2_pytss": "tpm2-pytss",
    "argon2": "argon2-cffi",  # the PIN KDF (store/crypto.py)
    "_argon2_cffi_bindings": "argon2-cffi-bindings",
    # the optional ones (pyproject extras): checked where our venv has them
    "pqcrypto": "pqcrypto",  # extra 'pqc': ML-KEM-512, SLH-DSA (PQClean; links libc only, no OpenSSL)
    "psycopg": "psycopg",  # extra 'postgresql': the store on PostgreSQL (store/pg.py)
}
#: Those a venv may lack: a host's copy of one of them is then no conflict (nothing of ours to prefer).
OPTIONAL_DEPENDENCIES = frozenset({"pqcrypto", "psycopg"})


class DependencyConflict(RuntimeError):
    """A Python host already runs another version of one of our dependencies."""


def import_openssl_hermetically() -> bool:
    """Import the wheel's OpenSSL with the neutral start-up environment; True if it was ours
    to start (False: the host had imported it before loading us, and its start-up read the
    host's environment, which we can only report)."""
    if OPENSSL_EXTENSION in sys.modules:
        _log.warning("the host imported %s before loading us: its OpenSSL configuration "
                     "(OPENSSL_CONF) applies to our crypto too", OPENSSL_EXTENSION)
        return False
    saved = {name: os.environ[name] for name in NEUTRAL_OPENSSL_ENV if name in os.environ}
    try:
        os.environ.update({name: NEUTRAL_OPENSSL_ENV[name] for name in saved})
        __import__(OPENSSL_EXTENSION)
    finally:
        os.environ.update(saved)
    return True


def keep_system_openssl_unstarted(owns_interpreter: bool) -> None:
    """In our own interpreter, make ``SYSTEM_OPENSSL_MODULES`` unimportable (an ImportError,
    which asyncio and every stdlib user of ``ssl`` handle), unless already imported."""
    if not owns_interpreter:
        return
    for name in SYSTEM_OPENSSL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def _under(path: str | None, dirs: list[str]) -> bool:
    if not path:
        return False
    p = Path(path).resolve()
    return any(p.is_relative_to(Path(d).resolve()) for d in dirs)


def _our_version(dist: str, site_dirs: list[str]) -> str | None:
    for found in metadata.distributions(name=dist, path=site_dirs):
        return found.version
    return None


def check_dependencies(site_dirs: list[str]) -> None:
    """Refuse (DependencyConflict) when a dependency already imported by the host is not the
    version in our venv's ``site_dirs`` (see the module docstring)."""
    for module, dist in DEPENDENCIES.items():
        loaded = sys.modules.get(module)
        if loaded is None or _under(getattr(loaded, "__file__", None), site_dirs):
            continue
        ours = _our_version(dist, site_dirs)
        theirs = getattr(loaded, "__version__", None)
        if ours is not None and theirs == ours or ours is None and module in OPTIONAL_DEPENDENCIES:
            continue
        raise DependencyConflict(
            f"the host process already imported {module} {theirs or '(unknown version)'} from "
            f"{getattr(loaded, '__file__', '?')}; cryptoki-shim needs its own {module} {ours or ''} "
            f"from {', '.join(site_dirs)}: load the module before the host imports {module}, or "
            "serve it out of process (p11-kit remoting, see docs/clients.md)")


# ---------------------------------------------------------------------- output


class _LogSink:
    """A text stream that hands complete lines to our logger (never to a file descriptor).

    Re-entry from the logger itself (a handler that fails and reports on sys.stderr) is
    dropped, so a broken log can never loop."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(f"cryptoki_shim.{name}")
        self._buf = ""
        self._busy = threading.local()

    def write(self, text: str) -> int:
        if getattr(self._busy, "on", False):
            return len(text)
        self._busy.on = True
        try:
            self._buf += text
            *lines, self._buf = self._buf.split("\n")
            for line in lines:
                if line.strip():
                    self._log.warning("%s", line)
        except BaseException:
            pass
        finally:
            self._busy.on = False
        return len(text)

    def writelines(self, lines: Iterator[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # no descriptor: code that wants one must not get the host's
        raise OSError("cryptoki-shim's output sink has no file descriptor")

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


def _from_us(unraisable: Any) -> bool:
    """An unraisable report that comes from one of our cffi entries."""
    if "cffi callback" not in str(getattr(unraisable, "err_msg", "") or ""):
        return False
    tb = getattr(unraisable, "exc_traceback", None)
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(("cryptoki_shim", "_cryptoki_shim")):
            return True
        tb = tb.tb_next
    return "cryptoki_shim" in repr(getattr(unraisable, "object", "")) or "py_C_" in str(unraisable.err_msg)


def silence_output(owns_interpreter: bool) -> None:
    """Keep every report of ours off the host's stdout/stderr (see the module docstring)."""
    log = logging.getLogger("cryptoki_shim.unraisable")
    if owns_interpreter:
        sys.stdout = _LogSink("stdout")
        sys.stderr = _LogSink("stderr")
        logging.raiseExceptions = False  # our interpreter: logging's own errors stay quiet

        def hook(unraisable: Any) -> None:
            try:
                log.error("%s", unraisable.err_msg or "exception ignored",
                          exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))
            except BaseException:
                pass

        sys.unraisablehook = hook
        return
    previous = sys.unraisablehook

    def host_hook(unraisable: Any) -> None:
        try:
            mine = _from_us(unraisable)
        except BaseException:
            mine = False
        if not mine:
            previous(unraisable)
            return
        try:
            log.error("%s", unraisable.err_msg or "exception ignored",
                      exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))
        except BaseException:
            pass

    sys.unraisablehook = host_hook

    import warnings

    show = warnings.showwarning
    ours = str(Path(__file__).resolve().parent.parent)

    def host_showwarning(message: Any, category: Any, filename: str, lineno: int, *args: Any, **kw: Any) -> None:
        try:
            mine = str(Path(filename).resolve()).startswith(ours)
        except BaseException:
            mine = False
        if not mine:
            show(message, category, filename, lineno, *args, **kw)
            return
        try:
            logging.getLogger("cryptoki_shim.warnings").warning(
                "%s:%s: %s: %s", filename, lineno, getattr(category, "__name__", category), message)
        except BaseException:
            pass

    warnings.showwarning = host_showwarning
