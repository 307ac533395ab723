"""Signing in the pipeline and a person's review: a signed set verifies whole (file, folder, shard,
lineage), each tamper fails naming the file, the review page round trip in a real headless
browser, and --apply refuses decisions made for another set."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import CHROMEDRIVER, CHROMIUM, headless_chromium, make_sampling_setup, stage_runs
from test_bad_input import run_cli
from test_credentials import with_pixel_changed

from synthdata.config.recipe import load_recipe
from synthdata.credentials.keys import init_keys
from synthdata.credentials.verify import verify_folder, verify_shard
from synthdata.data.card import read_card
from synthdata.data.manifest import REVIEW_COLUMNS, read_manifest, write_manifest
from synthdata.errors import DataError
from synthdata.stages.sample import run_sample
from synthdata.stages.validate import run_validate

SAMPLE = "{steps: 4, batch_size: 4, shard_size: 5, mode: img2img, strength: 0.5}"
VALIDATE = "{classifier: {steps: 30, batch_size: 32}, resamples: 2, gates: {min_fill: 0.0, max_near_copy_fraction: null, min_diversity_ratio: null}}"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_sampling_setup(tmp_path_factory.mktemp("review"), sample=SAMPLE, validate=VALIDATE, coloured=True)
    keys = init_keys(root / "keys")
    base = (root / "tiny.yaml").read_text()
    for mode in ("embedded", "sidecar", "dataset"):
        signing = f"{{key: {keys.key}, cert_chain: {keys.cert_chain}, credentials: {mode}}}"
        (root / f"{mode}.yaml").write_text(base + f"provenance: {{signing: {signing}}}\n")
        run_sample(load_recipe(root / f"{mode}.yaml"), root / "adapter", root / "d", root / mode)
    return root


def test_a_signed_set_verifies_whole_in_each_credentials_option(project):
    for mode in ("embedded", "sidecar", "dataset"):
        summary = verify_folder(project / mode, project / "keys" / "ca.pem", project / "d")
        frame = read_manifest(project / mode)
        assert summary.images == len(frame) > 0 and summary.sealed and summary.trusted
        per_image = {"embedded": (len(frame), 0, 0), "sidecar": (0, len(frame), 0), "dataset": (0, 0, len(frame))}
        assert (summary.embedded, summary.sidecars, summary.hashed_only) == per_image[mode]
        assert summary.lineage and summary.source_hashes  # img2img: every image names a real train image
        card = read_card(project / mode)
        assert card.credentials["credentials"] == mode and "synthdata test signer" in card.credentials["signer"]
        assert "Content Credentials:" in (project / mode / "README.md").read_text()
    assert len(list((project / "sidecar").rglob("*.c2pa"))) == len(read_manifest(project / "sidecar")) + 1


def test_shards_verify_and_a_swapped_shard_member_is_named(project, tmp_path):
    for mode in ("embedded", "sidecar"):
        for shard in sorted((project / mode / "shards").glob("*.tar")):
            assert verify_shard(shard, project / "keys" / "ca.pem").images > 0
    import tarfile

    source = sorted((project / "embedded" / "shards").glob("*.tar"))[0]
    with tarfile.open(source) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive}
    keys = sorted(n[:-4] for n in members if n.endswith(".png"))
    members[f"{keys[0]}.png"], members[f"{keys[1]}.png"] = members[f"{keys[1]}.png"], members[f"{keys[0]}.png"]
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(tampered, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, __import__("io").BytesIO(data))
    with pytest.raises(DataError, match=rf"tampered.tar:{keys[0]}.png: "):
        verify_shard(tampered)


def _copy(project: Path, mode: str, tmp_path: Path) -> Path:
    target = tmp_path / mode
    shutil.copytree(project / mode, target)
    return target


def test_each_tamper_of_a_signed_set_is_named(project, tmp_path):
    ca = project / "keys" / "ca.pem"
    # one changed pixel, the credential carried over
    folder = _copy(project, "embedded", tmp_path / "pixel")
    path = folder / read_manifest(folder)["relpath"][0]
    path.write_bytes(with_pixel_changed(path.read_bytes()))
    with pytest.raises(DataError, match=rf"{path}: credential check failed: hash binding broken"):
        verify_folder(folder, ca)
    # an edited manifest row: the signed manifest no longer binds the file
    folder = _copy(project, "dataset", tmp_path / "row")
    frame = read_manifest(folder)
    frame.loc[0, "seed"] = 7
    write_manifest(frame, folder)
    with pytest.raises(DataError, match=r"manifest.c2pa: credential check failed: hash binding broken"):
        verify_folder(folder, ca)
    # a file changed in a set whose only credential is the signed manifest
    folder = _copy(project, "dataset", tmp_path / "file")
    path = folder / read_manifest(folder)["relpath"][1]
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DataError, match=rf"{path}: sha256 differs from its row in the signed manifest"):
        verify_folder(folder, ca)
    # the signed manifest removed
    folder = _copy(project, "sidecar", tmp_path / "seal")
    (folder / "manifest.c2pa").unlink()
    with pytest.raises(DataError, match=r"manifest.c2pa: missing, but .*card.json says the manifest was signed"):
        verify_folder(folder, ca)


def test_lineage_names_a_source_missing_from_the_dataset(project, tmp_path):
    dataset = tmp_path / "d"
    shutil.copytree(project / "d", dataset)
    frame = read_manifest(project / "embedded")
    source = sorted({s for joined in frame["source_ids"] for s in joined.split(";") if s})[0]
    real = read_manifest(dataset)
    real.loc[real["id"] == source, "split"] = "val"  # no longer a train image (the card's hash now differs too)
    write_manifest(real, dataset)
    card = read_card(dataset)
    from synthdata.data.manifest import manifest_hash

    card.manifest_sha256 = manifest_hash(real)
    card.write(dataset)
    with pytest.raises(DataError, match=r"made from a dataset with manifest .*, not .*/d "):
        verify_folder(project / "embedded", dataset=dataset)


def test_validate_refuses_to_sign_replacements_otherwise_than_the_set(project, tmp_path):
    recipe = load_recipe(project / "tiny.yaml")  # no signing: the embedded set is signed
    with pytest.raises(DataError, match=r"the set is signed embedded:.* but this run would sign unsigned"):
        run_validate(recipe, project / "d", project / "embedded", project / "adapter", tmp_path / "v")


def test_validated_signed_set_keeps_its_credentials(project, tmp_path):
    recipe = load_recipe(project / "sidecar.yaml")
    result = run_validate(recipe, project / "d", project / "sidecar", project / "adapter", tmp_path / "v")
    summary = verify_folder(tmp_path / "v", project / "keys" / "ca.pem", project / "d")
    assert summary.images == result.accepted and summary.sidecars == result.accepted and summary.sealed


def _decisions(set_folder: Path, choices: dict[str, str], **override) -> dict:
    card = read_card(set_folder)
    record = {
        "format": "synthdata-review/1",
        "set": card.name,
        "set_manifest_sha256": card.manifest_sha256,
        "reviewer": "Ada Reviewer",
        "exported_at": "2026-12-03T10:00:00Z",
        "decisions": [{"id": i, "decision": d, "at": "2026-12-03T09:59:00.123Z"} for i, d in choices.items()],
    }
    return {**record, **override}


def test_apply_refuses_decisions_for_another_set_and_bad_decisions(project, tmp_path, monkeypatch, capsys):
    ids = list(read_manifest(project / "sidecar")["id"])
    cases = {
        "other-set": (_decisions(project / "embedded", {}), "decisions made for set 'embedded'"),
        # the same images under another name (a set made with other credentials): still another set
        "other-name": (_decisions(project / "dataset", {}), "decisions made for set 'dataset'"),
        "unknown-id": (_decisions(project / "sidecar", {"nope": "reject"}), "image 'nope' is not in the set"),
        "bad-decision": (_decisions(project / "sidecar", {ids[0]: "maybe"}), "decision 'maybe' is not one of"),
        "no-reviewer": (_decisions(project / "sidecar", {}, reviewer=" "), "'reviewer' must be a non-empty string"),
        "bad-time": (_decisions(project / "sidecar", {}, exported_at="yesterday"), "is not an ISO 8601 time"),
        "not-decisions": ({"format": "x"}, "not a review decisions file"),
    }
    for name, (record, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(record))
        argv = ["review", str(project / "sidecar"), "--apply", str(path), "--out", str(tmp_path / name)]
        code, _, err = run_cli(argv + ["--recipe", str(project / "sidecar.yaml")], monkeypatch, capsys)
        assert code == 1 and err.count("\n") == 1 and message in err, (name, err)
        assert not (tmp_path / name).exists()
    path = tmp_path / "fine.json"
    path.write_text(json.dumps(_decisions(project / "sidecar", {ids[0]: "reject"})))
    code, _, err = run_cli(["review", str(project / "sidecar"), "--apply", str(path)], monkeypatch, capsys)
    assert code == 1 and "the set is signed" in err and "give a signing key" in err
    argv = ["review", str(project / "sidecar"), "--apply", str(path), "--out", str(project / "sidecar" / "in")]
    code, _, err = run_cli(argv + ["--recipe", str(project / "sidecar.yaml")], monkeypatch, capsys)
    assert code == 1 and err.startswith("error: --out")


def test_apply_publishes_a_signed_reviewed_version_logged_to_mlflow(project, tmp_path, monkeypatch, capsys):
    folder = project / "sidecar"
    ids = list(read_manifest(folder)["id"])
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(_decisions(folder, {ids[0]: "reject", ids[1]: "accept", ids[2]: "skip"})))
    out = tmp_path / "reviewed"
    argv = ["review", str(folder), "--apply", str(path), "--out", str(out), "--recipe", str(project / "sidecar.yaml")]
    code, stdout, err = run_cli(argv, monkeypatch, capsys)
    assert code == 0, err
    assert f"{len(ids) - 1} images (1 accept, 1 reject, 1 skip, {len(ids) - 3} unreviewed)" in stdout
    frame = read_manifest(out).set_index("id")
    assert ids[0] not in frame.index and len(frame) == len(ids) - 1 and set(REVIEW_COLUMNS) <= set(frame.columns)
    assert frame.at[ids[1], "review_decision"] == "accept" and frame.at[ids[3], "review_decision"] == "unreviewed"
    assert frame.at[ids[1], "reviewed_at"] == "2026-12-03T09:59:00Z" and (frame["reviewer"] == "Ada Reviewer").all()
    summary = verify_folder(out, project / "keys" / "ca.pem", project / "d")
    assert summary.reviewed == {"accept": 1, "skip": 1, "unreviewed": len(ids) - 3}
    card = read_card(out)
    assert card.review["rejected"] == 1 and card.review["reviewer"] == "Ada Reviewer"
    assert f"Human review:** 3 of {len(ids)} images reviewed by Ada Reviewer" in (out / "README.md").read_text()
    assert json.loads((out / "review.json").read_text())["rejected"] == [ids[0]]
    # the credential itself carries the decision: a row edited to another decision fails
    code, stdout, _ = run_cli(["verify", str(out / frame.at[ids[1], "relpath"])], monkeypatch, capsys)
    assert code == 0 and "review: accept by Ada Reviewer" in stdout
    edited = tmp_path / "edited"
    shutil.copytree(out, edited)
    rows = read_manifest(edited)
    rows.loc[rows["id"] == ids[2], "review_decision"] = "accept"
    write_manifest(rows, edited)
    (edited / "manifest.c2pa").unlink()  # the signed manifest and the card gone: each image's credential still holds
    (edited / "card.json").unlink()
    with pytest.raises(DataError, match=r"credential review .*'skip'.* != manifest row .*'accept'"):
        verify_folder(edited)
    runs = stage_runs()
    review = runs[runs["tags.stage"] == "review"].iloc[0]
    assert review["metrics.review.reject"] == 1 and review["tags.reviewer"] == "Ada Reviewer"
    assert review["tags.reviewed_set_manifest_sha256"] == read_card(folder).manifest_sha256


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_review_page_round_trip_in_a_headless_browser(project, tmp_path, monkeypatch, capsys):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    folder = project / "embedded"
    page = tmp_path / "review.html"
    code, stdout, err = run_cli(
        ["review", str(folder), "--dataset", str(project / "d"), "--out", str(page)], monkeypatch, capsys
    )
    assert code == 0 and "open it in a browser" in stdout, err
    ids = sorted(read_manifest(folder)["id"])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = headless_chromium(downloads)
    try:
        driver.get(page.as_uri())
        counts = driver.find_element(By.ID, "counts")
        assert counts.text.startswith(f"0 of {len(ids)} decided")
        assert driver.find_element(By.ID, "synthetic").get_attribute("src").startswith("data:image/png;base64,")
        assert driver.find_elements(By.CSS_SELECTOR, "#sources img")  # img2img: its real source beside it
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("e")  # no reviewer name yet: refused, nothing exported
        assert "Type your name" in driver.find_element(By.ID, "message").text
        driver.find_element(By.ID, "reviewer").send_keys("Grace Reviewer", Keys.ENTER)
        first = driver.find_element(By.ID, "caption").text
        body.send_keys("a", "r", "s", "a", Keys.ARROW_LEFT)
        assert counts.text.startswith(f"4 of {len(ids)} decided: 2 accepted, 1 rejected, 1 skipped")
        assert driver.find_element(By.ID, "caption").text.startswith(f"4 of {len(ids)}") and first.startswith("1 of")
        assert driver.find_element(By.ID, "state").text == "decided: accept"
        body.send_keys("e")
        target = downloads / f"decisions-{read_card(folder).name}.json"
        for _ in range(100):
            if target.is_file():
                break
            time.sleep(0.1)
        decisions = json.loads(target.read_text())
        # the page reopened keeps the decisions (browser storage)
        driver.get(page.as_uri())
        assert driver.find_element(By.ID, "counts").text.startswith(f"4 of {len(ids)} decided")
    finally:
        driver.quit()
    assert decisions["reviewer"] == "Grace Reviewer" and len(decisions["decisions"]) == 4
    order = [d["decision"] for d in sorted(decisions["decisions"], key=lambda d: d["at"])]
    assert order == ["accept", "reject", "skip", "accept"]
    rejected = [d["id"] for d in decisions["decisions"] if d["decision"] == "reject"]
    out = tmp_path / "reviewed"
    argv = [
        "review",
        str(folder),
        "--apply",
        str(target),
        "--out",
        str(out),
        "--recipe",
        str(project / "embedded.yaml"),
    ]
    code, stdout, err = run_cli(argv, monkeypatch, capsys)
    assert code == 0, err
    assert rejected[0] not in set(read_manifest(out)["id"]) and len(read_manifest(out)) == len(ids) - 1
    code, stdout, _ = run_cli(["verify", str(out), "--trust", str(project / "keys" / "ca.pem")], monkeypatch, capsys)
    assert code == 0 and "review       2 accept, 1 skip" in stdout and "Grace Reviewer" in stdout


def test_the_signing_key_never_reaches_mlflow_or_the_set(project, tmp_path):
    recipe = load_recipe(project / "sidecar.yaml")
    run_sample(recipe, project / "adapter", project / "d", tmp_path / "s")
    key = (project / "keys" / "signer-key.pem").read_text()
    body = key.split("-----")[2].strip().splitlines()[0]  # a line of the key's base64
    runs = stage_runs()
    logged = json.dumps(runs.astype(str).to_dict(orient="records"))
    assert len(runs) and body not in logged and "signer-key.pem" not in logged
    for path in (tmp_path / "s").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert body.encode() not in data and b"signer-key.pem" not in data, path


def test_an_unsigned_set_is_reviewed_without_a_key_and_its_card_says_unsigned(project, tmp_path, monkeypatch, capsys):
    run_sample(load_recipe(project / "tiny.yaml"), project / "adapter", project / "d", tmp_path / "s")
    assert read_card(tmp_path / "s").credentials == {"signed": 0, "signer": None}
    assert "Content Credentials:** none" in (tmp_path / "s" / "README.md").read_text()
    ids = sorted(read_manifest(tmp_path / "s")["id"])
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decisions(tmp_path / "s", {ids[0]: "reject", ids[1]: "reject"})))
    code, stdout, err = run_cli(["review", str(tmp_path / "s"), "--apply", str(path)], monkeypatch, capsys)
    assert code == 0 and "unsigned (the set reviewed was unsigned)" in stdout, err
    reviewed = tmp_path / "s-reviewed"  # the default: a new folder beside the set
    assert sorted(read_manifest(reviewed)["id"]) == ids[2:] and read_card(reviewed).review["rejected"] == 2
    code, _, err = run_cli(["verify", str(reviewed)], monkeypatch, capsys)
    assert code == 1 and "unsigned set" in err
    # the same decisions are for the set reviewed, not for its reviewed version
    code, _, err = run_cli(["review", str(reviewed), "--apply", str(path)], monkeypatch, capsys)
    assert code == 1 and err.count("\n") == 1 and "decisions made for set 's'" in err


def test_review_page_bad_input_is_one_line(project, tmp_path, monkeypatch, capsys):
    cases = [
        (["review", str(tmp_path / "missing")], "missing: no such set folder"),
        (["review", str(project / "embedded")], "give --dataset"),  # datasets/d is not under this folder
        (
            [
                "review",
                str(project / "embedded"),
                "--dataset",
                str(project / "d"),
                "--out",
                str(project / "embedded" / "p.html"),
            ],
            "--out",
        ),
        (
            [
                "review",
                str(project / "embedded"),
                "--apply",
                str(tmp_path / "none.json"),
                "--out",
                str(tmp_path / "o"),
            ],
            "no such decisions file",
        ),
    ]
    for argv, message in cases:
        code, _, err = run_cli(argv, monkeypatch, capsys)
        assert code == 1 and err.count("\n") == 1 and err.startswith("error:") and message in err, (argv, err)
