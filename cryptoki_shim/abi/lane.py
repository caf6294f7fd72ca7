"""The native lane's ABI side (issue 22; core/lane.py, native/lane.c).

At C_Initialize, ``configure`` turns the lane on or off (``[module] native_lane``, and a
library that has the lane) and gives core/lane.py the lane's builtins; the C wrappers'
``shim_py_lane_adopt`` (a session's lane operations handed back to Python before any other
Python call on that session) is attached here, because only this layer touches the library.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import runtime
from ..config import Config
from ..core import lane as core_lane
from ..core.module import MODULE
from ..spec_ints import CKR_GENERAL_ERROR
from . import limits

_log = logging.getLogger(__name__)
CKR_OK = 0
_attached = [False]


def configure(config: Config | None) -> None:
    """The lane on or off for this C_Initialize (the C side forgets every session either way)."""
    impl = _builtins()
    on = impl is not None and config is not None and config.native_lane
    if impl is not None:
        impl.enable(1 if on else 0, limits.DATA.size)
    core_lane.install(impl if on else None)


def _builtins() -> Any:
    """The lane's builtin module, or None for a library built without it."""
    publish = getattr(runtime.lib, "shim_lane_publish", None)
    if publish is None or not publish():
        return None
    import _cryptoki_shim_lane  # type: ignore[import-not-found]  # made by the call above

    if not _attached[0]:
        runtime.ffi.def_extern(name="shim_py_lane_adopt", error=CKR_GENERAL_ERROR, onerror=_onerror)(_adopt)
        _attached[0] = True
    return _cryptoki_shim_lane


def _adopt(handle: int) -> int:
    """``shim_py_lane_adopt``: the C wrapper of a Python call on this session found a lane
    operation there; it becomes the session's Python operation first (core/lane.py adopt)."""
    session = MODULE.sessions.get(handle)
    if session is None:  # ended meanwhile (its lane state goes with it)
        core_lane.forget(handle)
    else:
        core_lane.adopt(session)
    return CKR_OK


def _onerror(exc_type: Any, exc_value: Any, tb: Any) -> int:
    """Never raises, never prints (an adoption that failed leaves no operation: the call that
    follows answers as for none, CKR_OPERATION_NOT_INITIALIZED)."""
    try:
        _log.error("native lane: adopting a session's operation failed", exc_info=(exc_type, exc_value, tb))
    except BaseException:
        pass
    return CKR_GENERAL_ERROR
