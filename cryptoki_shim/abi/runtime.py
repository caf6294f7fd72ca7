"""The cffi objects of the embedded module, set once by ``entry.install``.

Kept in one tiny module so every marshalling helper reads the same ``ffi`` and ``NULL``
without importing the embedded extension (which exists only inside the built library).
"""

from typing import Any

ffi: Any = None
lib: Any = None
NULL: Any = None
