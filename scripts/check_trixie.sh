#!/usr/bin/env bash
# make check-trixie: the module built and used on Debian 13 (trixie, Python 3.13) in a
# debootstrap chroot (issue 18 item 4). Needs root, debootstrap and the Debian mirror (and PyPI
# for the Python dependencies). The chroot is kept between runs in $TRIXIE_ROOT.
#
# In the chroot, from a copy of this tree (its tracked and new files, no build products):
#   1. a clone's flow: python3 -m venv .venv, pip install -e '.[test]' (as ./run), make build, then pkcs11-tool
#      makes a token and an EC key and signs with build/libcryptoki_shim.so (which finds ../.venv),
#      and tests/test_smoke.py, test_native_hosts.py, test_install_relocatable.py run;
#   2. cryptoki-shim serve: p11-kit's server and client module, a key and an ECDSA-SHA256 signature
#      through them (p11-kit 0.25 forwards it; 0.24 does not);
#   3. pip: pip install . into another venv, module-path, a signature with that module.
# Prints "check-trixie: OK (Python 3.13.x)" at the end, or stops at the first failure.
#
# --full (make check-trixie FULL=1): instead, the README's two commands on a fresh `git clone` of this
# tree's HEAD (commit first) in $ROOTFS/work/cryptoki-shim: `./run demo`, then `./run test` (the whole
# suite: ./run installs the release's packages, PostgreSQL, the JDK, swtpm ...). pytest's output
# goes to build/check-trixie-full.log here; ~8 min on 2 cores once the packages are in. Services the packages would start in
# the chroot are kept off (policy-rc.d), and any process left in the chroot is killed at the end.
# TRIXIE_PYTEST_ADDOPTS (e.g. "-k serve") narrows the suite for a re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=${FULL:-}
[ "${1:-}" = --full ] && FULL=1

ROOTFS=${TRIXIE_ROOT:-/var/tmp/cryptoki-shim-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python3-dev,libpython3-dev,gcc,make,pkg-config,libssl-dev,libtss2-dev,libffi-dev,p11-kit,opensc,ca-certificates

if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
  debootstrap --variant=minbase --include="$PACKAGES" trixie "$ROOTFS" "$MIRROR"
fi

rm -rf "$ROOTFS/src"
mkdir -p "$ROOTFS/src"
git ls-files -co --exclude-standard | grep -v '^build/' | tar -cf - -T - | tar -C "$ROOTFS/src" -xf -
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# this machine's CA bundle for pip (a TLS-inspecting proxy's CA, if it has one)
ca=${PIP_CERT:-${SSL_CERT_FILE:-}}
pip_cert=
if [ -n "$ca" ] && [ -f "$ca" ]; then
  cp "$ca" "$ROOTFS/etc/ssl/certs/host-ca-bundle.crt"
  pip_cert=/etc/ssl/certs/host-ca-bundle.crt
fi

# no daemon started by a package's postinst (PostgreSQL's cluster, dbus, tpm2-abrmd) in the chroot
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

# processes whose root is the chroot (a test's server left behind), by pid
chroot_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$(readlink -f "$ROOTFS")" ] && echo "${p#/proc/}"
  done
  return 0
}
mounted=()
cleanup() {
  local pids
  pids=$(chroot_pids)
  if [ -n "$pids" ]; then
    echo "check-trixie: killing processes left in the chroot: $(echo $pids)" >&2
    kill $pids 2>/dev/null || true; sleep 2; kill -9 $(chroot_pids) 2>/dev/null || true
  fi
  for m in "${mounted[@]}"; do umount "$m" || true; done
}
trap cleanup EXIT
for d in proc dev dev/pts sys; do
  mount --bind "/$d" "$ROOTFS/$d"
  mounted=("$ROOTFS/$d" "${mounted[@]}")
done
mount -t tmpfs -o mode=1777 tmpfs "$ROOTFS/dev/shm"   # multiprocessing's semaphores
mounted=("$ROOTFS/dev/shm" "${mounted[@]}")
chroot_env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 ${pip_cert:+PIP_CERT=$pip_cert})

if [ -n "$FULL" ]; then
  rm -rf "$ROOTFS/work"
  mkdir -p "$ROOTFS/work" build
  git clone -q "$PWD" "$ROOTFS/work/cryptoki-shim"
  echo "check-trixie: full: ./run demo and ./run test in a clone of $(git rev-parse --short HEAD)"
  log=build/check-trixie-full.log
  start=$(date +%s)
  chroot "$ROOTFS" "${chroot_env[@]}" /bin/bash -c 'cd /work/cryptoki-shim && ./run demo' >"$log" 2>&1 \
    || { tail -30 "$log"; echo "check-trixie: ./run demo FAILED (log: $log)"; exit 1; }
  demo_s=$(( $(date +%s) - start )); start=$(date +%s)
  rc=0
  chroot "$ROOTFS" "${chroot_env[@]}" PYTEST_ADDOPTS="-v -v -rfEs ${TRIXIE_PYTEST_ADDOPTS:-}" \
    /bin/bash -c 'cd /work/cryptoki-shim && ./run test' >>"$log" 2>&1 || rc=$?
  test_s=$(( $(date +%s) - start ))
  grep -E '^(FAILED|ERROR) ' "$log" || true
  echo "check-trixie: ./run demo ok (${demo_s} s); ./run test exit $rc (${test_s} s): $(grep -E '^=+ .*(passed|failed).* =+$' "$log" | tail -1)"
  echo "check-trixie: $(chroot "$ROOTFS" python3 -V), p11-kit $(chroot "$ROOTFS" dpkg-query -W -f='${Version}' p11-kit), log: $log"
  [ "$rc" = 0 ] && echo "check-trixie: FULL OK"
  exit "$rc"
fi

chroot "$ROOTFS" "${chroot_env[@]}" /bin/bash -euo pipefail -c '
cd /src
version=$(python3 -c "import sys; print(sys.version.split()[0])")
sign() {   # sign MODULE: a token, an EC P-256 key, a signature of 64 bytes
  local work; work=$(mktemp -d)
  printf "[store]\nurl = \"sqlite:///%s/store.db\"\n[[slots]]\nid = 0\nkdf_cost = \"test\"\n" "$work" > "$work/c.toml"
  export CRYPTOKI_SHIM_CONF=$work/c.toml CRYPTOKI_SHIM_LOG=$work/log
  local tool=(pkcs11-tool --module "$1")
  "${tool[@]}" --init-token --label trixie --so-pin 12345678 >/dev/null
  "${tool[@]}" --init-pin --so-pin 12345678 --pin 1234 >/dev/null
  "${tool[@]}" -l --pin 1234 --keypairgen --key-type EC:prime256v1 --id 01 >/dev/null
  echo "signed on trixie" > "$work/msg"
  "${tool[@]}" -l --pin 1234 --sign -m ECDSA-SHA256 --id 01 -i "$work/msg" -o "$work/sig" >/dev/null 2>&1 \
    || { cat "$work/log" 2>/dev/null; exit 1; }
  test "$(stat -c %s "$work/sig")" = 64
  echo "check-trixie: $1 signed (Python $version)"
}
rm -rf .venv build
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'     # what ./run does
make -s build PY=.venv/bin/python
sign "$PWD/build/libcryptoki_shim.so"
# a share of the suite on this Python: the library in C hosts, relocation, the smoke test
.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_smoke.py tests/test_native_hosts.py \
  tests/test_install_relocatable.py

# serve: p11-kit 0.25 server and client, the token in another process
work=$(mktemp -d)
printf "[store]\nurl = \"sqlite:///%s/store.db\"\n[[slots]]\nid = 0\nkdf_cost = \"test\"\n" "$work" > "$work/c.toml"
export CRYPTOKI_SHIM_CONF=$work/c.toml
pkcs11-tool --module "$PWD/build/libcryptoki_shim.so" --init-token --label served --so-pin 12345678 >/dev/null
pkcs11-tool --module "$PWD/build/libcryptoki_shim.so" --init-pin --so-pin 12345678 --pin 1234 >/dev/null
eval "$(.venv/bin/cryptoki-shim serve --socket "$work/sock")"
client=(pkcs11-tool --module "$CRYPTOKI_SHIM_CLIENT_MODULE" -l --pin 1234)
"${client[@]}" --keypairgen --key-type EC:prime256v1 --id 02 >/dev/null
echo "through p11-kit" > "$work/msg"
"${client[@]}" --sign -m ECDSA-SHA256 --id 02 -i "$work/msg" -o "$work/sig" >/dev/null 2>&1
kill "$P11_KIT_SERVER_PID"
test "$(stat -c %s "$work/sig")" = 64
echo "check-trixie: signed through cryptoki-shim serve (p11-kit $(dpkg-query -W -f="\${Version}" p11-kit))"

rm -rf /opt/cs && python3 -m venv /opt/cs
/opt/cs/bin/pip install -q .
sign "$(/opt/cs/bin/cryptoki-shim module-path)"
echo "check-trixie: OK (Python $version)"
'
