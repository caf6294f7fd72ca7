"""A session: what one handle from C_OpenSession is (§5.6).

``Session`` is a chain, each part built on the one before, with no import going back:
``operations.SessionState`` (the one owner of the session's state and its operations, by
the tables of ``states``) <- ``object_functions.ObjectFunctions`` (§5.7) <-
``crypto_functions.CryptoFunctions`` (§5.8-§5.15) <- ``message.MessageFunctions`` (3.0 message-based
functions) <- ``Session``. The login state it is in
is the token's (per application and token, §5.6); ``module.Module`` opens, closes, logs in
and out, by ``states.OPENED`` and ``states.SESSION``.
"""

from __future__ import annotations

from .message import MessageFunctions


class Session(MessageFunctions):
    """One session (``SessionState`` holds its state; the bases add the C_* functions)."""
