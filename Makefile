# Targets run inside the set-up made by ./run (apt packages, .venv). See README.md.
PY      := .venv/bin/python
LIB     := build/libcryptoki_shim.so
SOURCES := build_ffi.py $(wildcard native/*.h native/*.c)

.PHONY: build demo lint test test-fast fuzz soak bench conformance clean

# The .pyc files are written here: the library imports the package from this tree, and a
# host that cannot write them (another user, a read-only tree) would compile every module
# on each start (cold start ~350 ms instead of ~45 ms).
build: $(LIB)
	$(PY) -m compileall -q cryptoki_shim

$(LIB): $(SOURCES)
	$(PY) build_ffi.py

demo: build
	$(PY) -m cryptoki_shim.cli demo

# ruff, mypy and vulture with pyproject.toml's settings (scripts/lint.py): a finding fails the
# build before any test runs (issue 16 item 6). About 2 s with mypy's cache (build/mypy_cache).
lint:
	$(PY) scripts/lint.py

test: build lint
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: build lint
	$(PY) -m pytest -q -x -p no:cacheprovider tests -m "not slow"

fuzz: build
	CRYPTOKI_SHIM_FUZZ=long $(PY) -m pytest -q -s -p no:cacheprovider tests -m fuzz

soak: build
	CRYPTOKI_SHIM_SOAK=long $(PY) -m pytest -q -s -p no:cacheprovider tests -m soak

bench: build
	$(PY) -m bench

.PHONY: bench-tpm
bench-tpm: build
	$(PY) -m bench.tpm

# Per-process cost: module load -> first signature with the default PIN KDF, ours vs SoftHSM2.
.PHONY: bench-process
bench-process: build
	$(PY) -m bench.firstsig

conformance: build
	$(PY) -m conformance

# The Debian package (issue 18, docs/install.md): build/deb/cryptoki-shim_<version>_<arch>.deb,
# lintian's report in build/deb/lintian.txt.
.PHONY: deb
deb: build
	$(PY) scripts/build_deb.py

# Debian 13 (Python 3.13) in a debootstrap chroot: build, sign, part of the suite (docs/install.md);
# with FULL=1, ./run demo and ./run test (the whole suite) in a fresh clone there.
.PHONY: check-trixie
check-trixie:
	scripts/check_trixie.sh $(if $(FULL),--full)

clean:
	rm -rf build
