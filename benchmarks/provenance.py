"""Cost of Content Credentials per option: images/s to sign and to verify, bytes added per image.

Three options over the same N synthetic 32x32 RGB PNGs (random pixels, so PNG cannot compress
them away) and their manifest rows, signed by a local test signer (``keys init``: a P-256 signer
and its root, a two-certificate chain), offline (no timestamp authority, no OCSP, no thumbnail):
- embedded: a C2PA manifest inside each PNG; verify = ``verify_folder`` (signature, hash
  binding, issuer chain to the root, row <-> credential <-> file);
- sidecar: a ``.c2pa`` file beside each unchanged PNG; verify = the same ``verify_folder``;
- dataset: one detached manifest over ``manifest.parquet`` (which holds every image's sha256);
  verify = that manifest (signature, binding, issuer) plus each file's sha256 against its row.
Signing times exclude PNG encoding; verifying times include reading the files.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import c2pa
import numpy as np
from common import machine, write_result

from synthdata.credentials.claim import claim_for_row
from synthdata.credentials.context import reading_context
from synthdata.credentials.keys import init_keys
from synthdata.credentials.sign import SigningIdentity, sidecar, sign_png
from synthdata.credentials.verify import verify_folder
from synthdata.data.images import encode_png
from synthdata.data.manifest import DIGITAL_SOURCE_TYPE, read_manifest, to_frame, write_manifest
from synthdata.hashing import file_sha256, sha256_bytes

SIZE = 32
OCTET = "application/octet-stream"


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


def write_set(folder: Path, rows: list[dict], files: list[bytes], sidecars: list[bytes] | None) -> None:
    for i, (row, data) in enumerate(zip(rows, files, strict=True)):
        path = folder / row["relpath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if sidecars is not None:
            path.with_suffix(".c2pa").write_bytes(sidecars[i])
        row["sha256"] = sha256_bytes(data)
    write_manifest(to_frame(rows, synthetic=True), folder)


def per_image(folder: Path, rows: list[dict], pngs: list[bytes], identity, ca: Path, embed: bool) -> dict:
    """Sign each image (embedded or sidecar), write the set, verify it whole."""
    claims = [claim_for_row(row) for row in rows]
    start = time.perf_counter()
    if embed:
        files, sidecars = [sign_png(d, c, identity) for d, c in zip(pngs, claims, strict=True)], None
    else:
        files, sidecars = pngs, [sidecar(d, c, identity) for d, c in zip(pngs, claims, strict=True)]
    signing = time.perf_counter() - start
    write_set(folder, rows, files, sidecars)
    start = time.perf_counter()
    verify_folder(folder, ca)
    verifying = time.perf_counter() - start
    added = sum(len(f) for f in files) - sum(len(p) for p in pngs) + sum(len(s) for s in sidecars or [])
    return {"sign_s": signing, "verify_s": verifying, "bytes_added": added}


def dataset_level(folder: Path, rows: list[dict], pngs: list[bytes], identity, ca: Path) -> dict:
    """One detached manifest over manifest.parquet; verify it, then every file against its row."""
    write_set(folder, rows, pngs, None)
    parquet = folder / "manifest.parquet"
    created = {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE}
    claim = {
        "title": parquet.name,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": "org.synthdata.dataset", "data": {"images": len(rows), "sample_run_id": "run"}},
        ],
    }
    start = time.perf_counter()
    manifest = sidecar(parquet.read_bytes(), claim, identity, mime=OCTET)
    signing = time.perf_counter() - start
    start = time.perf_counter()
    with c2pa.Reader(OCTET, io.BytesIO(parquet.read_bytes()), manifest, context=reading_context(ca)) as reader:
        assert reader.get_validation_state() == "Trusted", reader.json()
    for row in read_manifest(folder).itertuples(index=False):
        assert file_sha256(folder / row.relpath) == row.sha256, row.relpath
    verifying = time.perf_counter() - start
    return {"sign_s": signing, "verify_s": verifying, "bytes_added": len(manifest)}


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
        lines.append(
            f"| {name} | {n / r['sign_s']:,.0f} | {n / r['verify_s']:,.0f} | {per:,.0f} | {100 * per / png_bytes:.0f}% |"
        )
    lines += [
        "",
        "Signer: local test CA (`synthdata keys init`), ES256, chain of two certificates; offline "
        "(no timestamp authority, no OCSP, no thumbnail). Verify includes the issuer chain (`--trust`) and, "
        "per image, the row <-> credential <-> file checks (embedded, sidecar) or the file sha256 "
        "against its row (dataset: one signed manifest over manifest.parquet). Single thread.",
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
        sign_png(pngs[0], claim_for_row(rows[0]), identity)  # warm-up: load the native library
        results["embedded"] = per_image(Path(tmp) / "embedded", [dict(r) for r in rows], pngs, identity, keys.ca, True)
        results["sidecar"] = per_image(Path(tmp) / "sidecar", [dict(r) for r in rows], pngs, identity, keys.ca, False)
        results["dataset"] = dataset_level(Path(tmp) / "dataset", [dict(r) for r in rows], pngs, identity, keys.ca)
    mean_png = sum(len(p) for p in pngs) / len(pngs)
    command = f"OMP_NUM_THREADS=1 python benchmarks/provenance.py --images {args.images}"
    text = table(results, args.images, mean_png, command)
    write_result("provenance", {"images": args.images, "png_bytes": mean_png, "machine": machine(), **results}, text)
    print(text)


if __name__ == "__main__":
    main()
