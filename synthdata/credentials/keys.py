"""A local test certificate authority and signer, for trying Content Credentials.

A signer made here is trusted by nobody outside the team that holds its ``ca.pem``: verifiers
elsewhere report it as untrusted. Publish sets signed with a certificate from a real CA (one
whose root is on the C2PA trust list) when others must trust who signed them.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from synthdata.atomic import commit, partial_name
from synthdata.errors import SynthdataError

CA_FILE = "ca.pem"
CHAIN_FILE = "signer-chain.pem"
KEY_FILE = "signer-key.pem"
ORGANIZATION = "synthdata local test CA (untrusted outside the team)"


@dataclass(frozen=True)
class KeyFiles:
    """The files :func:`init_keys` wrote: the root to trust, the signer's chain and its key."""

    ca: Path
    cert_chain: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )


def _key_usage(*, sign_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=sign_certificates,
        crl_sign=sign_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(subject, issuer, public_key, issuer_key, days: int, *, ca: bool) -> x509.Certificate:
    """An X.509 v3 certificate with the extensions C2PA asks of a root or of a signer: a signer
    is no CA, may only sign (digitalSignature) and has an EKU C2PA accepts (emailProtection)."""
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # clock skew between machines
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_key_usage(sign_certificates=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` under a temporary name created with ``mode``, then rename it into place."""
    partial = partial_name(path)
    partial.unlink(missing_ok=True)
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    commit(partial, path)


def init_keys(folder: Path, *, signer_name: str = "synthdata test signer", days: int = 365) -> KeyFiles:
    """Write a self-signed root (``ca.pem``), a signer certificate chain (``signer-chain.pem``:
    signer then root) and the signer's private key (``signer-key.pem``, mode 0600), all ES256
    (P-256). Existing key files are never overwritten. The signer is untrusted outside the team:
    only verifiers given this ``ca.pem`` as a trust anchor accept it."""
    folder = Path(folder)
    files = KeyFiles(ca=folder / CA_FILE, cert_chain=folder / CHAIN_FILE, key=folder / KEY_FILE)
    existing = [str(p) for p in (files.key, files.cert_chain, files.ca) if p.exists()]
    if existing:
        raise SynthdataError(f"{existing[0]}: already exists; refusing to overwrite keys (choose another --out)")
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate(
        _name("synthdata test root"), _name("synthdata test root"), ca_key.public_key(), ca_key, days * 10, ca=True
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = _certificate(_name(signer_name), root.subject, signer_key.public_key(), ca_key, days, ca=False)
    pem = serialization.Encoding.PEM
    key_bytes = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_new(files.key, key_bytes, 0o600)
    _write_new(files.cert_chain, signer.public_bytes(pem) + root.public_bytes(pem), 0o644)
    _write_new(files.ca, root.public_bytes(pem), 0o644)
    return files
