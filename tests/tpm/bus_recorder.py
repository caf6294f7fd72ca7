"""A recording man-in-the-middle between our TSS and swtpm: what a bus sniffer would see.

It listens on its own unix sockets (``<dir>/p`` for TPM commands, ``<dir>/p.ctrl`` for the
swtpm control channel, the pair the swtpm TCTI opens for ``swtpm:path=<dir>/p``), forwards
every byte to the real swtpm and keeps a copy of both directions. The data channel carries
raw TPM command and response buffers, so ``recorded`` is exactly the traffic a logic
analyser on an SPI/LPC bus to a discrete TPM would capture.

Why a socket proxy and not a Python TCTI (tpm2-pytss 3.0 has ``PyTCTI``): it needs no hook in
the production code path (``tpm_conn.open_tpm`` opens a TCTI from its string as always).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading


class BusRecorder:
    def __init__(self, upstream_path: str) -> None:
        self.upstream = upstream_path
        self.dir = tempfile.mkdtemp(prefix="bus", dir="/tmp")
        self.path = os.path.join(self.dir, "p")
        self.tcti = f"swtpm:path={self.path}"
        self._lock = threading.Lock()
        self._data = bytearray()
        self._commands = bytearray()  # the data channel only: TPM commands and responses
        self._listeners: list[socket.socket] = []
        self._stop = threading.Event()
        for suffix in ("", ".ctrl"):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.path + suffix)
            listener.listen(8)
            self._listeners.append(listener)
            threading.Thread(target=self._accept, args=(listener, self.upstream + suffix, suffix == ""),
                             daemon=True).start()

    def recorded(self) -> bytes:
        with self._lock:
            return bytes(self._data)

    def tpm_stream(self) -> bytes:
        """The data channel alone: command, response, command, ... (for counting commands)."""
        with self._lock:
            return bytes(self._commands)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._commands.clear()

    def _accept(self, listener: socket.socket, target: str, data_channel: bool) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, data_channel), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, data_channel: bool) -> None:
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    self._data += chunk
                    if data_channel:
                        self._commands += chunk
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        for listener in self._listeners:
            listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)
