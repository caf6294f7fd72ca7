"""The cffi objects of the library we run inside, set once by ``abi.entry.install``.

``ffi``/``lib``/``NULL`` of the embedded module (``build/libcryptoki_shim.so``): the ABI
layer reads C arguments through them, and the mechanisms reach our own C helpers through
``lib`` (``native/fastsign.c``, ``native/digest.c``: ``mechanisms/native.py`` and
``mechanisms/digest.py``). All three are None when the package runs without the library
(the admin CLI, tests importing the package): the families then keep pyca as their path.

At the bottom of the layers (docs/architecture.md "Layers"), not in ``abi/``, so that the
mechanisms read it without importing the ABI layer above them (issue 16 item 5). No C
pointer of a *client* goes below ``abi/``: only the ABI layer reads or writes those.
``tests/test_layering.py`` allows this module to be imported by ``abi/`` and those two
mechanism modules only.
"""

from typing import Any

ffi: Any = None
lib: Any = None
NULL: Any = None
