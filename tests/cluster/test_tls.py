"""The cluster's CA and member certificates, checked with a real TLS handshake configured the way dask does it
(both sides CERT_REQUIRED against the cluster CA, no host name check)."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from tui.core.cluster.tls import MemberTLS, expires, issue, load_ca, new_ca


def san_addresses(cert_pem: bytes) -> list[str]:
    """The addresses a certificate names: IP addresses, then DNS names."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(v) for v in ext.get_values_for_type(x509.IPAddress)] + ext.get_values_for_type(x509.DNSName)


def _files(tmp: Path, m: MemberTLS, tag: str) -> tuple[str, str, str]:
    ca, cert, key = tmp / f"{tag}-ca.pem", tmp / f"{tag}.pem", tmp / f"{tag}.key"
    ca.write_bytes(m.ca_pem)
    cert.write_bytes(m.cert_pem)
    key.write_bytes(m.key_pem)
    return str(ca), str(cert), str(key)


def _ctx(purpose: ssl.Purpose, files: tuple[str, str, str] | None, cafile: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(purpose, cafile=cafile)
    if files:
        ctx.load_cert_chain(files[1], files[2])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = False
    return ctx


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[bool, bool]:
    """(server side ok, client side ok) of one TLS handshake over a loopback TCP connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    outcome = {"server": False}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
                tls.recv(2)
                outcome["server"] = True
        except (ssl.SSLError, OSError):
            pass

    t = threading.Thread(target=serve)
    t.start()
    client_ok = False
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw, client.wrap_socket(raw) as tls:
            client_ok = tls.recv(2) == b"ok"
            tls.sendall(b"ok")
    except (ssl.SSLError, OSError):
        pass
    finally:
        t.join(5)
        listener.close()
    return outcome["server"], client_ok


def test_members_of_one_ca_authenticate_each_other(tmp_path: Path) -> None:
    ca = new_ca("head")
    sched = _files(tmp_path, issue(ca, "head", ["10.0.0.5", "127.0.0.1"]), "s")
    worker = _files(tmp_path, issue(ca, "head-w1", ["10.0.0.6"]), "w")
    assert handshake(_ctx(ssl.Purpose.CLIENT_AUTH, sched, sched[0]),
                     _ctx(ssl.Purpose.SERVER_AUTH, worker, worker[0])) == (True, True)


def test_strangers_are_refused(tmp_path: Path) -> None:
    ca, other = new_ca("head"), new_ca("elsewhere")
    sched = _files(tmp_path, issue(ca, "head", ["10.0.0.5"]), "s")
    stranger = _files(tmp_path, issue(other, "x", ["10.0.0.9"]), "x")
    server = _ctx(ssl.Purpose.CLIENT_AUTH, sched, sched[0])
    assert handshake(server, _ctx(ssl.Purpose.SERVER_AUTH, stranger, stranger[0]))[0] is False
    # No client certificate at all (what a plain `Security()` client would do): refused too.
    assert handshake(server, _ctx(ssl.Purpose.SERVER_AUTH, None, sched[0]))[0] is False


def test_certificates_name_the_addresses_and_keys_stay_out_of_repr() -> None:
    ca = new_ca("head")
    m = issue(ca, "head-w1", ["10.0.0.6", "127.0.0.1", "10.0.0.6", "", "w1.local"])
    assert san_addresses(m.cert_pem) == ["10.0.0.6", "127.0.0.1", "w1.local"]
    assert b"PRIVATE KEY" in m.key_pem and b"PRIVATE KEY" in ca.key_pem
    assert "PRIVATE" not in repr(m) and "PRIVATE" not in repr(ca) and "key_pem" not in repr(m)
    assert expires(m.cert_pem) <= expires(ca.cert_pem)
    assert ca.name == "cades-tui dask CA head"


def test_a_ca_read_back_must_match_its_key() -> None:
    ca, other = new_ca("a"), new_ca("b")
    assert load_ca(ca.cert_pem, ca.key_pem) == ca
    with pytest.raises(ValueError, match="do not match"):
        load_ca(ca.cert_pem, other.key_pem)
    member = issue(ca, "m", ["10.0.0.1"])
    with pytest.raises(ValueError, match="not a CA"):
        load_ca(member.cert_pem, member.key_pem)
