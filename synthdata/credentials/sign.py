"""Sign PNG bytes with a C2PA claim: the manifest embedded in the PNG, or a detached sidecar.

The signing key is read once into a :class:`SigningIdentity` and handed only to c2pa; it is
never logged, printed or written into any record (its ``repr`` leaves it out).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import c2pa
import pandas as pd
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from synthdata.atomic import write_bytes
from synthdata.credentials.claim import claim_for_row
from synthdata.credentials.context import read_pem, signing_context
from synthdata.credentials.settings import Credentials, SigningSettings
from synthdata.data.manifest import read_manifest
from synthdata.errors import DataError

PNG = "image/png"
SIDECAR_SUFFIX = ".c2pa"
"""A detached credential sits beside its image as ``<id>.c2pa``."""


@dataclass(frozen=True)
class SigningIdentity:
    """Who signs: a certificate chain (signer first, then its issuers; PEM) and the signer's
    ES256 (P-256) private key. Load it with :meth:`load`."""

    cert_chain: bytes
    subject: str
    issuer: str
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
        return cls(
            cert_chain=chain_pem,
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            key=key_pem,
        )


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


OCTET = "application/octet-stream"
DATASET_LABEL = "org.synthdata.dataset"
DIGITAL_CREATION = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation"
"""What the manifest table itself is: made by software (its images are described by their own type)."""
SEAL_FILE = "manifest.c2pa"
"""The signed dataset-level manifest of a set: a detached C2PA manifest over ``manifest.parquet``."""


@dataclass(frozen=True)
class ImageSigner:
    """Signs each image of a set as it is written, and the set's manifest when it is published.

    ``source_hashes`` maps the real train image ids a derived image may name to their sha256 (from
    the source dataset's manifest): each source is an ingredient by hash."""

    identity: SigningIdentity
    credentials: Credentials
    source_hashes: Mapping[str, str] = field(repr=False, hash=False, compare=False)

    @property
    def tag(self) -> str:
        """What a signed set's build key and card record of who signs and how (never the key)."""
        return f"{self.credentials}:{self.identity.subject}"

    def sign(self, png: bytes, row: Mapping[str, Any]) -> tuple[bytes, bytes | None]:
        """(the PNG to write, its sidecar or None) for an image and its manifest row."""
        if self.credentials == "dataset":
            return png, None
        claim = claim_for_row(row, self.source_hashes)
        if self.credentials == "embedded":
            return sign_png(png, claim, self.identity), None
        return png, sidecar(png, claim, self.identity)

    def seal(self, folder: Path, name: str, manifest_sha256: str, images: int) -> Path:
        """Sign ``folder``'s ``manifest.parquet`` (every image's sha256 and provenance) into
        ``manifest.c2pa`` beside it."""
        parquet = folder / "manifest.parquet"
        claim = {
            "claim_generator_info": [{"name": "synthdata"}],
            "title": parquet.name,
            "format": OCTET,
            "assertions": [
                {
                    "label": "c2pa.actions",
                    "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": DIGITAL_CREATION}]},
                },
                {
                    "label": DATASET_LABEL,
                    "data": {
                        "name": name,
                        "manifest_sha256": manifest_sha256,
                        "images": int(images),
                        "credentials": self.credentials,
                    },
                },
            ],
        }
        return write_bytes(folder / SEAL_FILE, sidecar(parquet.read_bytes(), claim, self.identity, mime=OCTET))

    def describe(self, images: int) -> dict[str, Any]:
        """The card's ``credentials`` entry of a set of ``images`` images this signer signed."""
        return {
            "signed": int(images) if self.credentials != "dataset" else 0,
            "credentials": self.credentials,
            "signer": self.identity.subject,
            "issuer": self.identity.issuer,
            "dataset_manifest": SEAL_FILE,
        }


def load_signer(settings: SigningSettings, source_hashes: Mapping[str, str]) -> ImageSigner | None:
    """The signer ``settings`` name (their files read and checked now), or None when no key is given."""
    files = settings.files()
    if files is None:
        return None
    return ImageSigner(SigningIdentity.load(*files), settings.credentials, source_hashes)


def signer_for(settings: SigningSettings, dataset: Path) -> ImageSigner | None:
    """:func:`load_signer` with the sha256 of every train image of ``dataset`` (the only images a
    derived image may start from) as the ingredients' hashes."""
    if settings.files() is None:
        return None
    frame = read_manifest(dataset)
    train = frame[frame["split"] == "train"]
    return load_signer(settings, dict(zip(train["id"].astype(str), train["sha256"].astype(str), strict=True)))


def sidecar_paths(frame: pd.DataFrame, folder: Path) -> list[str]:
    """The relative paths of the sidecar credentials beside ``frame``'s images in ``folder``."""
    paths = [Path(str(p)).with_suffix(SIDECAR_SUFFIX).as_posix() for p in frame["relpath"]]
    return [p for p in paths if (folder / p).is_file()]


def check_same_signer(signer: ImageSigner | None, set_card: Any, folder: Path) -> None:
    """Refuse to add images to the set in ``folder`` (card ``set_card``) signed otherwise than its
    own: a set is signed whole, by one signer, one way."""
    recorded = (set_card.credentials or {}) if set_card is not None else {}
    theirs = f"{recorded.get('credentials')}:{recorded.get('signer')}" if recorded.get("signer") else None
    ours = signer.tag if signer is not None else None
    if theirs != ours:
        said = {None: "unsigned"}
        raise DataError(
            f"{folder}: the set is {said.get(theirs, 'signed ' + str(theirs))} but this run would sign "
            f"{said.get(ours, ours)}: give provenance.signing the same key, chain and credentials as the sample run"
        )


def strip_credential(png: bytes) -> bytes:
    """PNG bytes without their embedded C2PA manifest store (the ``caBX`` chunks), every other
    chunk as it was: the image as it was before it was signed."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError("not a PNG")
    kept, at = [png[:8]], 8
    while at + 8 <= len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        end = at + 12 + length
        if png[at + 4 : at + 8] != b"caBX":
            kept.append(png[at:end])
        at = end
    return b"".join(kept)
