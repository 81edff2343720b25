"""Mutual TLS for one Dask cluster: a fresh CA per cluster and one certificate + key per member.

Only `cryptography` (asyncssh's own dependency) is used: the laptop never needs dask. Everything is PEM bytes in
memory; nothing here logs, prints or saves keys (`repr` hides them). The CA's key lives on the head only
(`~/.cades-tui/dask/ca.key`, 0600) so that a later app run can add members to a running cluster.

dask's TLS (`distributed.security.Security`) verifies the peer's chain against the CA on *both* sides
(`CERT_REQUIRED`) and does not check host names; the certificates still name the member's addresses (IP SANs) and
carry both serverAuth and clientAuth, since every member both listens and connects.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_VALID_DAYS = 825


@dataclass(frozen=True, slots=True)
class ClusterCA:
    """The cluster's certificate authority: `cert_pem` is public, `key_pem` is the secret that signs members."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def name(self) -> str:
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@dataclass(frozen=True, slots=True)
class MemberTLS:
    """What one member (scheduler host, worker, or a client on the head) needs: the CA, its cert and key."""

    name: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_ca(cluster: str, *, valid_days: int = DEFAULT_VALID_DAYS) -> ClusterCA:
    """A fresh self-signed CA named after the cluster (e.g. the head instance's name)."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cades-tui dask CA {cluster}"[:64])])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ClusterCA(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def _san(addresses: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for addr in addresses:
        if not addr or addr in seen:
            continue
        seen.add(addr)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(addr)))
        except ValueError:
            names.append(x509.DNSName(addr))
    return names


def issue(ca: ClusterCA, name: str, addresses: Iterable[str], *, valid_days: int = DEFAULT_VALID_DAYS) -> MemberTLS:
    """A certificate for member `name`, valid for `addresses` (IPs become IP SANs, anything else DNS SANs)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster CA key is not an EC key")
    key = _key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or "member")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=valid_days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_agreement=True,
                                     content_commitment=False, data_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    san = _san(addresses)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return MemberTLS(name, ca.cert_pem, cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def load_ca(cert_pem: bytes, key_pem: bytes) -> ClusterCA:
    """A CA read back from the head; ValueError when the two do not belong together or are not a CA."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster CA key is not an EC key")
    if cert.public_key() != key.public_key():
        raise ValueError("the cluster CA certificate and key do not match")
    if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
        raise ValueError("the cluster CA certificate is not a CA")
    return ClusterCA(cert_pem, key_pem)


def expires(cert_pem: bytes) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
