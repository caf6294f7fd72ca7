"""What every admin command shares: exit codes, output (table or --json), PIN input, and the
``Admin`` context that drives the library's own core.

Why the core and not the ``.so``: the built library is a thin C/cffi layer that reads C
arguments and calls ``cryptoki_shim.core`` (``MODULE`` with its tokens, sessions and object
functions). The CLI calls exactly that code — the same attribute validator, the same at-rest
sealing, the same store transactions, the same audit hooks — so there is no second
implementation of anything, and it is safe next to running clients for the same reason two
clients are safe together (the store's locking and change detection). ``doctor`` is the one
command that loads the ``.so`` itself, in a child process, as a client would.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .. import config as config_mod
from .. import spec
from ..spec_ints import CKF_RW_SESSION, CKF_SERIAL_SESSION
from ..errors import CryptokiError

EXIT_OK = 0
EXIT_FAILED = 1      # a PKCS#11 operation failed (the CKR is printed)
EXIT_USAGE = 2       # bad arguments (argparse uses 2 as well)
EXIT_CONFIG = 3      # the configuration is invalid
EXIT_CHECK = 4       # a check found problems (doctor, audit verify, restore integrity)
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (`list | head`): 128 + SIGPIPE, as a shell reports

RW = CKF_SERIAL_SESSION | CKF_RW_SESSION


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- output


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str] | str) -> None:
    """``--json``: the data as JSON on stdout; otherwise the human text."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        text = human() if callable(human) else human
        if text:
            print(text)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "  (none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  " + "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


class Progress:
    """A one-line status on stderr for slow work (KDF, many objects); silent unless a tty."""

    def __init__(self, what: str, total: int | None = None, enabled: bool | None = None) -> None:
        self.what, self.total, self.done = what, total, 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()

    def __enter__(self) -> "Progress":
        self._show()
        return self

    def step(self, n: int = 1) -> None:
        self.done += n
        self._show()

    def _show(self, end: str = "") -> None:
        if not self.enabled:
            return
        count = f" {self.done}/{self.total}" if self.total is not None else " ..."
        sys.stderr.write(f"\r{self.what}{count}{end}")
        sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._show(f" ({time.monotonic() - self.start:.1f} s)\n")


# --------------------------------------------------------------------------- output files


def write_private_output(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file a command produces (``backup -o``): mode 0600, never through a symlink.

    ``backup -o`` followed symlinks (issue 15, item 12): whoever can write the directory could
    point the name at another of the operator's files and have it overwritten, or at a place
    others can read. So a name that is a symbolic link (or not a regular file) is refused, and
    the data goes to a new file in the same directory, opened ``O_CREAT | O_EXCL | O_NOFOLLOW``
    with mode 0600, which then replaces the name (``rename(2)`` replaces the directory entry:
    it never writes through a link, and a hard link elsewhere keeps its old content).
    """
    target = Path(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}", EXIT_USAGE) from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise CliError(f"{path}: is a symbolic link; refusing to write through it (give the real path)", EXIT_USAGE)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise CliError(f"{path}: not a regular file", EXIT_USAGE)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise CliError(f"{path}: cannot create it: {exc.strerror}", EXIT_USAGE) from None
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"{path}: cannot write it: {exc.strerror}", EXIT_USAGE) from None


# --------------------------------------------------------------------------- secrets


def add_secret_options(p: argparse.ArgumentParser, name: str, what: str) -> None:
    """``--<name>-env VAR`` / ``--<name>-file PATH|-``; a prompt when neither and a tty."""
    p.add_argument(f"--{name}-env", metavar="VAR", help=f"read the {what} from this environment variable")
    p.add_argument(f"--{name}-file", metavar="PATH", help=f"read the {what} from this file ('-': stdin)")


def secret(args: argparse.Namespace, name: str, what: str, *, required: bool = True,
           confirm: bool = False) -> bytes | None:
    """The secret given by ``--<name>-env``/``--<name>-file``, or typed at a prompt.

    Never a plain ``--pin VALUE`` option: command lines are visible to every user (ps).
    """
    env = getattr(args, f"{name.replace('-', '_')}_env", None)
    path = getattr(args, f"{name.replace('-', '_')}_file", None)
    if env:
        if env not in os.environ:
            raise CliError(f"--{name}-env {env}: the variable is not set", EXIT_USAGE)
        return os.environ[env].encode()
    if path:
        try:
            text = sys.stdin.readline() if path == "-" else open(path, encoding="utf-8").read()
        except OSError as exc:
            raise CliError(f"--{name}-file {path}: {exc.strerror}", EXIT_USAGE) from None
        return text.rstrip("\n").encode()
    if not required:
        return None
    if not sys.stdin.isatty():
        raise CliError(f"the {what} is needed: give --{name}-env or --{name}-file (no terminal to prompt on)",
                       EXIT_USAGE)
    value = getpass.getpass(f"{what}: ").encode()
    if confirm and getpass.getpass(f"{what} again: ").encode() != value:
        raise CliError(f"the two {what}s differ", EXIT_USAGE)
    return value


# --------------------------------------------------------------------------- the core


class Admin:
    """The library's core, initialized from the configuration in force (``--config``).

    ``with Admin(args) as adm:`` runs ``C_Initialize``'s work; leaving runs ``C_Finalize``'s
    (closing the sessions, which logs out).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        if getattr(args, "config", None):
            os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
        from ..core.module import MODULE

        self.module = MODULE
        self.sessions: list[int] = []

    def __enter__(self) -> "Admin":
        try:
            config_mod.load()  # a precise ConfigError before the core turns it into a CKR
        except config_mod.ConfigError as exc:
            raise CliError(f"configuration: {exc}", EXIT_CONFIG) from None
        if self.module.initialized:
            self.module.finalize()
        self.module.initialize()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.module.initialized:
            self.module.finalize()

    @property
    def config(self) -> config_mod.Config:
        assert self.module.config is not None
        return self.module.config

    def slot_ids(self) -> list[int]:
        return self.module.slot_ids()

    def token(self, slot: int):
        return self.module.slot(slot).token

    def session(self, slot: int, *, login: int | None = None, pin: bytes | None = None):
        """A RW session of ``slot``, logged in as ``login`` when given."""
        handle = self.module.open_session(slot, RW)
        session = self.module.session(handle)
        if login is not None:
            assert pin is not None
            with Progress("checking the PIN (Argon2id)"):
                self.module.login(session, login, pin)
        return session

    def objects(self, session, template: Iterable[tuple[int, Any]] = ()) -> list:
        """The objects visible in ``session`` matching ``template`` (C_FindObjects*)."""
        session.find_init(list(template))
        try:
            handles = session.find(1 << 20)
        finally:
            session.find_final()
        return [session.object(h) for h in handles]


def run_command(fn: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run one command, mapping failures to exit codes and messages (JSON with --json)."""
    try:
        return fn(args) or EXIT_OK
    except CliError as exc:
        return _fail(args, str(exc), exc.code)
    except CryptokiError as exc:
        detail = f": {exc}" if str(exc) and str(exc) != hex(exc.ckr) else ""
        return _fail(args, f"{spec.ckr_name(exc.ckr)}{detail}", EXIT_FAILED, ckr=spec.ckr_name(exc.ckr))


def _fail(args: argparse.Namespace, message: str, code: int, **extra: Any) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message, "exit": code, **extra}))
    else:
        print(f"cryptoki-shim {getattr(args, 'command', '')}: {message}", file=sys.stderr)
    return code


def hexid(value: Any) -> str | None:
    return value.hex() if isinstance(value, (bytes, bytearray)) else None


def text(value: Any) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else None
