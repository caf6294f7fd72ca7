"""Issue 15 item 5: the store at rest — file modes, private data sealed, no plaintext left
behind, clear attributes bound to the token key, the store key file.

Everything goes through the built library (``tests/p11.py``); the attacker's moves (reading
and editing the SQLite file between runs) use the ``sqlite3`` module, as an attacker with a
copy of the file or write access to it would. On PostgreSQL (``backend`` "pg") the attacker
edits rows with SQL as the database owner (``raw_db``), and "the files" are what the server
wrote: the database's heap files and the newest WAL (``tests/pg.py`` ``Cluster.files_of``).
What PostgreSQL cannot promise (a row rewritten or deleted stays in the old tuple until
VACUUM and in the WAL archive: no ``secure_delete``) is asserted on SQLite only, and said in
docs/ha.md.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
from store_helpers import SQLITE_ONLY

from cryptoki_shim import spec
from cryptoki_shim.attributes import codec
from cryptoki_shim.store import crypto as at_rest
from cryptoki_shim.store import Store
import pg
from p11 import SO_PIN, USER_PIN, P11

SUFFIXES = ("", "-wal", "-shm")


# ----------------------------------------------------------------------------- helpers


def db_of(conf: Path) -> Path:
    return conf.parent / "store.db"


def url_of(conf: Path) -> str:
    return str(tomllib.loads(conf.read_text())["store"]["url"])


def on_pg(conf: Path) -> bool:
    return url_of(conf).startswith("postgresql")


class _PgRaw:
    """A psycopg connection that takes the sqlite3 statements of this file (``?``
    placeholders, 0/1 for is_sealed)."""

    def __init__(self, conf: Path) -> None:
        import psycopg

        assert pg.ACTIVE is not None
        self.conn = psycopg.connect(pg.ACTIVE.dsn(pg.database_of(url_of(conf))))

    def execute(self, sql: str, params: tuple = ()) -> Any:
        sql = (sql.replace("VALUES (?, ?, ?, ?)", "VALUES (?, ?, ?, ?::int::boolean)")
               .replace("?, 0)", "?, false)").replace("is_sealed = 1", "is_sealed").replace("?", "%s"))
        return self.conn.execute(sql, params)

    def __enter__(self) -> _PgRaw:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.__exit__(*exc)


def raw_db(conf: Path) -> Any:
    """The attacker's (or the database owner's) own connection to the store."""
    return _PgRaw(conf) if on_pg(conf) else sqlite3.connect(db_of(conf))


def store_bytes(conf: Path) -> dict[str, bytes]:
    """Every file of the store (database, WAL, shared memory) as it is on disk now."""
    if on_pg(conf):
        assert pg.ACTIVE is not None
        return {"pg": pg.ACTIVE.files_of(pg.database_of(url_of(conf)))}
    db = db_of(conf)
    return {s or "db": Path(f"{db}{s}").read_bytes() for s in SUFFIXES if Path(f"{db}{s}").exists()}


def assert_absent(conf: Path, needle: bytes) -> None:
    files = store_bytes(conf)
    assert files, "no store files"
    for name, raw in files.items():
        assert needle not in raw, f"{needle!r} found in {name}"


def data_obj(value: bytes, **extra: Any) -> dict[int, Any]:
    attrs = {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"data", spec.CKA_VALUE: value}
    attrs.update({getattr(spec, k): v for k, v in extra.items()})
    return attrs


def aes_key(value: bytes, **extra: Any) -> dict[int, Any]:
    attrs = {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_TOKEN: True,
             spec.CKA_VALUE: value, spec.CKA_LABEL: b"aes", spec.CKA_SENSITIVE: True, spec.CKA_EXTRACTABLE: False,
             spec.CKA_ENCRYPT: True, spec.CKA_DECRYPT: True}
    attrs.update({getattr(spec, k): v for k, v in extra.items()})
    return attrs


def reopen(p11: P11) -> int:
    """C_Initialize (a new run on the same files) and a user session."""
    p11.initialize()
    s = p11.open(0)
    p11.login(s, USER_PIN)
    return s


def restart(p11: P11) -> int:
    """C_Finalize, then `reopen`."""
    p11.finalize()
    return reopen(p11)


def edit(conf: Path, sql: str, *args: Any) -> int:
    """The attacker's edit of the store file (the library is finalized meanwhile)."""
    with raw_db(conf) as raw:
        return raw.execute(sql, args).rowcount


def set_attr(conf: Path, unique_id: bytes, attr_type: int, value: Any) -> None:
    """Replace (or add) a clear attribute row of the object with ``unique_id``."""
    oid = oid_of(conf, unique_id)
    with raw_db(conf) as raw:
        before = raw.execute("SELECT value FROM attributes WHERE object_id = ? AND type = ?", (oid, attr_type)).fetchone()
    assert before is None or before[0] != codec.encode(attr_type, value), "the edit must change the row"
    edit(conf, "DELETE FROM attributes WHERE object_id = ? AND type = ?", oid, attr_type)
    edit(conf, "INSERT INTO attributes (object_id, type, value, is_sealed) VALUES (?, ?, ?, 0)",
         oid, attr_type, codec.encode(attr_type, value))


def oid_of(conf: Path, unique_id: bytes) -> int:
    with raw_db(conf) as raw:
        return raw.execute("SELECT id FROM objects WHERE unique_id = ?", (unique_id.decode(),)).fetchone()[0]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def debug_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "debug.log"
    monkeypatch.setenv("CRYPTOKI_SHIM_LOG", str(path))
    monkeypatch.setenv("CRYPTOKI_SHIM_LOG_LEVEL", "DEBUG")
    return path


# ----------------------------------------------------------------------------- a. file modes


@SQLITE_ONLY
def test_store_and_log_files_are_created_0600_whatever_the_umask(umask_022, debug_log, token, user_session,
                                                                  shim_conf):
    """With umask 022 in an existing directory, SQLite made store.db/-wal/-shm 0644 and the
    debug log was 0644: a copy of the file is an offline PIN search for any local user."""
    token.create(user_session, data_obj(b"x"))
    db = db_of(shim_conf)
    files = [Path(f"{db}{s}") for s in SUFFIXES] + [debug_log]
    for f in files:
        assert f.exists(), f
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f"{f.name} {stat.S_IMODE(f.stat().st_mode):o}"


def test_native_start_up_log_is_created_0600(umask_022, lib_path, tmp_path):
    """The C side logs start-up failures itself (before Python runs): its fopen() made the
    log 0644. A C host (pkcs11-tool) with a Python home that does not exist."""
    import subprocess

    log = tmp_path / "native.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOKI_SHIM", "PYTHON"))}
    env.update(CRYPTOKI_SHIM_PYTHONHOME=str(tmp_path / "nowhere"), CRYPTOKI_SHIM_LOG=str(log))
    subprocess.run(["pkcs11-tool", "--module", str(lib_path), "-L"], env=env, capture_output=True, timeout=60)
    assert "no Python standard library" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


# ----------------------------------------------------------------------------- b./c. private data


def test_private_data_value_is_sealed_and_reads_back(token, user_session, shim_conf):
    """The CKA_VALUE of a private CKO_DATA object was stored in clear."""
    secret = b"private-data-7f3a91c2-in-the-store"
    public = b"public-data-55d0e1-in-the-store"
    h = token.create(user_session, data_obj(secret, CKA_PRIVATE=True))
    token.create(user_session, data_obj(public, CKA_PRIVATE=False))
    raw = b"".join(store_bytes(shim_conf).values())
    assert public in raw  # the files read are the right ones
    assert secret not in raw
    s = restart(token)
    [h] = token.find(s, {spec.CKA_VALUE: secret})
    assert token.get(s, h, spec.CKA_VALUE) == secret
    token.logout(s)
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_PRIVATE: True}) == []


def test_destroyed_private_object_leaves_no_plaintext_while_the_store_is_open(token, user_session, shim_conf):
    """Create + destroy, store still open: the value was in the WAL until a checkpoint."""
    secret = b"destroyed-private-value-0c9e44"
    key_value = bytes.fromhex("5c0ffee5" * 8)
    h = token.create(user_session, data_obj(secret, CKA_PRIVATE=True))
    k = token.create(user_session, aes_key(key_value, CKA_SENSITIVE=False, CKA_EXTRACTABLE=True))
    token.destroy(user_session, h)
    token.destroy(user_session, k)
    if not on_pg(shim_conf):
        assert Path(f"{db_of(shim_conf)}-wal").stat().st_size > 0  # the WAL is still there
    assert_absent(shim_conf, secret)
    assert_absent(shim_conf, key_value[:16])


# ----------------------------------------------------------------------------- d. binding


EDITS = [
    (spec.CKA_SENSITIVE, False),
    (spec.CKA_EXTRACTABLE, True),
    (spec.CKA_PRIVATE, False),
    (spec.CKA_WRAP_WITH_TRUSTED, False),
    (spec.CKA_DECRYPT, False),
    (spec.CKA_DERIVE, True),
    (spec.CKA_TRUSTED, True),
    (spec.CKA_CLASS, spec.CKO_DATA),
    (spec.CKA_LABEL, b"other"),
]


@pytest.mark.parametrize("attr_type,value", EDITS, ids=[spec.cka_name(t) for t, _ in EDITS])
def test_edited_clear_attribute_refuses_the_key(token, user_session, shim_conf, attr_type, value):
    """Flip a policy attribute of a sensitive key in the file: it was trusted after login
    (SENSITIVE=FALSE + EXTRACTABLE=TRUE gave the key's value out)."""
    key_value = bytes(range(32))
    h = token.create(user_session, aes_key(key_value, CKA_WRAP_WITH_TRUSTED=True))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    set_attr(shim_conf, uid, attr_type, value)
    token.initialize()
    s = token.open(0)
    token.login(s, USER_PIN)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) == []
    assert token.find(s, {spec.CKA_LABEL: b"aes"}) == []


def test_both_flags_edited_cannot_extract(token, user_session, shim_conf, debug_log):
    key_value = bytes.fromhex("a1" * 32)
    h = token.create(user_session, aes_key(key_value))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    set_attr(shim_conf, uid, spec.CKA_SENSITIVE, False)
    set_attr(shim_conf, uid, spec.CKA_EXTRACTABLE, True)
    s = reopen(token)
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY}) == []
    assert f"stored object {uid.decode()} fails its integrity check" in debug_log.read_text()


def test_removed_attribute_row_refuses_the_key(token, user_session, shim_conf):
    h = token.create(user_session, aes_key(bytes(32), CKA_WRAP_WITH_TRUSTED=True))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    assert edit(shim_conf, "DELETE FROM attributes WHERE object_id = ? AND type = ?",
                oid_of(shim_conf, uid), spec.CKA_WRAP_WITH_TRUSTED) == 1
    s = reopen(token)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) == []


def test_sealed_value_moved_to_another_object_is_refused(token, user_session, shim_conf):
    """A sealed row copied over another key's (same token key): bound to its own object."""
    a = token.create(user_session, aes_key(bytes([1]) * 32, CKA_LABEL=b"a"))
    b = token.create(user_session, aes_key(bytes([2]) * 32, CKA_LABEL=b"b"))
    ua, ub = (token.get(user_session, h, spec.CKA_UNIQUE_ID) for h in (a, b))
    token.finalize()
    with raw_db(shim_conf) as raw:
        blob = raw.execute("SELECT value FROM attributes WHERE object_id = ? AND type = ?",
                           (oid_of(shim_conf, ua), spec.CKA_VALUE)).fetchone()[0]
        raw.execute("UPDATE attributes SET value = ? WHERE object_id = ? AND type = ?",
                    (blob, oid_of(shim_conf, ub), spec.CKA_VALUE))
    s = reopen(token)
    assert token.find(s, {spec.CKA_UNIQUE_ID: ua}) != []
    assert token.find(s, {spec.CKA_UNIQUE_ID: ub}) == []


def ec_public(label: bytes) -> dict[int, Any]:
    return {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_EC, spec.CKA_TOKEN: True,
            spec.CKA_PRIVATE: False, spec.CKA_LABEL: label, spec.CKA_VERIFY: True,
            spec.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"),  # P-256, its generator as point
            spec.CKA_EC_POINT: bytes.fromhex("044104") + bytes.fromhex(
                "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")}


def test_public_object_written_in_a_login_is_bound(token, user_session, shim_conf):
    """An object without secret values (a public key) written by a logged-in session carries
    its own sealed binding row: an edited flag is refused once the token key is present."""
    h = token.create(user_session, ec_public(b"ec-pub"))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    set_attr(shim_conf, uid, spec.CKA_VERIFY, False)
    s = reopen(token)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) == []


def test_forged_trusted_public_key_is_refused(token, shim_conf):
    """A public object made without a login is unbound (any application may make one through
    the API, so it is served); CKA_TRUSTED = TRUE, which only the SO sets and which lets a
    key wrap keys marked CKA_WRAP_WITH_TRUSTED, is refused on an unbound object."""
    s = token.open(0)
    h = token.create(s, ec_public(b"unbound"))
    uid = token.get(s, h, spec.CKA_UNIQUE_ID)
    token.close(s)
    s = restart(token)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) != []
    token.finalize()
    set_attr(shim_conf, uid, spec.CKA_TRUSTED, True)
    s = reopen(token)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) == []


def test_edit_without_login_is_served_then_refused_at_login(token, user_session, shim_conf):
    """Without the token key nothing can be checked: a public sealed key shows (locked); at
    the login the cache must not keep the unchecked copy."""
    h = token.create(user_session, aes_key(bytes(32), CKA_PRIVATE=False))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    set_attr(shim_conf, uid, spec.CKA_SENSITIVE, False)
    token.initialize()
    s = token.open(0)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) != []
    token.login(s, USER_PIN)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) == []


# ----------------------------------------------------------------------------- d. migration


def _to_schema_v1(conf: Path) -> None:
    """Rewrite the store as the previous release wrote it: sealed rows under the v1
    associated data, no binding rows, a private CKO_DATA's value in clear, schema 1."""
    url = url_of(conf)
    with Store(url) as store:
        rec = store.token(0)
        key = at_rest.open_pin_record(USER_PIN, rec.user_pin)
        objects = store.objects(0)
    with raw_db(conf) as raw:
        for obj in objects:
            values, bound = at_rest.open_object(key, rec.serial, obj.unique_id, obj.attrs, obj.sealed)
            assert bound
            raw.execute("DELETE FROM attributes WHERE object_id = ? AND is_sealed = 1", (obj.oid,))
            klass = codec.decode(spec.CKA_CLASS, obj.attrs[spec.CKA_CLASS])
            for t, v in values.items():
                if klass == spec.CKO_DATA:
                    row = (obj.oid, t, v, 0)
                else:
                    row = (obj.oid, t, at_rest.seal(key, at_rest.attribute_aad(rec.serial, obj.unique_id, t), v), 1)
                raw.execute("INSERT INTO attributes (object_id, type, value, is_sealed) VALUES (?, ?, ?, ?)", row)
        raw.execute("UPDATE schema_version SET version = 1")


def test_store_of_the_previous_schema_opens_and_is_bound_at_first_login(token, user_session, shim_conf):
    secret = b"legacy-private-data-9be1"
    key_value = bytes.fromhex("c3" * 32)
    h = token.create(user_session, data_obj(secret, CKA_PRIVATE=True))
    k = token.create(user_session, aes_key(key_value, CKA_SENSITIVE=False, CKA_EXTRACTABLE=True))
    uid_h, uid_k = (token.get(user_session, x, spec.CKA_UNIQUE_ID) for x in (h, k))
    token.finalize()
    _to_schema_v1(shim_conf)
    assert secret in b"".join(store_bytes(shim_conf).values())  # the legacy form holds it in clear
    s = reopen(token)
    [h] = token.find(s, {spec.CKA_UNIQUE_ID: uid_h})
    [k] = token.find(s, {spec.CKA_UNIQUE_ID: uid_k})
    assert token.get(s, h, spec.CKA_VALUE) == secret
    assert token.get(s, k, spec.CKA_VALUE) == key_value
    # bound now (an edit is refused), the clear value gone from every file while still open
    with raw_db(shim_conf) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchone()[0] >= 2
    if not on_pg(shim_conf):  # PostgreSQL keeps the old tuple until VACUUM (docs/ha.md)
        assert_absent(shim_conf, secret)
    token.finalize()
    set_attr(shim_conf, uid_k, spec.CKA_LABEL, b"edited")
    s = reopen(token)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid_k}) == []
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid_h}) != []


def test_legacy_unbound_trusted_object_is_refused(token, user_session, shim_conf):
    """Before schema 2 nothing told a forged CKA_TRUSTED row from the SO's: after the upgrade
    an unbound trusted object is refused (the SO sets CKA_TRUSTED again)."""
    k = token.create(user_session, aes_key(bytes(32)))
    uid = token.get(user_session, k, spec.CKA_UNIQUE_ID)
    token.finalize()
    _to_schema_v1(shim_conf)
    set_attr(shim_conf, uid, spec.CKA_TRUSTED, True)
    s = reopen(token)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) == []


# ----------------------------------------------------------------------------- e. store key file


def _configure(conf: Path, key_file: Path | None) -> None:
    """Rewrite the test config's [store] table with (or without) a key_file line."""
    lines = [ln for ln in conf.read_text().splitlines() if not ln.startswith("key_file")]
    at = lines.index("[store]") + 2
    if key_file is not None:
        lines.insert(at, f'key_file = "{key_file}"')
    conf.write_text("\n".join(lines) + "\n")


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    d.mkdir()
    return d / "store.key"


@pytest.fixture
def keyed_conf(shim_conf: Path, key_path: Path) -> Path:
    from cryptoki_shim.store import key_file

    key_file.create(str(key_path))
    _configure(shim_conf, key_path)
    return shim_conf


def _pin_records(conf: Path) -> dict[int, Any]:
    with Store(url_of(conf)) as store:
        rec = store.token(0)
    return {spec.CKU_SO: rec.so_pin, spec.CKU_USER: rec.user_pin}


def test_key_file_a_copy_of_the_store_alone_cannot_test_a_pin(keyed_conf, key_path, token, user_session):
    """Offline, with the file alone, the right PIN does not open the record: no guess can be
    tested without the key file. With it, the PIN works as before."""
    from cryptoki_shim.store import key_file

    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    token.create(user_session, aes_key(bytes(32)))
    for user, pin in ((spec.CKU_USER, USER_PIN), (spec.CKU_SO, SO_PIN)):
        rec = _pin_records(keyed_conf)[user]
        assert rec.params[key_file.PARAM] == key_file.load(str(key_path)).key_id
        with pytest.raises(Exception):
            at_rest.open_pin_record(pin, rec)  # the attacker's offline check of the right PIN
        opened = Store(url_of(keyed_conf), key_file=str(key_path)).unbind_pin(rec)
        assert len(at_rest.open_pin_record(pin, opened)) == 32
    s = restart(token)
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY}) != []


def test_key_file_added_to_an_existing_store_seals_its_pin_records(token, user_session, shim_conf, key_path):
    from cryptoki_shim.store import key_file

    before = _pin_records(shim_conf)[spec.CKU_USER]
    assert key_file.PARAM not in before.params
    token.finalize()
    key_file.create(str(key_path))
    _configure(shim_conf, key_path)
    s = reopen(token)  # the store is opened (and its records sealed) by the first token use
    after = _pin_records(shim_conf)[spec.CKU_USER]
    assert key_file.PARAM in after.params
    if not on_pg(shim_conf):  # PostgreSQL keeps the old tuple until VACUUM (docs/ha.md)
        assert_absent(shim_conf, before.wrapped_key)  # the guessable record is gone from every file
    token.logout(s)
    token.login(s, USER_PIN)


def test_store_without_its_key_file_refuses_logins_without_counting(keyed_conf, key_path, token):
    """The key file missing, replaced or exposed: CKR_DEVICE_ERROR, never CKR_PIN_INCORRECT
    for the right PIN, and no failed login is counted."""
    from cryptoki_shim.store import key_file

    token.finalize()
    cases = {"absent": lambda: key_path.rename(key_path.with_suffix(".moved")),
             "another": lambda: key_file.create(str(key_path)),
             "exposed": lambda: key_path.chmod(0o644),
             "unconfigured": lambda: _configure(keyed_conf, None)}
    for name, breakage in cases.items():
        breakage()
        token.initialize()
        s = token.open(0)
        with pytest.raises(Exception) as exc:
            token.login(s, USER_PIN)
        assert getattr(exc.value, "rv", None) == spec.CKR_DEVICE_ERROR, name
        token.finalize()
        if name == "another":
            key_path.unlink()
            key_path.with_suffix(".moved").rename(key_path)
    key_path.chmod(0o600)
    _configure(keyed_conf, key_path)
    assert _pin_records(keyed_conf)[spec.CKU_USER].failures == 0
    reopen(token)


# ----------------------------------------------------------------------------- f. non-private keys (issue 23 item 5)


PUBLIC_VALUE = bytes(range(100, 132))


def _public_aes(p11: P11, s: int) -> bytes:
    """A CKA_PRIVATE FALSE AES token key made without a login; its CKA_UNIQUE_ID."""
    h = p11.create(s, aes_key(PUBLIC_VALUE, CKA_PRIVATE=False, CKA_LABEL=b"public-aes"))
    return p11.get(s, h, spec.CKA_UNIQUE_ID)


def _public_record(conf: Path, uid: bytes) -> tuple[str, Any]:
    with Store(url_of(conf)) as store:
        serial = store.token(0).serial
        [rec] = [r for r in store.objects(0) if r.unique_id == uid.decode()]
    return serial, rec


def _opens_under(key: bytes, serial: str, rec: Any) -> bytes | None:
    try:
        values = at_rest.open_public_object((key,), None, serial, rec.unique_id, rec.attrs, rec.sealed)
    except at_rest.SealError:
        return None
    return None if values is None else values[0].get(spec.CKA_VALUE)


def _encrypts(p11: P11, s: int, uid: bytes) -> bool:
    [h] = p11.find(s, {spec.CKA_UNIQUE_ID: uid})
    try:
        p11.encrypt(s, spec.CKM_AES_ECB, h, bytes(16))
    except Exception as exc:
        assert getattr(exc, "rv", None) == spec.CKR_USER_NOT_LOGGED_IN, exc
        return False
    return True


def test_public_key_material_is_sealed_under_the_key_file(keyed_conf, key_path, token):
    """A non-private key written without a login: its value is in no store file, it opens
    under HKDF(file key, serial) and under nothing a copy of the database alone gives (the
    file-less derivation, the bytes of the file); without the key file configured the key is
    locked, with it usable again, still without a login."""
    from cryptoki_shim.store import key_file

    s = token.open(0)
    uid = _public_aes(token, s)
    assert _encrypts(token, s, uid)
    assert_absent(keyed_conf, PUBLIC_VALUE)
    serial, rec = _public_record(keyed_conf, uid)
    assert spec.CKA_VALUE in rec.sealed and spec.CKA_VALUE not in rec.attrs
    assert at_rest.BINDING_ROW not in rec.sealed  # nobody logged in: no token-key binding
    file_key = key_file.load(str(key_path)).derive(at_rest.public_object_info(serial))
    assert _opens_under(file_key, serial, rec) == PUBLIC_VALUE
    assert _opens_under(at_rest.fileless_public_key(serial), serial, rec) is None
    token.finalize()
    _configure(keyed_conf, None)
    token.initialize()
    s = token.open(0)
    assert not _encrypts(token, s, uid)  # locked: the values need the key file's key
    token.finalize()
    _configure(keyed_conf, key_path)
    token.initialize()
    assert _encrypts(token, token.open(0), uid)


def test_public_key_material_without_a_key_file_is_not_in_clear(token, shim_conf):
    """Without a key file the public-object key derives from the serial (no secret: the docs
    say it is as good as clear for a copy of the file); the value still never appears as
    such in the database, the WAL or the SHM."""
    s = token.open(0)
    uid = _public_aes(token, s)
    token.close(s)
    assert_absent(shim_conf, PUBLIC_VALUE)
    serial, rec = _public_record(shim_conf, uid)
    assert _opens_under(at_rest.fileless_public_key(serial), serial, rec) == PUBLIC_VALUE


def test_private_key_material_is_never_under_the_public_object_key(keyed_conf, key_path, token, user_session):
    """A private key's value is sealed under the PIN's token key only: neither public-object
    key opens it, and the value is in no store file."""
    from cryptoki_shim.store import key_file

    h = token.create(user_session, aes_key(PUBLIC_VALUE, CKA_LABEL=b"private-aes"))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    assert token.get(user_session, h, spec.CKA_PRIVATE) is True
    assert_absent(keyed_conf, PUBLIC_VALUE)
    serial, rec = _public_record(keyed_conf, uid)
    file_key = key_file.load(str(key_path)).derive(at_rest.public_object_info(serial))
    for key in (file_key, at_rest.fileless_public_key(serial)):
        assert _opens_under(key, serial, rec) is None


def test_edited_public_key_with_a_key_file_is_refused(keyed_conf, token, user_session):
    """An editor without the key file cannot re-seal: a flipped flag on a public key made
    during a login leaves the key locked without a login and refused with one."""
    h = token.create(user_session, aes_key(PUBLIC_VALUE, CKA_PRIVATE=False))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    set_attr(keyed_conf, uid, spec.CKA_SENSITIVE, False)
    token.initialize()
    s = token.open(0)
    assert not _encrypts(token, s, uid)
    token.login(s, USER_PIN)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid}) == []


def test_public_key_sealed_before_the_key_file_opens_and_moves_at_login(token, user_session, shim_conf, key_path):
    """A key file added to a store that holds public keys: they still open (the older,
    file-less key), and one bound to the token key moves under the file's key at the login."""
    from cryptoki_shim.store import key_file

    h = token.create(user_session, aes_key(PUBLIC_VALUE, CKA_PRIVATE=False))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    key_file.create(str(key_path))
    _configure(shim_conf, key_path)
    token.initialize()
    s = token.open(0)
    assert _encrypts(token, s, uid)
    token.login(s, USER_PIN)
    serial, rec = _public_record(shim_conf, uid)
    file_key = key_file.load(str(key_path)).derive(at_rest.public_object_info(serial))
    assert _opens_under(file_key, serial, rec) == PUBLIC_VALUE
    assert _opens_under(at_rest.fileless_public_key(serial), serial, rec) is None


def test_public_key_sealed_under_the_token_key_before_item_5_moves_at_login(token, user_session, shim_conf):
    """A store of the previous release: a public key made during a login has its value under
    the token key, so it is locked without a login; the first login re-seals it under the
    public-object key, after which it needs no login."""
    h = token.create(user_session, aes_key(PUBLIC_VALUE, CKA_PRIVATE=False))
    uid = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    serial, rec = _public_record(shim_conf, uid)
    with Store(url_of(shim_conf)) as store:
        token_key = at_rest.open_pin_record(USER_PIN, store.token(0).user_pin)
        old = at_rest.seal_object(token_key, serial, rec.unique_id, rec.attrs, {spec.CKA_VALUE: PUBLIC_VALUE})
        assert store.update_object(0, rec.oid, rec.attrs, old)
    token.initialize()
    s = token.open(0)
    assert not _encrypts(token, s, uid)
    token.login(s, USER_PIN)
    token.logout(s)
    assert _encrypts(token, s, uid)
    assert _opens_under(at_rest.fileless_public_key(serial), serial, _public_record(shim_conf, uid)[1]) == PUBLIC_VALUE


def test_trusted_public_key_of_the_so_is_served_without_a_login_and_bound_with_one(token, shim_conf):
    """The SO's trusted key with CKA_PRIVATE FALSE: its value under the public-object key, its
    rows bound under the token key. Without a login it is served (nothing can be checked
    then, as before) and usable; with a login its binding holds, so CKA_TRUSTED is kept."""
    so = token.open(0)
    token.login(so, SO_PIN, user=spec.CKU_SO)
    h = token.generate_key(so, spec.CKM_AES_KEY_GEN, {spec.CKA_VALUE_LEN: 32, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False,
                                                      spec.CKA_TRUSTED: True, spec.CKA_WRAP: True, spec.CKA_ENCRYPT: True})
    uid = token.get(so, h, spec.CKA_UNIQUE_ID)
    token.finalize()
    token.initialize()
    s = token.open(0)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid, spec.CKA_TRUSTED: True}) != []
    assert _encrypts(token, s, uid)
    token.login(s, USER_PIN)
    assert token.find(s, {spec.CKA_UNIQUE_ID: uid, spec.CKA_TRUSTED: True}) != []
