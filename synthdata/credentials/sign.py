"""Sign PNG bytes with a C2PA claim: the manifest embedded in the PNG, or a detached sidecar.

The signing key is read once into a :class:`SigningIdentity` and handed only to c2pa; it is
never logged, printed or written into any record (its ``repr`` leaves it out).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from synthdata.credentials.context import read_pem, signing_context
from synthdata.errors import DataError

PNG = "image/png"


@dataclass(frozen=True)
class SigningIdentity:
    """Who signs: a certificate chain (signer first, then its issuers; PEM) and the signer's
    ES256 (P-256) private key. Load it with :meth:`load`."""

    cert_chain: bytes
    subject: str
    key: bytes = field(repr=False)

    @classmethod
    def load(cls, key: Path, cert_chain: Path) -> SigningIdentity:
        """Read and check a key and its chain: a P-256 key that matches the chain's first certificate."""
        chain_pem = read_pem(cert_chain, "certificate chain").encode()
        key_pem = read_pem(key, "private key").encode()
        try:
            certificate = x509.load_pem_x509_certificates(chain_pem)[0]
        except ValueError:
            raise DataError(f"{cert_chain}: unreadable certificate chain") from None
        try:
            private = load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):
            raise DataError(f"{key}: unreadable private key (an unencrypted PEM key is expected)") from None
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            raise DataError(f"{key}: not a P-256 (ES256) key")
        if private.public_key() != certificate.public_key():
            raise DataError(f"{key}: does not match the first certificate of {cert_chain}")
        return cls(cert_chain=chain_pem, subject=certificate.subject.rfc4514_string(), key=key_pem)


@lru_cache(maxsize=4)
def _signer(identity: SigningIdentity) -> c2pa.Signer:
    """One c2pa signer per identity (a signer is reusable; no timestamp authority: offline)."""
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, identity.cert_chain, identity.key, None)
    return c2pa.Signer.from_info(info)


def _sign(
    data: bytes, claim: dict[str, Any], identity: SigningIdentity, *, embed: bool, mime: str = PNG
) -> tuple[bytes, bytes]:
    """(signed asset bytes, manifest store bytes) for ``data`` of type ``mime``."""
    builder = c2pa.Builder(claim, context=signing_context())
    if not embed:
        builder.set_no_embed()
    signed = io.BytesIO()
    try:
        manifest = builder.sign(_signer(identity), mime, io.BytesIO(data), signed)
    except c2pa.C2paError as exc:
        raise DataError(f"{claim.get('title', 'image')}: signing failed ({' '.join(str(exc).split())})") from None
    return signed.getvalue(), manifest


def sign_png(data: bytes, claim: dict[str, Any], identity: SigningIdentity) -> bytes:
    """PNG ``data`` with ``claim`` signed and embedded (a ``caBX`` chunk bound to the bytes)."""
    return _sign(data, claim, identity, embed=True)[0]


def sidecar(data: bytes, claim: dict[str, Any], identity: SigningIdentity, *, mime: str = PNG) -> bytes:
    """A detached C2PA manifest store (a ``.c2pa`` file) bound to ``data``, which stays as it is.
    ``mime="application/octet-stream"`` binds any file by its bytes (a set's ``manifest.parquet``)."""
    return _sign(data, claim, identity, embed=False, mime=mime)[1]
