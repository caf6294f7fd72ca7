# Targets run inside the set-up made by ./run (apt packages, .venv). See README.md.
PY      := .venv/bin/python
LIB     := build/libcryptoki_shim.so
SOURCES := build_ffi.py $(wildcard native/*.h native/*.c)

.PHONY: build demo test test-fast fuzz soak bench conformance clean

build: $(LIB)

$(LIB): $(SOURCES)
	$(PY) build_ffi.py

demo: build
	$(PY) -m cryptoki_shim.cli demo

test: build
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: build
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

conformance: build
	$(PY) -m conformance

clean:
	rm -rf build
