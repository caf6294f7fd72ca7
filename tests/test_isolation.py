"""Output rules of cryptoki_shim.abi.isolation (issue 25 item 3), each in a fresh process.

silence_output replaces interpreter-wide state (sys.stdout/stderr, sys.unraisablehook), so
every check runs in its own interpreter; the real file descriptors 1 and 2 are what the
test reads. The C-host paths through the built library are in test_native_hosts.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PRELUDE = r'''
import cffi, logging, sys
from cryptoki_shim import log
from cryptoki_shim.abi import isolation
log.configure(sys.argv[1], "debug")
ffi = cffi.FFI()

def cffi_callback_raising(module_name):
    """A cffi callback whose Python function raises, with no onerror: cffi reports it as
    "Exception ignored from cffi callback" through sys.unraisablehook."""
    scope = {"__name__": module_name}
    exec("def boom():\n    raise RecursionError('maximum recursion depth exceeded (test)')\n", scope)
    cb = ffi.callback("int(void)", scope["boom"])
    return cb()
'''


def _run(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "shim.log"
    res = subprocess.run([sys.executable, "-c", PRELUDE + body, str(log)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return res, log.read_text() if log.exists() else ""


def test_c_host_mode_sends_stdout_stderr_and_unraisable_reports_to_our_log(tmp_path: Path) -> None:
    res, text = _run(tmp_path, r'''
isolation.silence_output(owns_interpreter=True)
print("a line some library printed")
sys.stderr.write("a warning some library wrote\n")
cffi_callback_raising("somebody_else")
''')
    assert (res.stdout, res.stderr) == ("", "")
    assert "a line some library printed" in text and "a warning some library wrote" in text
    assert "cffi callback" in text and "RecursionError" in text


@pytest.mark.parametrize("module", ["cryptoki_shim.abi.fake", "_cryptoki_shim"])
def test_python_host_mode_logs_reports_of_our_callbacks_only(tmp_path: Path, module: str) -> None:
    res, text = _run(tmp_path, rf'''
isolation.silence_output(owns_interpreter=False)
cffi_callback_raising({module!r})
print("host output stays", flush=True)
''')
    assert res.stdout == "host output stays\n"
    assert res.stderr == "", "a report from our callback reached the host's stderr"
    assert "cffi callback" in text and "RecursionError" in text


def test_python_host_mode_leaves_the_hosts_reports_to_the_host(tmp_path: Path) -> None:
    res, text = _run(tmp_path, r'''
isolation.silence_output(owns_interpreter=False)
cffi_callback_raising("the_hosts_module")
''')
    assert "Exception ignored from cffi callback" in res.stderr and "RecursionError" in res.stderr
    assert "RecursionError" not in text


def test_python_host_mode_logs_our_warnings_and_shows_the_hosts(tmp_path: Path) -> None:
    res, text = _run(tmp_path, r"""
import warnings
warnings.simplefilter("always")  # the host's filters decide what is shown at all
isolation.silence_output(owns_interpreter=False)
warnings.warn_explicit("ours: deprecated thing", DeprecationWarning, isolation.__file__, 1)
warnings.warn_explicit("the host's own warning", UserWarning, "/somewhere/else.py", 2)
""")
    assert "ours: deprecated thing" in text and "ours: deprecated thing" not in res.stderr
    assert "the host's own warning" in res.stderr and "the host's own warning" not in text
