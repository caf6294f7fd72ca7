"""The store's TLS to PostgreSQL, for real (issue 19; issue 25 for the host's OpenSSL configuration).

A cluster of its own (`tls_cluster`: ssl=on, a server certificate for 127.0.0.1 signed by a
fresh test CA, log_connections on), so the session cluster's plain-TCP tests keep their
server. The handshakes: `verify-full` with the right CA, `require`, and the refusals (another
CA, a host name the certificate does not name) as CKR_DEVICE_ERROR with libpq's reason in
the log and no password there. Then a C host whose OPENSSL_CONF would break or change libpq's
bundled OpenSSL (store/pg.py `isolate_libpq_openssl`): the store's TLS connections still
work, on TLS (the server's log says so).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest
from store_helpers import make_token
from test_native_hosts import assert_ok, build_dir, compile_host, host_env, run  # noqa: F401  (build_dir: fixture)

import pg
from cryptoki_shim import spec
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.store import Store, new_token_key
from cryptoki_shim.store import pg as store_pg
from p11 import LIB, write_config

PASSWORD = "pw-of-the-tests"  # tests/pg.py's PASSWORD_ROLE

#: Host OpenSSL configurations, each of which breaks or changes a TLS connection of an
#: OpenSSL that reads it (checked: without the isolation each fails libpq's connection).
HOST_CONFIGS = {
    "fips-properties": "alg_section = evp_properties\n[evp_properties]\ndefault_properties = fips=yes\n",
    "unavailable-provider": "providers = provider_sect\n[provider_sect]\nnope = nope_sect\n[nope_sect]\nactivate = 1\n",
    "ssl-conf": ("ssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = sd\n[sd]\nMinProtocol = TLSv1.3\n"
                 "Groups = nonexistentgroup\n"),
}


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[pg.Cluster]:
    cluster = pg.start_cluster(tls=True)
    yield cluster
    cluster.destroy()


def _tls_sessions(cluster: pg.Cluster) -> list[tuple[bool, str]]:
    """(ssl, version) of the TCP connections to the tests' database now open, as the server
    sees them (the caller's open store keeps at least its change listener's)."""
    return [(bool(ssl), str(version)) for ssl, version in cluster.sql(
        f"SELECT s.ssl, coalesce(s.version, '') FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        f"WHERE a.datname = '{pg.SCHEMAS_DB}' AND a.client_addr IS NOT NULL")]


def _device_error(url: str, connect: dict[str, str]) -> CryptokiError:
    with pytest.raises(CryptokiError) as exc:
        with Store(url, connect=connect) as s:
            s.init_token(make_token(1, new_token_key()))
    assert exc.value.ckr == spec.CKR_DEVICE_ERROR, hex(exc.value.ckr)
    return exc.value


@pytest.mark.parametrize("connect", [{"sslmode": "verify-full"}, {"sslmode": "require"}], ids=["verify-full", "require"])
def test_tls_handshake_works(tls_cluster: pg.Cluster, connect: dict[str, str]) -> None:
    """verify-full with the CA of the server's certificate (host 127.0.0.1, named in its SAN),
    and require: a token is written and read back over TLS 1.2+ (the server's pg_stat_ssl)."""
    assert tls_cluster.ca_file is not None
    url = tls_cluster.url(tls_cluster.new_schema(), user=pg.PASSWORD_ROLE, tcp=True)
    args = {**connect, "password": PASSWORD}
    if connect["sslmode"] == "verify-full":
        args["sslrootcert"] = str(tls_cluster.ca_file)
    token_key = new_token_key()
    with Store(url, connect=args) as s:
        s.init_token(make_token(1, token_key))
        assert s.token(1) is not None
        sessions = _tls_sessions(tls_cluster)
    assert sessions and all(ssl and version in ("TLSv1.2", "TLSv1.3") for ssl, version in sessions), sessions


@pytest.mark.parametrize("case", ["another-ca", "wrong-host-name"])
def test_tls_verification_failure_is_device_error_with_the_reason_logged(
        tls_cluster: pg.Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str) -> None:
    """verify-full against a CA that did not sign the server's certificate, or with the right
    CA but a host name (localhost) the certificate does not name: CKR_DEVICE_ERROR, libpq's
    reason in the store's log, the password nowhere in it."""
    assert tls_cluster.ca_file is not None
    schema = tls_cluster.new_schema()
    url = tls_cluster.url(schema, user=pg.PASSWORD_ROLE, tcp=True)
    ca, reason = str(tls_cluster.ca_file), "does not match host name"
    if case == "another-ca":  # a second, unrelated test CA
        (tmp_path / "other-ca.pem").write_bytes(pg.tls_certificates("another CA")[0])
        ca, reason = str(tmp_path / "other-ca.pem"), "certificate verify failed"
    else:
        url = url.replace("@127.0.0.1:", "@localhost:")
    with caplog.at_level(logging.WARNING, logger="cryptoki_shim.store"):
        _device_error(url, {"sslmode": "verify-full", "sslrootcert": ca, "password": PASSWORD})
    assert reason in caplog.text, caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("host_config", sorted(HOST_CONFIGS))
def test_host_openssl_configuration_does_not_reach_the_store_tls(
        tls_cluster: pg.Cluster, build_dir: Path, tmp_path: Path, host_config: str) -> None:  # noqa: F811
    """A C host with OPENSSL_CONF forcing fips=yes, activating a provider that does not exist,
    or requiring TLS 1.3 with a key-exchange group nobody has: the store on PostgreSQL with
    sslmode=verify-full still works (token, login, key pair, ECDSA: host_hermetic.c), its
    connections are TLS (the server's log), and the module's log says it started psycopg's
    bundled libcrypto, not the system one, without a configuration. Before:
    "could not create SSL context: library has no ciphers" / "no suitable key share" and
    CKR_DEVICE_ERROR from the first call that needs the store."""
    assert tls_cluster.ca_file is not None
    conf = write_config(tmp_path)
    url = tls_cluster.url(tls_cluster.new_schema(), tcp=True)
    text = conf.read_text().replace(f'url = "sqlite:///{tmp_path / "store.db"}"',
                                    f'url = "{url}"\nsslmode = "verify-full"\nsslrootcert = "{tls_cluster.ca_file}"', 1)
    assert url in text
    conf.write_text(text)
    cnf = tmp_path / "openssl.cnf"
    cnf.write_text("openssl_conf = openssl_init\n[openssl_init]\n" + HOST_CONFIGS[host_config])
    log = tmp_path / "shim.log"
    seen = len(tls_cluster.log.read_text())
    host = compile_host(build_dir, "host_hermetic")
    res = run([str(host), str(LIB)], host_env(
        conf, OPENSSL_CONF=str(cnf), CRYPTOKI_SHIM_LOG=str(log), CRYPTOKI_SHIM_LOG_LEVEL="debug"))
    assert_ok(res)
    server_log = tls_cluster.log.read_text()[seen:]
    authorized = [line for line in server_log.splitlines() if "connection authorized" in line]
    assert authorized and all("SSL enabled" in line for line in authorized), server_log
    bundled = store_pg._bundled_libcrypto()
    assert bundled and "psycopg_binary.libs/libcrypto-" in bundled
    assert f"libpq's bundled OpenSSL ({bundled}) started without a configuration file" in log.read_text()

