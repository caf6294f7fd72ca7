"""Object management on a session (§5.7): create, copy, destroy, attributes, search.

Built on ``SessionState`` (``Session``'s chain, see ``session``): each method is what one
``C_*`` function does once its arguments are Python values. The attribute rules themselves live in ``attributes.policy`` (one table
per class, one validator); here are only the session/login/token rules around them.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import backends, spec
from ..spec_ints import (
    CKA_CLASS,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_PRIVATE,
    CKA_SHIM_BACKEND,
    CKA_TOKEN,
    CKM_SHA_1,
    CKO_DOMAIN_PARAMETERS,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
)
from ..attributes import policy
from ..attributes.policy import Origin
from ..errors import CryptokiError
from ..mechanisms import digest
from .objects import Object
from .operations import Operation, SessionState
from .states import FINAL, UPDATE
from .states import OPERATION
from .token import CKU_SO, CKU_USER

KEY_CLASSES = (CKO_PRIVATE_KEY, CKO_SECRET_KEY, CKO_PUBLIC_KEY)
#: Objects whose values C_CreateObject checks as material (DSA/DH domain parameters too).
MATERIAL_CLASSES = (*KEY_CLASSES, CKO_DOMAIN_PARAMETERS)
FIND_BATCH_MAX = 1 << 20
# The SHA-1 of every new secret key's CKA_CHECK_VALUE (attributes.policy): the mechanisms
# layer's hermetic one-shot (native/digest.c once the library is bound, else pyca), which
# the attribute layer below cannot import; a pyca Hash object per key was ~0.8 us of a KEM call.
policy.use_sha1(functools.partial(digest.digest, CKM_SHA_1))


class FindCursor:
    """The result of C_FindObjectsInit, handed out in batches by C_FindObjects."""

    __slots__ = ("handles", "pos")

    def __init__(self, handles: list[int]) -> None:
        self.handles = handles
        self.pos = 0

    def take(self, n: int) -> list[int]:
        out = self.handles[self.pos : self.pos + n]
        self.pos += len(out)
        return out


class ObjectFunctions(SessionState):
    # ------------------------------------------------------------------ checks

    def check_may_create(self, attrs: dict[int, Any]) -> None:
        """Token objects need a RW session; private objects a logged-in user (§5.7)."""
        if attrs.get(CKA_TOKEN) is True and not self.rw:
            raise CryptokiError(spec.CKR_SESSION_READ_ONLY, "token object in a read-only session")
        if attrs.get(CKA_PRIVATE) is True and self.token.login_user != CKU_USER:
            raise CryptokiError(spec.CKR_USER_NOT_LOGGED_IN, "private object needs the user logged in")

    def _still_open(self) -> None:
        """After a store refresh: the token may have been re-initialized elsewhere, which
        ends this session (`Module._token_replaced`)."""
        if self.handle not in self.token.session_handles:
            raise CryptokiError(spec.CKR_SESSION_HANDLE_INVALID, "the token was re-initialized elsewhere")

    def object(self, handle: int) -> Object:
        obj = self.token.find_object(handle)
        self._still_open()
        if obj is None:
            raise CryptokiError(spec.CKR_OBJECT_HANDLE_INVALID, f"object {handle}")
        return obj

    def key(self, handle: int) -> Object:
        obj = self.token.find_object(handle, exact=False)  # the operation path: no SQL (store/pg.py)
        self._still_open()
        if obj is None or obj.attrs.get(CKA_CLASS) not in KEY_CLASSES:
            raise CryptokiError(spec.CKR_KEY_HANDLE_INVALID, f"key {handle}")
        if obj.locked:
            raise CryptokiError(spec.CKR_USER_NOT_LOGGED_IN, "key material locked until a login")
        return obj

    def _check_may_change(self, obj: Object) -> None:
        if not self.rw and obj.is_token:
            raise CryptokiError(spec.CKR_SESSION_READ_ONLY, "token object in a read-only session")

    @property
    def is_so(self) -> bool:
        return self.token.login_user == CKU_SO

    def add(self, attrs: dict[int, Any]) -> Object:
        """Store a complete new object (token or session) after the session checks."""
        self.check_may_create(attrs)
        return self.token.add_object(attrs, None if attrs.get(CKA_TOKEN) is True else self.handle)

    # ------------------------------------------------------------------ functions

    def held_by_caller(self, template: dict[int, Any], supplied: bool) -> dict[int, Any]:
        """The CKA_PRIVATE default of a session object the caller already holds (issue 25
        item 4): FALSE when no user is logged in, the object is a session object, its value
        came from the caller (``supplied``: C_CreateObject, or a derivation from such objects
        only) and the template does not name CKA_PRIVATE. pkcs11-provider imports a PEM key or
        an HKDF secret that way in a public session; the value is already the caller's, so
        making it private protects nothing and refuses the import. Never for token objects,
        nor for keys generated, unwrapped or derived from token keys (they keep the TRUE
        default, which needs a login); an explicit CKA_PRIVATE=TRUE still needs one; the slot
        option ``strict_private_default = true`` keeps TRUE everywhere (SoftHSM2's answer)."""
        if (not supplied or CKA_PRIVATE in template or template.get(CKA_TOKEN) is True
                or self.token.login_user == CKU_USER or self.token.cfg.strict_private_default):
            return template
        held = type(template)(template)  # keeps codec.Decoded: its values are already checked
        held[CKA_PRIVATE] = False
        return held

    def create_object(self, template: dict[int, Any]) -> int:
        template = self.held_by_caller(template, True)
        attrs = policy.build_object(template, Origin.CREATE, is_so=self.is_so)
        if attrs.get(CKA_CLASS) in MATERIAL_CLASSES:  # created keys are software keys (CKA_SHIM_BACKEND: X2)
            attrs.update(self.token.backends[backends.SOFTWARE].import_key(attrs))
        obj = self.add(attrs)
        obj.supplied = not obj.is_token
        return obj.handle

    def copy_object(self, handle: int, template: dict[int, Any]) -> int:
        obj = self.object(handle)
        if obj.attrs.get(CKA_COPYABLE, True) is False:
            raise CryptokiError(spec.CKR_ACTION_PROHIBITED, "CKA_COPYABLE is FALSE")
        attrs = policy.build_object(template, Origin.COPY, base=dict(obj.attrs), is_so=self.is_so)
        return self.add(attrs).handle

    def destroy_object(self, handle: int) -> None:
        obj = self.object(handle)
        self._check_may_change(obj)
        if obj.attrs.get(CKA_DESTROYABLE, True) is False:
            raise CryptokiError(spec.CKR_ACTION_PROHIBITED, "CKA_DESTROYABLE is FALSE")
        if obj.attrs.get(CKA_CLASS) in KEY_CLASSES:
            self.token.backend_for(obj).destroyed(obj)
        self.token.destroy_object(obj)

    def object_size(self, handle: int) -> int:
        obj = self.object(handle)
        from ..attributes import codec

        return sum(len(codec.encode(t, v)) for t, v in obj.attrs.items())

    def attribute_value(self, obj: Object, atype: int) -> Any:
        """One attribute for C_GetAttributeValue: its value, or SENSITIVE / TYPE_INVALID."""
        attrs = obj.attrs
        if atype in obj.locked:  # sealed at rest and the token key is not unlocked: not absent
            raise CryptokiError(spec.CKR_ATTRIBUTE_SENSITIVE, f"attribute {atype:#x} locked until a login")
        if atype == CKA_SHIM_BACKEND and attrs.get(CKA_CLASS) in KEY_CLASSES:
            return backends.backend_id_of(attrs)  # every key answers where it lives (software if unset)
        if atype not in attrs:
            raise CryptokiError(spec.CKR_ATTRIBUTE_TYPE_INVALID, f"attribute {atype:#x}")
        if not policy.readable(attrs, atype):
            raise CryptokiError(spec.CKR_ATTRIBUTE_SENSITIVE, f"attribute {atype:#x}")
        return attrs[atype]

    def set_attributes(self, handle: int, changes: dict[int, Any]) -> None:
        obj = self.object(handle)
        self._check_may_change(obj)
        new = policy.check_set(dict(obj.attrs), changes, is_so=self.is_so)
        if new.get(CKA_PRIVATE) is True and not obj.is_private:
            self.check_may_create(new)
        self.token.update_object(obj, new)

    def find_init(self, template: list[tuple[int, Any]] | None) -> None:
        if "find" in self.ops:
            self.busy("find")
        token = self.token
        handles = [] if template is None else token.search(template)
        self._still_open()
        self.ops["find"] = Operation("find", FindCursor(handles))

    def find(self, max_count: int) -> list[int]:
        """C_FindObjects: the search's update step (states.KINDS)."""
        op = self.ops.get("find")
        if op is None:
            op = self._active("find", UPDATE)  # raises: not initialized
        handles = op.ctx.take(min(max_count, FIND_BATCH_MAX))
        op.mode = OPERATION[op.mode][UPDATE]
        return handles

    def find_final(self) -> None:
        """C_FindObjectsFinal: the search's final step, which ends it."""
        if self.ops.pop("find", None) is None:
            self._active("find", FINAL)  # raises: not initialized
