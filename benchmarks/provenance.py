"""Cost of Content Credentials per option: images/s to sign and to verify, bytes added per image.

The three ``provenance.signing.credentials`` options over the same N synthetic 32x32 RGB PNGs
(random pixels, so PNG cannot compress them away) and their manifest rows, each signed by the
pipeline's own :class:`ImageSigner` (the image as it is written, then ``manifest.c2pa`` over the
manifest) with a local test signer (``keys init``: a P-256 signer and its root, a
two-certificate chain), offline (no timestamp authority, no OCSP, no thumbnail), and verified by
``verify_folder`` with the issuer chain (``--trust``):
- embedded: a C2PA manifest inside each PNG; verify = signature, hash binding, issuer, row <->
  credential <-> file per image, and the signed manifest;
- sidecar: a ``.c2pa`` file beside each unchanged PNG; verify = the same;
- dataset: no per-image credential; verify = the signed manifest, then each file's sha256 against its row.
A fourth row, ``review (embedded)``, is ``synthdata review --apply`` signing each embedded image
again with its review decision (its bytes over the unsigned PNG). Signing times exclude PNG
encoding; verifying times include reading the files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from common import machine, write_result

from synthdata.credentials.keys import init_keys
from synthdata.credentials.sign import SIDECAR_SUFFIX, ImageSigner, SigningIdentity, strip_credential
from synthdata.credentials.verify import verify_folder
from synthdata.data.card import DatasetCard
from synthdata.data.images import encode_png
from synthdata.data.manifest import DIGITAL_SOURCE_TYPE, manifest_hash, to_frame, write_manifest
from synthdata.hashing import sha256_bytes

SIZE = 32


def rows_and_pngs(n: int) -> tuple[list[dict], list[bytes]]:
    """N synthetic manifest rows (noise mode) and their PNG bytes, seeded."""
    rng = np.random.default_rng(0)
    pngs = [encode_png(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)) for _ in range(n)]
    rows = []
    for i in range(n):
        rows.append(
            {
                **{"id": f"syn-{i:05d}", "relpath": f"train/c/syn-{i:05d}.png", "label": 0, "label_name": "c"},
                **{"split": "train", "sha256": "", "width": SIZE, "height": SIZE, "channels": 3},
                **{"source": "synthdata", "licence": "CC-BY-4.0", "origin": f"run/c/{i}", "group": ""},
                **{"digital_source_type": DIGITAL_SOURCE_TYPE, "base_id": "base", "base_sha256": "b" * 64},
                **{"adapter_sha256": "a" * 64, "sample_run_id": "run", "sample_index": i, "seed": 10**6 + i},
                **{"scheduler": "dpm", "steps": 20, "guidance": 2.5, "synthdata_version": "0.1.0"},
                **{"git_commit": "abc", "source_manifest_sha256": "c" * 64, "mode": "noise", "strength": 1.0},
                **{"source_ids": "", "interpolation_weight": 0.0},
            }
        )
    return rows, pngs


def write_set(folder: Path, rows: list[dict], files: list[bytes], sidecars: list, signer: ImageSigner) -> None:
    """The set on disk: images (and sidecars), manifest and a card that says how it is signed."""
    for row, data, side in zip(rows, files, sidecars, strict=True):
        path = folder / row["relpath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if side is not None:
            path.with_suffix(SIDECAR_SUFFIX).write_bytes(side)
        path.write_bytes(data)
        row["sha256"] = sha256_bytes(data)
    frame = to_frame(rows, synthetic=True)
    write_manifest(frame, folder)
    card = DatasetCard(
        **{"name": folder.name, "source": "synthdata", "description": "", "licence": "", "citation": ""},
        **{"homepage": "", "classes": ["c"], "channels": 3, "width": SIZE, "height": SIZE},
        counts={"train": {"c": len(rows)}},
        manifest_sha256=manifest_hash(frame),
        split_protocol="synthetic",
        credentials=signer.describe(len(rows)),
    )
    card.write(folder)


def measure(folder: Path, rows: list[dict], pngs: list[bytes], signer: ImageSigner, ca: Path) -> dict:
    """Sign each image as the pipeline does, write the set with its signed manifest, verify it whole."""
    start = time.perf_counter()
    signed = [signer.sign(data, row) for data, row in zip(pngs, rows, strict=True)]
    signing = time.perf_counter() - start
    write_set(folder, rows, [s[0] for s in signed], [s[1] for s in signed], signer)
    start = time.perf_counter()
    signer.seal(folder, folder.name, manifest_hash(to_frame(rows, synthetic=True)), len(rows))
    signing += time.perf_counter() - start  # the signed manifest is part of signing a set
    start = time.perf_counter()
    verify_folder(folder, ca)
    verifying = time.perf_counter() - start
    added = sum(len(f) + len(s or b"") for f, s in signed) - sum(len(p) for p in pngs)
    added += (folder / "manifest.c2pa").stat().st_size
    return {"sign_s": signing, "verify_s": verifying, "bytes_added": added}


def review_resign(rows: list[dict], signed: list[bytes], signer: ImageSigner) -> dict:
    """``review --apply`` on an embedded set: strip each credential, sign again with the decision."""
    reviewed = [
        {**r, "review_decision": "accept", "reviewer": "r", "reviewed_at": "2026-01-01T00:00:00Z"} for r in rows
    ]
    start = time.perf_counter()
    again = [signer.sign(strip_credential(data), row)[0] for data, row in zip(signed, reviewed, strict=True)]
    seconds = time.perf_counter() - start
    return {"sign_s": seconds, "verify_s": float("nan"), "bytes_added": sum(map(len, again)) - sum(map(len, signed))}


def table(results: dict[str, dict], n: int, png_bytes: float, command: str) -> str:
    lines = [
        f"# Content Credentials: cost per option ({n} PNGs, {SIZE}x{SIZE} RGB, mean PNG {png_bytes:.0f} bytes)",
        "",
        f"Command: `{command}`",
        "",
        "| option | sign images/s | verify images/s | bytes added per image | of the PNG |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        per = r["bytes_added"] / n
        verify = "-" if r["verify_s"] != r["verify_s"] else f"{n / r['verify_s']:,.0f}"  # NaN: not measured
        lines.append(f"| {name} | {n / r['sign_s']:,.0f} | {verify} | {per:,.0f} | {100 * per / png_bytes:.0f}% |")
    lines += [
        "",
        "Signer: local test CA (`synthdata keys init`), ES256, chain of two certificates; offline "
        "(no timestamp authority, no OCSP, no thumbnail). Every option also writes `manifest.c2pa` (counted "
        "in its bytes). Verify (`verify_folder`) includes the issuer chain (`--trust`), the signed manifest and, "
        "per image, the row <-> credential <-> file checks (embedded, sidecar) or the file sha256 against its "
        "row (dataset). `review (embedded)`: re-signing each embedded image with its review decision "
        "(bytes: added over the image signed before review). Single thread.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    rows, pngs = rows_and_pngs(args.images)
    results: dict[str, dict] = {}
    with TemporaryDirectory() as tmp:
        keys = init_keys(Path(tmp) / "keys")
        identity = SigningIdentity.load(keys.key, keys.cert_chain)
        ImageSigner(identity, "embedded", {}).sign(pngs[0], rows[0])  # warm-up: load the native library
        for option in ("embedded", "sidecar", "dataset"):
            signer = ImageSigner(identity, option, {})
            results[option] = measure(Path(tmp) / option, [dict(r) for r in rows], pngs, signer, keys.ca)
        embedded = [(Path(tmp) / "embedded" / r["relpath"]).read_bytes() for r in rows]
        results["review (embedded)"] = review_resign(rows, embedded, ImageSigner(identity, "embedded", {}))
    mean_png = sum(len(p) for p in pngs) / len(pngs)
    command = f"OMP_NUM_THREADS=1 python benchmarks/provenance.py --images {args.images}"
    text = table(results, args.images, mean_png, command)
    result = {"images": args.images, "png_bytes": mean_png, "machine": machine(), **results}
    write_result("provenance", json.loads(json.dumps(result).replace("NaN", "null")), text)
    print(text)


if __name__ == "__main__":
    main()
