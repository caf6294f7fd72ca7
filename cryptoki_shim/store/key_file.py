"""The store key file (``[store] key_file``): PIN records that a copy of the database alone
cannot open.

Issue 15 item 5: a PIN record is ``AES-GCM(Argon2id(PIN), token key)``; with a copy of
``store.db`` an attacker tries PINs offline at ~0.13 s each, so a 4-digit PIN falls in
~22 minutes. With a key file configured, every stored PIN record's ``wrapped_key`` is
additionally ``AES-256-GCM(file key, that blob)``, so the records need the 32 random bytes of
a file that lives outside the store (``/etc/cryptoki-shim/store.key``, 0600, another
directory, ideally another backup set). What each combination gives an attacker:

- the database alone (a backup, a stolen disk image of ``/var/lib``): nothing to test a PIN
  against; a search is a search of the 256-bit file key.
- the database and the key file: the offline search again (Argon2id cost per guess); the
  key file is no PIN and no substitute for a strong one.
- neither, but the host: as without the file (the module reads it at every open).

The layer is applied by the store itself (``Store.bind_pin``) when it writes a PIN record,
and to the records of an existing store the first time it is opened with a key file; the
core removes it (``Store.unbind_pin``) before trying the PIN, exactly like the upstream KEK
layer (``backends/upstream_kek.py``). ``params["key_file"]`` names the file's key id (the
first 8 bytes of a SHA-256 of the key, nothing secret), so a record bound to one file and a
store configured with another, or with none, answer ``CKR_DEVICE_ERROR`` with both ids in the
log — never ``CKR_PIN_INCORRECT`` for the right PIN, and no failure is counted.

Copies of the database taken before the first open with the key file still hold unbound
records: destroy them. Losing the key file loses the token (back it up apart from the store).
"""

from __future__ import annotations

import dataclasses
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import private_files
from ..errors import CryptokiError
from ..spec import CKR_DEVICE_ERROR
from .records import PinRecord

log = logging.getLogger(__name__)

KEY_LEN = 32
NONCE_LEN = 12
PARAM = "key_file"
_AAD = b"cryptoki-shim/store-key-file/v1\x00"


class KeyFileError(CryptokiError):
    """The key file is missing, unreadable, malformed, exposed, or not the records' one."""

    def __init__(self, message: str) -> None:
        super().__init__(CKR_DEVICE_ERROR, message)


@dataclasses.dataclass(frozen=True)
class KeyFile:
    path: str
    key: bytes = dataclasses.field(repr=False)

    @property
    def key_id(self) -> str:
        h = hashes.Hash(hashes.SHA256())
        h.update(b"cryptoki-shim/store-key-file/id\x00" + self.key)
        return h.finalize()[:8].hex()

    def wrap(self, rec: PinRecord) -> PinRecord:
        """The record as stored: its ``wrapped_key`` sealed under the file key."""
        if PARAM in rec.params:
            return rec
        nonce = os.urandom(NONCE_LEN)
        blob = nonce + AESGCM(self.key).encrypt(nonce, rec.wrapped_key, _AAD + self.key_id.encode())
        return dataclasses.replace(rec, wrapped_key=blob, params={**rec.params, PARAM: self.key_id})

    def derive(self, info: bytes) -> bytes:
        """A 32-byte key for another purpose (HKDF-SHA256 of the file key with ``info``):
        the sealing key of non-private objects (``crypto.public_object_key``), so a copy of
        the database alone cannot read them either."""
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(hashes.SHA256(), KEY_LEN, salt=None, info=_AAD + info).derive(self.key)

    def unwrap(self, rec: PinRecord) -> PinRecord:
        kid = rec.params[PARAM]
        if kid != self.key_id:
            raise KeyFileError(f"PIN record is bound to store key file id {kid}, but {self.path} has id {self.key_id}")
        blob = rec.wrapped_key
        try:
            inner = AESGCM(self.key).decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], _AAD + kid.encode())
        except InvalidTag:
            raise KeyFileError(f"PIN record does not open under the store key file {self.path} (edited?)") from None
        params = {k: v for k, v in rec.params.items() if k != PARAM}
        return dataclasses.replace(rec, wrapped_key=inner, params=params)


def load(path: str) -> KeyFile:
    """Read the key file (32 raw bytes or 64 hex digits); refused if group or others can
    access it, like ssh's identity files (``private_files.read_secret``)."""
    try:
        return KeyFile(path, private_files.read_secret(path, KEY_LEN, "store key file"))
    except OSError as exc:
        raise KeyFileError(f"store key file {path}: {exc.strerror}") from None
    except private_files.SecretFileError as exc:
        raise KeyFileError(str(exc)) from None


def create(path: str) -> KeyFile:
    """A new key file with 32 random bytes, mode 0600; an existing file is never replaced."""
    key = os.urandom(KEY_LEN)
    fd = private_files.create_new(path)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return KeyFile(path, key)
