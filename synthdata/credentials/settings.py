"""Who signs a set's Content Credentials and where they go (a recipe's ``provenance.signing``).

The recipe names the key and certificate-chain *files*, never their contents; a recipe shared
between machines may leave them null and each machine give its own in ``SYNTHDATA_SIGNING_KEY``
and ``SYNTHDATA_SIGNING_CERT_CHAIN``. Nothing signs when neither gives a key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from synthdata.errors import SynthdataError
from synthdata.settings import check_choices

Credentials = Literal["embedded", "sidecar", "dataset"]
"""Where an image's signed credential lives: ``embedded`` in the PNG (it travels with the file;
+3.8 KB per image, ``benchmarks/results/provenance.md``), ``sidecar`` as ``<id>.c2pa`` beside it
(the same bytes, the PNG unchanged), or ``dataset``: no per-image credential, only the signed
``manifest.c2pa`` over the manifest that holds every image's sha256 (18 bytes per image, but an
image copied out of its set carries no proof). Every signed set also gets ``manifest.c2pa``."""

KEY_VARIABLE = "SYNTHDATA_SIGNING_KEY"
CHAIN_VARIABLE = "SYNTHDATA_SIGNING_CERT_CHAIN"


@dataclass(frozen=True)
class SigningSettings:
    key: str | None = None
    """PEM file of the signer's ES256 (P-256) private key; null: ``$SYNTHDATA_SIGNING_KEY`` or no signing."""
    cert_chain: str | None = None
    """PEM file of the signer's certificate chain, signer first; null: ``$SYNTHDATA_SIGNING_CERT_CHAIN``."""
    credentials: Credentials = "embedded"

    def __post_init__(self) -> None:
        check_choices(self)
        if (self.key is None) != (self.cert_chain is None):
            given, missing = ("key", "cert_chain") if self.key is not None else ("cert_chain", "key")
            raise ValueError(f"signing.{given} is set but signing.{missing} is not: give both files")

    def files(self) -> tuple[Path, Path] | None:
        """(key, certificate chain) from the recipe, else from the environment; None: no signing."""
        key = self.key or os.environ.get(KEY_VARIABLE) or None
        chain = self.cert_chain or os.environ.get(CHAIN_VARIABLE) or None
        if key is None and chain is None:
            return None
        if key is None or chain is None:
            missing = KEY_VARIABLE if key is None else CHAIN_VARIABLE
            raise SynthdataError(f"a signing key and certificate chain go together: {missing} is not set")
        return Path(key), Path(chain)


@dataclass(frozen=True)
class ProvenanceSettings:
    """A recipe's ``provenance`` section."""

    signing: SigningSettings = field(default_factory=SigningSettings)
