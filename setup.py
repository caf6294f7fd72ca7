"""The pip build also compiles the library into the package (issue 18 item 2).

``pip install .`` (and a wheel or sdist made from this tree) runs build_ffi.build() after the
package's files are copied: ``cryptoki_shim/libcryptoki_shim.so`` then lies in the installed
package, where native/pyenv.c finds its environment (the package's site directory, or the
venv it belongs to) and ``cryptoki-shim module-path`` finds it. The wheel is therefore tagged
for this Python and platform (``has_ext_modules``). An editable install (the clone's .venv)
builds nothing: the clone's library is build/libcryptoki_shim.so (``make build``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution


class BuildPyWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import build_ffi

        build = self.get_finalized_command("build")
        out = Path(self.build_lib).resolve() / "cryptoki_shim" / "libcryptoki_shim.so"
        build_ffi.build(out, Path(build.build_temp) / "cryptoki-shim")


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:  # the library embeds this CPython: a platform wheel
        return True


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=BinaryDistribution)
