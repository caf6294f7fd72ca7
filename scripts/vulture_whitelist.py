"""Names vulture (scripts/lint.py) would call unused that are used from outside Python's view.

Each line names one thing and says who uses it. Nothing here is imported or run; vulture only
reads the names. The C entry points ``C_*`` are not listed: pyproject's ``[tool.vulture]``
``ignore_names`` covers them (abi/entry.py attaches them by name from native/functions.h).
"""

from typing import Any

_: Any = None

# --- arguments of C entry points that the spec defines and we do not need (§5.x signatures)
_.notify  # C_OpenSession: the module makes no Notify callbacks
_.p_application  # C_OpenSession: passed back to Notify only
_.p_username  # C_LoginUser: a token without user names ignores the name (§5.6.9)
_.username_len  # C_LoginUser
_.token_present  # C_GetSlotList: every slot has its token
_.p_slot  # C_WaitForSlotEvent: our slots never change, no event to report

# --- fields of C structures we fill in for the caller (read by C, not by Python)
_.ulMaxSessionCount  # CK_TOKEN_INFO (abi/slots.py)
_.ulMaxRwSessionCount
_.ulTotalPublicMemory
_.ulFreePublicMemory
_.ulTotalPrivateMemory
_.ulFreePrivateMemory

# --- protocols implemented for a caller that looks them up by name
_.writelines  # abi/isolation.py _LogSink: sys.stdout/sys.stderr's file protocol
_.writable  # abi/isolation.py _LogSink
_.raiseExceptions  # abi/isolation.py sets logging.raiseExceptions (read by logging)
_.handleError  # log.py: logging.Handler's hook, called by logging on an emit error
_.__getattr__  # attributes/__init__.py, store/__init__.py: PEP 562 module attributes
_.verify_recover_init  # mechanisms/registry.py INIT_METHODS: Family methods looked up by name

# --- decoded C parameters kept whole (the struct's layout), not read by any mechanism yet
_.prf_data  # mechanisms/params.py Pkcs5Pbkd2Params: CK_PKCS5_PBKD2_PARAMS2.pPrfData

# --- Textual's protocol (cli/tui_app.py): class attributes and handlers Textual looks up by name
_.BINDINGS
_.TITLE
_.CSS
_.compose
_.on_mount
_.on_button_pressed
_.on_input_submitted
_.on_data_table_row_highlighted
_.on_data_table_row_selected
_.action_cancel
_.action_close
_.action_show_tab
_.action_login
_.action_init
_.action_set_pin
_.action_import
_.action_backup
