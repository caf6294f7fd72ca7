"""A real swtpm per test module (DESIGN.md §6): unix sockets in a short mkdtemp directory
(AF_UNIX paths are limited to ~107 bytes), the control channel, ``TPM2_Shutdown(CLEAR)``
before SIGTERM to our own PID (killing without shutdown counts toward dictionary lockout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("TSS2_LOG", "all+NONE")


class Swtpm:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="sw", dir="/tmp")
        self.tcti = f"swtpm:path={self.dir}/s"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        sock = Path(self.dir, "s")
        sock.unlink(missing_ok=True)
        Path(self.dir, "s.ctrl").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.dir}",
             "--server", f"type=unixio,path={sock}", "--ctrl", f"type=unixio,path={self.dir}/s.ctrl",
             "--flags", "not-need-init,startup-clear"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("swtpm did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            from tpm2_pytss import ESAPI
            from tpm2_pytss.constants import TPM2_SU
            ectx = ESAPI(self.tcti)
            ectx.shutdown(TPM2_SU.CLEAR)
            ectx.close()
        except Exception:
            pass
        self.proc.terminate()
        self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def swtpm():
    if shutil.which("swtpm") is None:
        pytest.fail("swtpm is not installed (apt-get install swtpm swtpm-tools)")
    tpm = Swtpm()
    tpm.start()
    yield tpm
    tpm.remove()
