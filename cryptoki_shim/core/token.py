"""A token: its record in the store, the application's login state, and its objects.

Login state is per application and token (PKCS#11 3.0 §5.6: all sessions of an application
share it), so it lives here, not in a session. The token key that decrypts sensitive
attributes exists in memory only while someone is logged in.

The object cache is refreshed when ``Store.data_version()`` changes (another process, or
this one, committed something), so the operation path does not run SQL beyond that check.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import TYPE_CHECKING, Any, Callable

from .. import audit, backends, spec
from ..spec_ints import (
    CKA_PRIVATE,
    CKA_SHIM_BACKEND,
    CKA_TRUSTED,
    CKA_UNIQUE_ID,
    CKP_AUTHENTICATION_TOKEN,
    CKP_BASELINE_PROVIDER,
    CKP_EXTENDED_PROVIDER,
    CKU_SO,
    CKU_USER,
)
from ..attributes import codec, policy
from ..config import SlotConfig
from ..errors import CryptokiError
from ..store import ObjectRecord, TokenRecord
from ..store import crypto as at_rest
from ..backends import tpm_pin, upstream_kek
from .objects import Object, ObjectIndex, new_handle

if TYPE_CHECKING:
    from ..store.store import Store

_log = logging.getLogger(__name__)

#: CKO_PROFILE objects every token publishes: what a client may rely on (PKCS#11 Profiles 3.0).
PROFILES = (CKP_BASELINE_PROVIDER, CKP_EXTENDED_PROVIDER, CKP_AUTHENTICATION_TOKEN)


class Token:
    """One token in one slot; ``lock`` guards login state and the object cache."""

    def __init__(self, cfg: SlotConfig, store: Store) -> None:
        self.cfg = cfg
        self.slot_id = cfg.id
        self.store = store
        self.lock = threading.RLock()
        self.record: TokenRecord | None = None
        self.login_user: int | None = None
        self.login_epoch = 0  # bumped by every login and logout: saved operation states name it
        self.token_key: bytes | None = None
        self.objects: dict[int, Object] = {}        # token objects by handle
        self.session_objects: dict[int, Object] = {}
        self.session_handles: set[int] = set()  # this application's open sessions on the token
        self.index = ObjectIndex()  # over self.objects (token objects)
        self._handle_of_oid: dict[int, int] = {}
        #: oids loaded while no token key was in memory: their binding is unchecked, so the
        #: first refresh with the key loads them again (`_load`, issue 15 item 5).
        self._unchecked: set[int] = set()
        self._unbound: list[Object] = []  # found unbound by _load, bound by _bind_legacy
        self._mark: int | None = None
        self._public_cache: tuple[str | None, tuple[bytes, ...]] = (None, ())  # serial, `_public_keys`
        self._generation = -1  # the store generation the cache reflects
        #: Called (outside `lock`) when a refresh finds the token re-initialized by another
        #: process or host (a new serial): the module ends this application's sessions on it.
        self.replaced: Callable[[], None] | None = None
        self._serial_made_here: str | None = None
        # The profiles we implement (§4.13), as public read-only token objects with stable
        # handles; they are not stored (every token of this library has them).
        self.backends = backends.make_backends(cfg)
        self.kek = upstream_kek.for_slot(cfg, self.backends)  # KEK mode (issue 6), else None
        self.profile_objects: dict[int, Object] = {}
        for profile in PROFILES if cfg.profile_objects else ():
            unique_id = f"profile-{profile}"
            attrs = policy.build_profile(profile)
            attrs[CKA_UNIQUE_ID] = unique_id.encode()  # a storage object's attribute (§4.4)
            obj = Object(new_handle(), attrs, unique_id)
            self.profile_objects[obj.handle] = obj
        self.refresh(force=True)

    # ------------------------------------------------------------------ store sync

    def refresh(self, force: bool = False, exact: bool = True) -> None:
        """Reload the record and objects if the store changed since the last load.
        `exact=False` (the use of a cached key) lets a PostgreSQL store answer from its
        change notifications instead of a query (`Store.data_version`, store/pg.py).
        A token found re-initialized elsewhere (C_InitToken in another process or on another
        host: a new serial, or no token) calls `replaced`."""
        version = self.store.data_version(exact)
        if not force and version == self._mark:
            return
        before = self.record.serial if self.record is not None else None
        self._reload(force, version)
        after = self.record.serial if self.record is not None else None
        if before is not None and after not in (before, self._serial_made_here) and self.replaced is not None:
            self.replaced()

    def _reload(self, force: bool, version: int) -> None:
        with self.lock:
            generation = self.store.generation()
            if not force and generation == self._generation:
                self._mark = version  # the change was our own write, already in the cache
                return
            self._mark = version
            self._generation = generation
            self.record = self.store.token(self.slot_id)
            records = self.store.objects(self.slot_id) if self.record else []
            fresh: dict[int, Object] = {}
            seen_oids = set()
            for rec in records:
                seen_oids.add(rec.oid)
                handle = self._handle_of_oid.get(rec.oid)
                old = self.objects.get(handle) if handle else None
                if old is not None and old.stored is not None and _same(old.stored, rec) and not (
                    self.token_key and rec.oid in self._unchecked
                ):
                    fresh[old.handle] = old
                    continue
                obj = self._load(rec, handle or new_handle())
                if obj is not None:
                    self._handle_of_oid[rec.oid] = obj.handle
                    fresh[obj.handle] = obj
            for oid in list(self._handle_of_oid):
                if oid not in seen_oids:
                    del self._handle_of_oid[oid]
            self._unchecked &= seen_oids
            self.objects = fresh
            self.index.rebuild(fresh.values())
            self._bind_legacy()

    def _own_write(self) -> None:
        """After this process changed an object and updated the cache itself: if the store
        moved by exactly our write, the cache is still complete (no reload of every object)."""
        written = self.store.write_generation()
        with self.lock:
            if written == self._generation + 1:
                self._generation = written

    def _load(self, rec: ObjectRecord, handle: int) -> Object | None:
        """The object of a stored record; None (and an error line) if it fails its check.

        With the token key, the sealed rows must open under associated data that binds every
        clear row (`at_rest.open_object`): a SENSITIVE or EXTRACTABLE flag edited in the file
        refuses the object. An object found unbound (written before schema 2, or a public
        object written without a login) is accepted unless it claims CKA_TRUSTED, which only
        the SO sets and which would let a forged row wrap out keys with CKA_WRAP_WITH_TRUSTED;
        unbound private or sealed objects are bound at once (`_bind_legacy`). Without the key
        nothing can be checked: sealed rows stay locked, and the next refresh with the key
        loads the object again.
        """
        try:
            attrs = {t: codec.decode(t, v) for t, v in rec.attrs.items()}
            public = attrs.get(CKA_PRIVATE) is False
            opened = self._open_public(rec) if public else None
            if self.token_key is None:
                # Unchecked until a login (the binding needs the token key), as before issue 23
                # item 5; a public object's values are open, a private one's locked.
                self._unchecked.add(rec.oid)
                if opened is None:
                    locked = frozenset(rec.sealed.keys() - {at_rest.BINDING_ROW})
                    return Object(handle, attrs, rec.unique_id, oid=rec.oid, locked=locked, stored=rec)
                attrs.update({t: codec.decode(t, raw) for t, raw in opened[0].items()})
                return Object(handle, attrs, rec.unique_id, oid=rec.oid, stored=rec)
            self._unchecked.discard(rec.oid)
            if opened is None:
                values, bound = at_rest.open_object(self.token_key, self.record.serial, rec.unique_id, rec.attrs, rec.sealed)
                how = at_rest.CURRENT
            else:
                values, bound, how = opened
            for t, raw in values.items():
                attrs[t] = codec.decode(t, raw)
        except CryptokiError:
            _log.error("slot %d: stored object %s fails its integrity check (edited or corrupted in the store "
                       "file?); skipped", self.slot_id, rec.unique_id)
            return None
        if not bound and attrs.get(CKA_TRUSTED) is True:
            _log.error("slot %d: stored object %s claims CKA_TRUSTED without a binding to the token key "
                       "(forged, or written before schema 2: the SO must set CKA_TRUSTED again); skipped",
                       self.slot_id, rec.unique_id)
            return None
        obj = Object(handle, attrs, rec.unique_id, oid=rec.oid, stored=rec)
        if (how == at_rest.TOKEN or (how == at_rest.OLDER and bound)
                or (not bound and not public and (rec.sealed or attrs.get(CKA_PRIVATE) is True))):
            # Rewritten at once (`_bind_legacy`): a private object found unbound; a public one
            # whose material is still under the token key (written before issue 23 item 5) or,
            # bound, under an older public-object key. A public object written without a login
            # is not bound here: its rows were never vouched for by the token key.
            self._unbound.append(obj)
        return obj

    def _open_public(self, rec: ObjectRecord) -> tuple[dict[int, bytes], bool, str] | None:
        """`at_rest.open_public_object` of a non-private record (None: locked until a login)."""
        if self.record is None:
            return None
        return at_rest.open_public_object(self._public_keys(), self.token_key, self.record.serial,
                                          rec.unique_id, rec.attrs, rec.sealed)

    def _public_keys(self, writing: bool = False) -> tuple[bytes, ...]:
        """The keys that seal non-private objects' material, current first (issue 23 item 5,
        `at_rest.open_public_object`): derived from the store key file when one is configured,
        then the derivation of a store without one (objects written before the file was added).
        A key file that cannot be used leaves only the latter for reading (objects under the
        file's key stay locked); ``writing`` raises its CKR_DEVICE_ERROR instead."""
        assert self.record is not None
        serial = self.record.serial
        if self._public_cache[0] != serial:
            fileless = at_rest.fileless_public_key(serial)
            try:
                from_file = self.store.derive_from_key_file(at_rest.public_object_info(serial))
            except CryptokiError:
                if writing:
                    raise
                return (fileless,)
            self._public_cache = (serial, (from_file, fileless) if from_file else (fileless,))
        return self._public_cache[1]

    def _bind_legacy(self) -> None:
        """Migration to schema 2 at the first refresh with the token key: rewrite each private
        or sealed object found unbound, so its clear rows are bound and a private CKO_DATA's
        CKA_VALUE is sealed, then scrub the WAL. Best effort: a read-only store keeps serving
        the objects."""
        unbound, self._unbound = self._unbound, []
        if not unbound:
            return
        for obj in unbound:
            try:
                rec = self._record_for(obj.attrs, obj.unique_id, obj.oid)
                if self.store.update_object(self.slot_id, obj.oid, rec.attrs, rec.sealed):
                    obj.stored = rec
                    self._own_write()
                    _log.info("slot %d: object %s bound to the token key (schema 2)", self.slot_id, obj.unique_id)
            except CryptokiError as exc:
                _log.warning("slot %d: object %s not bound yet: %s", self.slot_id, obj.unique_id, exc)
        self.store.scrub()  # the legacy clear values must not stay in the WAL (issue 15 item 5)

    # ------------------------------------------------------------------ state

    @property
    def initialized(self) -> bool:
        return self.record is not None and self.record.so_pin is not None

    def visible(self, obj: Object) -> bool:
        """Private objects are visible to the normal user only (§4.4.1): the one rule, for
        searches and for every handle lookup (``find_object``)."""
        return obj.attrs.get(CKA_PRIVATE) is not True or self.login_user == CKU_USER

    def search(self, template: list[tuple[int, Any]]) -> list[int]:
        """Handles of the visible objects matching every attribute of ``template``; token
        objects come from the index when the template names an indexed attribute."""
        self.refresh()
        with self.lock:
            candidates = self.index.candidates(template)
            if candidates is None:
                token_objects = list(self.objects.values())
            else:
                token_objects = [self.objects[h] for h in sorted(candidates) if h in self.objects]
            pool = [*token_objects, *self.session_objects.values(), *self.profile_objects.values()]
        readable = policy.readable
        return [o.handle for o in pool if self.visible(o) and o.matches(template, readable)]

    def find_object(self, handle: int, exact: bool = True) -> Object | None:
        obj = self.session_objects.get(handle)
        if obj is None:
            self.refresh(exact=exact)
            obj = self.objects.get(handle) or self.profile_objects.get(handle)
        return obj if obj is not None and self.visible(obj) else None

    # ------------------------------------------------------------------ backends

    def backend_for(self, key: Object) -> "backends.Backend":
        """The backend holding ``key``'s material (CKA_SHIM_BACKEND; software when absent)."""
        found = self.backends.get(key.attrs.get(CKA_SHIM_BACKEND, backends.SOFTWARE))
        return found if found is not None else backends.pick(self.backends, backends.backend_id_of(key.attrs))

    def backend_for_new(self, template: dict[int, Any]) -> "backends.Backend":
        return backends.pick_for_new_key(self.backends, self.cfg.backend, template)

    # ------------------------------------------------------------------ PINs

    def check_pin_length(self, pin: bytes) -> None:
        if not self.cfg.min_pin_len <= len(pin) <= self.cfg.max_pin_len:
            raise CryptokiError(spec.CKR_PIN_LEN_RANGE, f"PIN length {len(pin)}")

    def _pin_record(self, user: int):
        assert self.record is not None
        return self.record.so_pin if user == CKU_SO else self.record.user_pin

    def failures(self, user: int) -> int:
        rec = self._pin_record(user) if self.record else None
        return rec.failures if rec is not None else 0

    def verify_pin(self, user: int, pin: bytes) -> bytes:
        """The token key, if ``pin`` is ``user``'s PIN (C_Login, C_SetPIN, C_InitToken).

        The attempt is counted in the store *before* the PIN is tried (TPM layer, KDF), and
        settled after (issue 15 item 3): a right PIN gives its count back, a wrong one keeps
        it, and a process that dies in between leaves it counted (the safe side: a crash costs
        one try). So however many threads and processes guess at once, at most
        ``max_pin_failures`` guesses are ever evaluated. A locked PIN answers CKR_PIN_LOCKED
        even for the right PIN and tries nothing; so does the attempt that reaches the limit.
        Layers that need no PIN (store key file, upstream KEK) are opened before the count:
        their failure is CKR_DEVICE_ERROR, not a failed login.
        """
        limit = self.cfg.max_pin_failures
        for retry in range(3):
            self.refresh(force=retry > 0)
            rec = self._pin_record(user) if self.record is not None else None
            if rec is None:
                raise CryptokiError(spec.CKR_USER_PIN_NOT_INITIALIZED if user == CKU_USER else spec.CKR_TOKEN_NOT_RECOGNIZED)
            outer = self._open_layers_without_pin(rec)
            try:
                count = self.store.reserve_login(self.slot_id, user, limit=limit, wrapped_key=rec.wrapped_key)
                break
            except KeyError:
                continue  # the record was replaced (C_SetPIN, C_InitToken elsewhere): read it again
        else:
            raise CryptokiError(spec.CKR_DEVICE_ERROR, "the PIN record changed during three attempts")
        if count is None:
            rec.failures = max(rec.failures, limit)
            audit.login(self, user, CryptokiError(spec.CKR_PIN_LOCKED), rec.failures)
            raise CryptokiError(spec.CKR_PIN_LOCKED, "too many failed logins")
        rec.failures = count
        try:
            key = at_rest.open_pin_record(pin, self._open_layers_with_pin(outer, pin))
        except CryptokiError as exc:
            if exc.ckr == spec.CKR_PIN_INCORRECT:
                _log.info("slot %d: wrong PIN for user type %d (%d failures)", self.slot_id, user, count)
                audit.login(self, user, exc, count)
                if count >= limit:
                    audit.token_event("login.locked", self, user)
                    raise CryptokiError(spec.CKR_PIN_LOCKED, "too many failed logins") from None
            raise
        self.store.login_succeeded(self.slot_id, user, count, rec.wrapped_key)
        rec.failures = 0
        return key

    def login(self, user: int, pin: bytes) -> None:
        key = self.verify_pin(user, pin)
        with self.lock:
            self.login_user = user
            self.login_epoch += 1
            self.token_key = key
        self._bind_pin_to_tpm(user, pin, key)
        self.refresh(force=True)

    def _bind_pin_to_tpm(self, user: int, pin: bytes, key: bytes) -> None:
        """``[slots.tpm] pin_binding`` switched on for a token whose PIN record predates it:
        the first successful login re-makes the record with the TPM layer (it needs the PIN,
        so it cannot happen sooner). Only if the record is still the one just opened (a
        concurrent C_SetPIN wins); a failure is logged and leaves the old record."""
        rec = self._pin_record(user) if user in (CKU_SO, CKU_USER) and self.record is not None else None
        if rec is None or tpm_pin.sealer(self.cfg, self.backends) is None:
            return
        try:
            if tpm_pin.PARAM in self.store.unbind_pin(rec).params:
                return
            if self.store.replace_pin(self.slot_id, user, rec.wrapped_key, self._new_pin_record(pin, key)):
                _log.info("slot %d: PIN record of user type %d bound to the TPM (pin_binding)", self.slot_id, user)
        except CryptokiError as exc:
            _log.warning("slot %d: PIN record of user type %d not bound to the TPM: %s", self.slot_id, user, exc)

    def logout(self) -> None:
        for backend in self.backends.values():
            backend.logged_out()
        with self.lock:
            self.login_user = None
            self.login_epoch += 1
            self.token_key = None
            # §5.6.8 C_Logout: the application's handles to private objects become invalid,
            # "even if a user is later logged back into the token"; private session objects
            # are destroyed. Forgetting the handle makes the next load give a new one.
            for obj in self.objects.values():
                if obj.is_private and obj.oid is not None:
                    self._handle_of_oid.pop(obj.oid, None)
            self.session_objects = {h: o for h, o in self.session_objects.items() if not o.is_private}
            # Drop decrypted material from memory: objects reload locked next time.
            self.objects = {}
            self.index.rebuild(())
            self._mark = None
            self._generation = -1

    def init_token(self, so_pin: bytes, label: bytes, *, force: bool = False) -> None:
        """C_InitToken: new token key, SO PIN record, no user PIN, no objects.

        An initialized token needs its SO PIN, counted like any login; a locked SO PIN keeps
        C_InitToken refused, even with the right PIN (CKR_PIN_LOCKED), or the lock would not
        stop guessing. The way back is out of band: ``force`` skips the SO PIN, and only the
        admin CLI passes it (``cryptoki-shim init-token --force``), run by someone who can
        write the store file, who could delete it anyway. It wipes every key (issue 15 item 8).
        """
        self.refresh(force=True)
        forced = force and self.initialized
        if self.initialized and not force:
            self.verify_pin(CKU_SO, so_pin)
        key = at_rest.new_token_key()
        serial = uuid.uuid4().hex[:16]
        rec = TokenRecord(
            slot_id=self.slot_id,
            label=label,
            serial=serial,
            so_pin=self._new_pin_record(so_pin, key),
            user_pin=None,
        )
        self.store.init_token(rec)
        audit.token_event("token.init.forced" if forced else "token.init", self)
        with self.lock:
            self._serial_made_here = serial  # the refresh below must not take it for one made elsewhere
            self.session_objects = {}
            self.objects = {}
            self.index.rebuild(())
            self._handle_of_oid = {}
        self.refresh(force=True)

    def set_user_pin(self, pin: bytes, key: bytes | None = None) -> None:
        """C_InitPIN (by the SO) or C_SetPIN of the user: wrap the token key under the new PIN.

        A new record starts with no failures, so the SO's C_InitPIN unlocks a locked user.
        """
        key = key or self.token_key
        assert key is not None
        self.store.update_token(self.slot_id, user_pin=self._new_pin_record(pin, key))
        audit.token_event("pin.set", self, CKU_USER)
        self.refresh(force=True)

    def set_so_pin(self, pin: bytes, key: bytes) -> None:
        """C_SetPIN of the SO: wrap the token key under the new SO PIN; audited as ``pin.set``."""
        self.store.update_token(self.slot_id, so_pin=self._new_pin_record(pin, key))
        audit.token_event("pin.set", self, CKU_SO)
        self.refresh(force=True)

    def open_pin_layers(self, rec, pin: bytes):
        """The PIN record as ``make_pin_record`` made it: the outer layers removed, outermost
        first (store key file, TPM, upstream KEK). A layer that cannot be opened is
        CKR_DEVICE_ERROR; the TPM's refusal of this PIN is CKR_PIN_INCORRECT (or LOCKED)."""
        return self._open_layers_with_pin(self._open_layers_without_pin(rec), pin)

    def _open_layers_without_pin(self, rec):
        """The outer layers that need no PIN: the key file's, then the KEK's unless a TPM layer
        (which needs the PIN) lies above it. ``verify_pin`` opens these before it counts."""
        rec = self.store.unbind_pin(rec)
        return rec if tpm_pin.PARAM in rec.params else upstream_kek.open_record(self.kek, rec)

    def _open_layers_with_pin(self, rec, pin: bytes):
        """The rest, after ``_open_layers_without_pin``: the TPM's (a PIN check of its own,
        counted by the TPM's dictionary-attack logic) and the KEK's under it."""
        if tpm_pin.PARAM not in rec.params:
            return rec
        return upstream_kek.open_record(self.kek, tpm_pin.open_record(tpm_pin.backend_of(self.backends), rec, pin))

    def _new_pin_record(self, pin: bytes, key: bytes):
        """The token key wrapped under ``pin`` (and, in KEK mode, under the upstream KEK; with
        ``[slots.tpm] pin_binding``, under a TPM-sealed secret only this PIN unseals; the store
        adds its key file's layer when it writes the record)."""
        inner = upstream_kek.seal_record(self.kek, at_rest.make_pin_record(pin, key, self.cfg.kdf_cost))
        return tpm_pin.seal_record(tpm_pin.sealer(self.cfg, self.backends), inner, pin)

    # ------------------------------------------------------------------ objects

    def add_object(self, attrs: dict[int, Any], session: int | None) -> Object:
        """Store a complete attribute set as a new object (token or session) and return it."""
        unique_id = os.urandom(16).hex()  # 128 random bits, 32 hex digits (as uuid4().hex, cheaper)
        attrs[CKA_UNIQUE_ID] = unique_id.encode()
        if session is not None:
            obj = Object(new_handle(), attrs, unique_id, session=session)
            with self.lock:
                self.session_objects[obj.handle] = obj
            if audit.ON:  # a flag, not a call per object (a KEM makes one per call)
                audit.object_event("create", self, obj)
            return obj
        rec = self._record_for(attrs, unique_id, None)
        # The commit and the handle registration are one step under the lock: a concurrent
        # refresh() must not meet the new row before its handle is known, or it would give
        # the same object a second handle.
        with self.lock:
            oid = self.store.add_object(self.slot_id, rec)
            rec.oid = oid
            obj = Object(new_handle(), attrs, unique_id, oid=oid, stored=rec)
            self._handle_of_oid[oid] = obj.handle
            self.objects[obj.handle] = obj
            self.index.add(obj)
            self._own_write()
        audit.object_event("create", self, obj)
        return obj

    def _record_for(self, attrs: dict[int, Any], unique_id: str, oid: int | None) -> ObjectRecord:
        """The stored form: secret values sealed, every clear row bound to them (schema 2).

        A private object's values are sealed under the token key (`at_rest.seal_object`), so
        storing one needs a login. A non-private object's (CKA_PRIVATE FALSE, issue 23 item 5)
        under the public-object key, which needs no PIN (`at_rest.seal_public_object`), plus a
        binding row under the token key when someone is logged in; without a login and without
        secret values it is stored unbound, as before."""
        sealed_types = policy.sealed_types(attrs)
        clear: dict[int, bytes] = {}
        secret: dict[int, bytes] = {}
        for t, v in attrs.items():
            (secret if t in sealed_types else clear)[t] = codec.encode(t, v)
        if self.record is not None and attrs.get(CKA_PRIVATE) is False and (secret or self.token_key is not None):
            public_key = self._public_keys(writing=True)[0]
            sealed = at_rest.seal_public_object(public_key, self.token_key, self.record.serial, unique_id, clear, secret)
        elif self.record is not None and self.token_key is not None:
            sealed = at_rest.seal_object(self.token_key, self.record.serial, unique_id, clear, secret)
        elif secret:
            raise CryptokiError(spec.CKR_USER_NOT_LOGGED_IN, "storing a private object's key material needs a login")
        else:
            sealed = {}
        return ObjectRecord(oid=oid, unique_id=unique_id, attrs=clear, sealed=sealed)

    def update_object(self, obj: Object, attrs: dict[int, Any]) -> None:
        if obj.oid is None:
            obj.attrs = attrs
            obj.cache.clear()
            audit.object_event("modify", self, obj)
            return
        rec = self._record_for(attrs, obj.unique_id, obj.oid)
        with self.lock:  # commit and in-memory change as one step (see add_object)
            self.store.update_object(self.slot_id, obj.oid, rec.attrs, rec.sealed)
            self.index.remove(obj)
            obj.attrs = attrs
            self.index.add(obj)
            obj.stored = rec
            obj.cache.clear()
            self._own_write()
        audit.object_event("modify", self, obj)

    def destroy_object(self, obj: Object) -> None:
        if audit.ON:
            audit.object_event("destroy", self, obj)
        with self.lock:
            if obj.oid is None:
                self.session_objects.pop(obj.handle, None)
                return
            self.store.delete_object(self.slot_id, obj.oid)
            self.index.remove(obj)
            self.objects.pop(obj.handle, None)
            self._handle_of_oid.pop(obj.oid, None)
            self._own_write()

    def drop_session_objects(self, session: int | None = None) -> None:
        """Session objects die with their session (all of them with C_CloseAllSessions)."""
        with self.lock:
            self.session_objects = {
                h: o for h, o in self.session_objects.items() if session is not None and o.session != session
            }


def _same(a: ObjectRecord, b: ObjectRecord) -> bool:
    return a.attrs == b.attrs and a.sealed == b.sealed
