"""Files that hold store data, secrets or logs are created 0600, whatever the umask.

Issue 15 item 5: with a 022 umask, SQLite made ``store.db`` 0644, and its ``-wal``/``-shm``
copy the database's mode (SQLite's unix VFS gives journal, WAL and shared-memory files the
permissions of their database), so every local user could copy the PIN records and try
PINs offline; the debug log was 0644 too. The rule: a file the module or the CLI creates
that holds store data, key material (even encrypted), key files, backups or logs is created
with mode 0600 (the kernel applies the umask, which can only remove bits), then
``fchmod(0600)`` so an odd umask (0277) cannot leave it unwritable: the store database, the
debug log and the TPM lock file here, the C side's start-up log in ``native/shim.c``, the
store key file in ``store/key_file.py``, backups in
``cli/common.write_private_output``, the audit log and its key in ``audit.py``. Files that
are public by nature (the p11-kit ``.module`` registration other users' p11-kit must read,
a generated ``docs/configuration.md``, an exported public key, an attestation) keep the
umask.

An existing file keeps its mode when it is appended to (an operator may have chosen
group access deliberately, e.g. a log read by a monitoring group); ``cryptoki-shim doctor``
reports a store that is readable by group or others as a failure.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def create_new(path: str | os.PathLike[str], flags: int = os.O_WRONLY) -> int:
    """``os.open(path, flags | O_CREAT | O_EXCL)`` with mode 0600, then ``fchmod``-ed to
    exactly 0600; ``FileExistsError`` if the name exists (a symlink included)."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, MODE)
    try:
        os.fchmod(fd, MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def open_private(path: str | os.PathLike[str], flags: int, *, follow: bool = True) -> int:
    """``os.open(path, flags | O_CREAT)`` with mode 0600; a file this call created is
    ``fchmod``-ed to exactly 0600. ``follow=False``: the last component must not be a
    symlink (a file we would truncate and overwrite)."""
    flags |= os.O_CLOEXEC | (0 if follow else _NOFOLLOW)
    try:
        return create_new(path, flags)
    except FileExistsError:
        return os.open(path, flags)


def create_empty(path: str | os.PathLike[str]) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist (the store's database, so
    that SQLite's ``-wal``/``-shm``/``-journal`` inherit 0600); True if this call made it."""
    try:
        os.close(create_new(path))
    except FileExistsError:
        return False
    return True


def is_private(mode: int) -> bool:
    """True when neither group nor others have any access bit."""
    return not mode & 0o077


class SecretFileError(ValueError):
    """A secret key file that cannot be trusted: not a regular file, readable by others, or
    not a key of the right length. The message names the file and what to fix."""


def read_secret(path: str, length: int, what: str) -> bytes:
    """The ``length``-byte key in ``path`` (raw, or hex digits with an optional newline).

    One rule for every secret key file (the store key file, the audit key): a file group or
    others can access is refused, like ssh's identity files, since a key others can read
    proves nothing. ``OSError`` of the open propagates (the caller words a missing file).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecretFileError(f"{what} {path}: not a regular file")
        if not is_private(st.st_mode):
            raise SecretFileError(f"{what} {path}: mode {stat.S_IMODE(st.st_mode):04o}, group/others have "
                                  "access (chmod 600)")
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    if len(raw) == length:
        return raw
    try:
        key = bytes.fromhex(raw.strip().decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != length:
        raise SecretFileError(f"{what} {path}: want {length} random bytes (or {2 * length} hex digits), "
                              f"got {len(raw)} bytes")
    return key


class PrivateFileHandler(logging.FileHandler):
    """``logging.FileHandler`` whose file, when it creates it, is 0600 (a debug log names
    slots, objects and clients: not for every local user)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, delay=True)

    def _open(self):
        fd = open_private(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)
