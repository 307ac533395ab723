"""Content Credentials: a test signer, signed synthetic PNGs (embedded and sidecar), and
verification of files and set folders that fails, in one line naming the file, on each tamper."""

from __future__ import annotations

import io
import json
import stat
import struct
import zlib

import c2pa
import numpy as np
import pytest
from test_bad_input import run_cli  # the CLI run as `synthdata ...` is: argv, exit code, one error line

from synthdata.credentials.claim import claim_for_row
from synthdata.credentials.context import reading_context
from synthdata.credentials.keys import init_keys
from synthdata.credentials.sign import SigningIdentity, sidecar, sign_png
from synthdata.credentials.verify import verify_file, verify_folder
from synthdata.data.images import decode_image, encode_png
from synthdata.data.manifest import DERIVED_SOURCE_TYPE, DIGITAL_SOURCE_TYPE, to_frame, write_manifest
from synthdata.errors import DataError, SynthdataError
from synthdata.hashing import sha256_bytes

REAL = encode_png(np.random.default_rng(99).integers(0, 256, (16, 16, 3), dtype=np.uint8))
SOURCES = {"real-007": sha256_bytes(REAL)}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return init_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def identity(keys):
    return SigningIdentity.load(keys.key, keys.cert_chain)


def pixels(seed: int) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))


def row(index: int, *, derived: bool = False) -> dict:
    """A synthetic manifest row as the sampling writer makes it (sha256 filled in once signed)."""
    return {
        "id": f"syn-{index:03d}",
        "relpath": f"train/rare/syn-{index:03d}.png",
        "label": 0,
        "label_name": "rare",
        "split": "train",
        "sha256": "",
        "width": 8,
        "height": 8,
        "channels": 3,
        "source": "synthdata",
        "licence": "CC-BY-4.0",
        "origin": f"run/rare/{index}",
        "group": "",
        "digital_source_type": DERIVED_SOURCE_TYPE if derived else DIGITAL_SOURCE_TYPE,
        "base_id": "tiny-base",
        "base_sha256": "b" * 64,
        "adapter_sha256": "a" * 64,
        "sample_run_id": "run",
        "sample_index": index,
        "seed": 1000 + index,
        "scheduler": "dpm",
        "steps": 20,
        "guidance": 2.5,
        "synthdata_version": "0.1.0",
        "git_commit": "abc",
        "source_manifest_sha256": "c" * 64,
        "mode": "img2img" if derived else "noise",
        "strength": 0.6 if derived else 1.0,
        "source_ids": "real-007" if derived else "",
        "interpolation_weight": 0.0,
    }


def make_set(folder, identity, *, embed: bool = True):
    """A three-image synthetic set (two from noise, one from a real image), signed, with its manifest."""
    rows = [row(0), row(1), row(2, derived=True)]
    for index, entry in enumerate(rows):
        data = pixels(index)
        claim = claim_for_row(entry, SOURCES)
        path = folder / entry["relpath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if embed:
            data = sign_png(data, claim, identity)
        else:
            path.with_suffix(".c2pa").write_bytes(sidecar(data, claim, identity))
        path.write_bytes(data)
        entry["sha256"] = sha256_bytes(data)
    write_manifest(to_frame(rows, synthetic=True), folder)
    return rows


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) of a PNG, in order."""
    found, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        found.append((png[at + 4 : at + 8], png[at : at + 12 + length]))
        at += 12 + length
    return found


def with_pixel_changed(signed: bytes) -> bytes:
    """The signed PNG with one pixel changed and its credential chunk carried over unchanged."""
    array = decode_image(signed, "signed").copy()
    array[0, 0, 0] ^= 1
    changed = chunks(encode_png(array))
    credential = [whole for kind, whole in chunks(signed) if kind == b"caBX"]
    assert credential, "the signed PNG carries its manifest in a caBX chunk"
    return b"\x89PNG\r\n\x1a\n" + changed[0][1] + credential[0] + b"".join(whole for _, whole in changed[1:])


def test_signed_png_verifies_and_says_how_it_was_made(identity, keys, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(sign_png(pixels(0), claim_for_row(row(2, derived=True), SOURCES), identity))
    found = verify_file(path, keys.ca)
    assert found.trusted and found.embedded
    assert found.digital_source_type == DERIVED_SOURCE_TYPE
    assert found.generation["seed"] == 1002 and found.generation["adapter_sha256"] == "a" * 64
    assert found.generation["strength"] == 0.6 and found.generation["scheduler"] == "dpm"
    assert found.sources == SOURCES
    assert "synthdata test signer" in found.signer
    assert not verify_file(path).trusted  # no anchors: signature and binding checked, issuer not


def test_a_signer_outside_the_trust_anchors_is_refused(identity, tmp_path):
    other = init_keys(tmp_path / "other")
    path = tmp_path / "x.png"
    path.write_bytes(sign_png(pixels(0), claim_for_row(row(0)), identity))
    with pytest.raises(DataError, match=r"x\.png: .*does not chain to the trust anchors"):
        verify_file(path, other.ca)


def test_the_ingredient_is_the_source_hash_and_no_real_bytes(identity, keys, tmp_path):
    signed = sign_png(pixels(0), claim_for_row(row(2, derived=True), SOURCES), identity)
    assert REAL not in signed and REAL[8:64] not in signed  # neither the file nor its first chunks
    with c2pa.Reader("image/png", io.BytesIO(signed)) as reader:
        store = json.loads(reader.json())
    (ingredient,) = store["manifests"][store["active_manifest"]]["ingredients"]
    assert ingredient["title"] == "real-007" and ingredient["instance_id"] == "sha256:" + SOURCES["real-007"]
    assert not {"thumbnail", "data", "manifest_data", "active_manifest"} & set(ingredient)


def test_a_noise_image_is_trained_algorithmic_media_without_ingredients(identity, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(sign_png(pixels(0), claim_for_row(row(0)), identity))
    found = verify_file(path)
    assert found.digital_source_type == DIGITAL_SOURCE_TYPE and found.sources == {}


def test_a_derived_row_without_its_source_hash_is_refused():
    with pytest.raises(DataError, match="row syn-002: no sha256 for source image real-007"):
        claim_for_row(row(2, derived=True))


def test_one_changed_pixel_breaks_the_hash_binding(identity, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(with_pixel_changed(sign_png(pixels(0), claim_for_row(row(0)), identity)))
    with pytest.raises(DataError, match=r"x\.png: credential check failed: hash binding broken"):
        verify_file(path)


def test_a_stripped_credential_is_named(identity, tmp_path):
    path = tmp_path / "x.png"
    signed = sign_png(pixels(0), claim_for_row(row(0)), identity)
    path.write_bytes(encode_png(decode_image(signed, "signed")))  # re-encoded: same pixels, no caBX
    with pytest.raises(DataError, match=r"x\.png: no content credential"):
        verify_file(path)


def test_a_sidecar_verifies_its_png_and_no_other(identity, tmp_path):
    data = pixels(0)
    manifest = sidecar(data, claim_for_row(row(0)), identity)
    (tmp_path / "x.png").write_bytes(data)  # the PNG is left as it was
    (tmp_path / "x.c2pa").write_bytes(manifest)
    found = verify_file(tmp_path / "x.png")
    assert not found.embedded and found.generation["seed"] == 1000
    (tmp_path / "x.png").write_bytes(pixels(1))
    with pytest.raises(DataError, match=r"x\.png: credential check failed: hash binding broken"):
        verify_file(tmp_path / "x.png")


@pytest.mark.parametrize("embed", [True, False], ids=["embedded", "sidecar"])
def test_a_clean_set_verifies_with_a_summary(identity, keys, tmp_path, embed):
    make_set(tmp_path, identity, embed=embed)
    summary = verify_folder(tmp_path, keys.ca)
    assert (summary.images, summary.embedded, summary.sidecars) == (3, 3 * embed, 3 * (not embed))
    assert summary.source_types == {"trainedAlgorithmicMedia": 2, "compositeWithTrainedAlgorithmicMedia": 1}
    assert summary.trusted and len(summary.signers) == 1


def test_a_changed_pixel_in_a_set_is_named(identity, tmp_path):
    rows = make_set(tmp_path, identity)
    path = tmp_path / rows[1]["relpath"]
    path.write_bytes(with_pixel_changed(path.read_bytes()))
    with pytest.raises(DataError, match=r"syn-001\.png: credential check failed: hash binding broken"):
        verify_folder(tmp_path)


def test_a_stripped_file_in_a_set_is_named(identity, tmp_path):
    rows = make_set(tmp_path, identity)
    path = tmp_path / rows[0]["relpath"]
    path.write_bytes(encode_png(decode_image(path.read_bytes(), "signed")))
    with pytest.raises(DataError, match=r"syn-000\.png: no content credential"):
        verify_folder(tmp_path)


def test_a_file_swapped_with_another_signed_file_is_named(identity, tmp_path):
    rows = make_set(tmp_path, identity)
    changed = tmp_path / "changed"
    make_set(changed, identity)  # a file replaced by other bytes claiming the same id: its row's sha256 fails
    (changed / rows[0]["relpath"]).write_bytes((changed / rows[0]["relpath"]).read_bytes() + b"\0")
    with pytest.raises(DataError, match=r"syn-000\.png: (sha256 .* differs|credential check failed)"):
        verify_folder(changed)
    (tmp_path / rows[0]["relpath"]).write_bytes((tmp_path / rows[1]["relpath"]).read_bytes())
    with pytest.raises(DataError, match=r"syn-000\.png: holds the credential of image 'syn-001', not of 'syn-000'"):
        verify_folder(tmp_path)


def test_an_edited_manifest_row_is_named(identity, tmp_path):
    rows = make_set(tmp_path, identity)
    rows[2]["seed"] = 7  # the row now claims another seed than the signed credential
    write_manifest(to_frame(rows, synthetic=True), tmp_path)
    with pytest.raises(DataError, match=r"syn-002\.png: credential seed 1002 != manifest row 7"):
        verify_folder(tmp_path)
    rows[2]["seed"], rows[2]["adapter_sha256"] = 1002, "d" * 64
    write_manifest(to_frame(rows, synthetic=True), tmp_path)
    with pytest.raises(DataError, match=r"syn-002\.png: credential adapter_sha256 'a+' != manifest row 'd+'"):
        verify_folder(tmp_path)


def test_a_row_rewritten_to_match_a_swapped_file_still_fails(identity, tmp_path):
    """Swap a file and edit its row's sha256 to match: the credential still names another image."""
    rows = make_set(tmp_path, identity)
    (tmp_path / rows[0]["relpath"]).write_bytes((tmp_path / rows[1]["relpath"]).read_bytes())
    rows[0]["sha256"] = rows[1]["sha256"]
    write_manifest(to_frame(rows, synthetic=True), tmp_path)
    with pytest.raises(DataError, match=r"syn-000\.png: holds the credential of image 'syn-001'.*swapped"):
        verify_folder(tmp_path)


def test_keys_are_written_private_and_never_overwritten(keys):
    assert stat.S_IMODE(keys.key.stat().st_mode) == 0o600
    before = keys.key.read_bytes()
    with pytest.raises(SynthdataError, match="signer-key.pem: already exists; refusing to overwrite"):
        init_keys(keys.key.parent)
    assert keys.key.read_bytes() == before
    assert not list(keys.key.parent.glob(".*.part"))


def test_the_identity_keeps_its_key_out_of_its_repr(identity):
    assert b"PRIVATE KEY" in identity.key and "PRIVATE" not in repr(identity)


def test_a_key_for_another_certificate_is_refused(keys, tmp_path):
    other = init_keys(tmp_path / "other")
    with pytest.raises(DataError, match="signer-key.pem: does not match the first certificate"):
        SigningIdentity.load(other.key, keys.cert_chain)


def test_cli_keys_init_then_verify_a_set(tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(["keys", "init", "--out", str(tmp_path / "keys")], monkeypatch, capsys)
    assert code == 0 and "signer-key.pem" in out
    code, _, err = run_cli(["keys", "init", "--out", str(tmp_path / "keys")], monkeypatch, capsys)
    assert code == 1 and "refusing to overwrite" in err
    identity = SigningIdentity.load(tmp_path / "keys" / "signer-key.pem", tmp_path / "keys" / "signer-chain.pem")
    rows = make_set(tmp_path / "set", identity)
    trust = str(tmp_path / "keys" / "ca.pem")
    code, out, _ = run_cli(["verify", str(tmp_path / "set"), "--trust", trust], monkeypatch, capsys)
    assert code == 0 and "all 3 images verified" in out and "1 compositeWithTrainedAlgorithmicMedia" in out
    code, out, _ = run_cli(["verify", str(tmp_path / "set" / rows[2]["relpath"])], monkeypatch, capsys)
    assert code == 0 and "seed 1002" in out
    path = tmp_path / "set" / rows[0]["relpath"]
    path.write_bytes(encode_png(decode_image(path.read_bytes(), "signed")))
    code, _, err = run_cli(["verify", str(tmp_path / "set")], monkeypatch, capsys)
    assert code == 1 and err.count("\n") == 1 and "syn-000.png: no content credential" in err


def test_the_pixel_tamper_changes_one_pixel_and_keeps_the_credential(identity):
    """What the changed-pixel tests feed the verifier: a valid PNG, one pixel off, credential kept."""
    signed = sign_png(pixels(0), claim_for_row(row(0)), identity)
    tampered = with_pixel_changed(signed)
    assert (decode_image(tampered, "t") != decode_image(signed, "s")).sum() == 1
    assert [k for k, _ in chunks(tampered)].count(b"caBX") == 1
    for _, whole in chunks(tampered):
        assert struct.unpack(">I", whole[-4:])[0] == zlib.crc32(whole[4:-4])


def test_a_dataset_level_manifest_binds_the_manifest_file(identity, keys, tmp_path):
    """The light option: one detached manifest over ``manifest.parquet`` (whose rows hold every
    image's sha256) verifies against those bytes and fails once the file is edited."""
    make_set(tmp_path, identity)
    data = (tmp_path / "manifest.parquet").read_bytes()
    created = {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE}
    claim = {
        "title": "manifest.parquet",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": "org.synthdata.dataset", "data": {"images": 3}},
        ],
    }
    manifest = sidecar(data, claim, identity, mime="application/octet-stream")
    context = reading_context(keys.ca)
    with c2pa.Reader("application/octet-stream", io.BytesIO(data), manifest, context=context) as reader:
        assert reader.get_validation_state() == "Trusted"
    with c2pa.Reader("application/octet-stream", io.BytesIO(data + b"\0"), manifest, context=context) as reader:
        assert reader.get_validation_state() == "Invalid"
