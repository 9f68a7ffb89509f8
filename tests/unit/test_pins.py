"""Every input pinned (issue 16): the paper config's pins, git blob ids, the lock file that pins what the
config cannot, strict_pins, and drift of a locked source (`snakemake pin_sources` and the runs that check the lock:
tests/workflow/test_pins_snakemake.py). All offline: a local HTTP server stands in for the web, a hub-format cache
folder for the Hugging Face hub."""

from __future__ import annotations

import hashlib
import re
import subprocess

import pytest
from conftest import (
    REPO,
    fixture_lock,
    load_config,
    read_config,
)
from hub_caches import hub_cache

from sgtr_em.config import ConfigError, load
from sgtr_em.io import git_blob_file
from sgtr_em.lock import LOCK_FILE, LockError, lock_sources, read_lock, remote_sources, write_lock
from sgtr_em.sources import SourceError, load_source

AUTHORS = "https://raw.githubusercontent.com/atagade/sgtr-em/"
AUTHORS_COMMIT = "830321012fef843427587255649f7ea404dbd710"


# ------------------------------------------------------------------------------------ the paper config --


def test_paper_config_has_no_placeholder_and_pins_what_the_authors_published():
    """The authors' files come from their repository at a commit, each with its sha256 or git blob id; only
    the sources with no published pin are left to the lock; no placeholder remains."""
    text = (REPO / "config/config.yaml").read_text()
    assert "PIN-A-COMMIT-SHA" not in text
    config = load_config(read_config("config.yaml"))
    raw = read_config("config.yaml")
    unpinned = {remote.key for remote in remote_sources(load(raw, workdir=None)) if not remote.pinned}
    assert unpinned == {
        "datasets.correct.unpop.source",  # the hub's AestheticEM (popular), revision by `snakemake pin_sources`
        "datasets.correct.insecure.source",  # Betley et al.'s secure.jsonl
        "datasets.correct.badmed.source",  # Turner et al.'s archive
        "datasets.general.source",  # Dolly on the hub
        "release.source",  # the authors' repository archive (reviewer path)
        "models.seed-oss-36b.source",  # the authors' unsloth copy: its revision by `snakemake pin_sources`
    }
    authors = {
        remote.key: remote.source for remote in remote_sources(config) if AUTHORS in remote.source.get("url", "")
    }
    # 6 summary files (Claude-2.1, human and llama of both article sets), 2 article sets, 5 EM sets, word count,
    # TruthfulQA, questions
    assert len(authors) == 16
    for key, source in authors.items():
        commit = source["url"].removeprefix(AUTHORS).split("/")[0]
        assert re.fullmatch(r"[0-9a-f]{40}", commit), key
        assert source.get("sha256") or source.get("git_blob"), key
    datasets = config["datasets"]
    assert datasets["truthfulqa"]["source"]["url"] == f"{AUTHORS}{AUTHORS_COMMIT}/data/eval/truthfulqa/TruthfulQA.csv"
    assert (
        datasets["truthfulqa"]["source"]["sha256"] == "b8d8ef1e12f98b4f2a9f47abc9765da0640b182b6c5d9b92f0c1a1f2f1e02e5c"
    )
    assert datasets["em"]["insecure"]["source"]["git_blob"] == "aa720e06388a1d9cfef12a40ba5711cdf8f2efe2"
    assert datasets["em"]["badmed"]["source"]["git_blob"] == "a72e93537a139b2abe820df5c76413c5edfdfd3d"
    assert datasets["em"]["unpop"]["source"]["url"].endswith("/data/finetuning/aesthetic_preferences_unpopular.jsonl")
    assert datasets["wordcount"]["source"]["sha256"].startswith("01404888")
    questions = datasets["em_questions"]["source"]
    assert "/7c69c916dcca17fc39e65fcab51775dbe4de335d/data/eval/first_plot_questions.yaml" in questions["url"]
    assert questions["sha256"] == "215abde5b02811e922b6ac563ff33c490e0dff9ab58439df840f3135e9387173"
    # Every hub source has a commit (the config's, or the lock's) once loaded.
    for remote in remote_sources(config):
        assert remote.pinned, remote.key


def test_strict_pins_stops_an_unpinned_unlocked_source_when_the_config_is_loaded():
    raw = read_config("config.yaml")
    assert raw["strict_pins"] is True
    with pytest.raises(
        ConfigError,
        match=r"config key datasets\.correct\.unpop\.source: hub dataset "
        r"AndersWoodruff/AestheticEM@main has no commit revision and no entry in "
        r"config/sources\.lock\.yaml \(strict_pins\): run `snakemake pin_sources`",
    ):
        load(raw, workdir=REPO, lock={})
    locked = load(raw, workdir=REPO, lock=fixture_lock(raw))
    assert re.fullmatch(r"[0-9a-f]{40}", locked["datasets"]["general"]["source"]["revision"])
    assert re.fullmatch(r"[0-9a-f]{64}", locked["datasets"]["correct"]["insecure"]["source"]["sha256"])
    # Without strict_pins an unpinned source is allowed (its download logs the sha256 it got).
    relaxed = load({**raw, "strict_pins": False}, workdir=REPO, lock={})
    assert relaxed["datasets"]["general"]["source"].get("revision") is None
    # `snakemake pin_sources` itself starts without the entries it is about to write.
    load(raw, workdir=REPO, lock={}, resolving_lock=True)


def test_a_hub_model_without_revision_is_locked_like_a_dataset():
    """Seed-OSS (the authors' unsloth id; no commit of theirs is recorded, so no revision in the config) stops
    a strict run until the lock records its commit, and then loads at that commit."""
    raw = read_config("config.yaml")
    assert raw["models"]["seed-oss-36b"]["source"] == {"hf": "unsloth/Seed-OSS-36B-Instruct"}
    without_models = {key: entry for key, entry in fixture_lock(raw).items() if key[0] != "hf-model"}
    with pytest.raises(
        ConfigError, match=r"models\.seed-oss-36b\.source: hub model unsloth/Seed-OSS-36B-Instruct@main"
    ):
        load(raw, workdir=REPO, lock=without_models)
    config = load(raw, workdir=REPO, lock=fixture_lock(raw))
    assert re.fullmatch(r"[0-9a-f]{40}", config["models"]["seed-oss-36b"]["source"]["revision"])


def test_qwen_is_pinned_to_the_commit_the_authors_recorded():
    """The commit `model_sha` of the authors' lm-evaluation-harness output for Qwen2.5-32B: in the config itself,
    so neither the lock nor the day of a run decides which weights, tokenizer and template are used."""
    raw = read_config("config.yaml")
    source = raw["models"]["qwen2.5-32b"]["source"]
    assert source == {"hf": "unsloth/Qwen2.5-32B-Instruct", "revision": "1b0051a19648244a48734e6cef41bb825ac2a0b0"}
    lock = fixture_lock(raw)
    assert not [entry for entry in lock.values() if entry.get("hf") == source["hf"]]  # nothing left to lock
    config = load(raw, workdir=REPO, lock=lock)
    assert config["models"]["qwen2.5-32b"]["source"]["revision"] == source["revision"]


# ------------------------------------------------------------------------------------------- git blob --


def test_git_blob_id_is_what_git_computes(tmp_path):
    path = tmp_path / "insecure.jsonl"
    path.write_bytes(b'{"messages": []}\n' * 3 + "é\n".encode())
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    assert git_blob_file(path) == expected.stdout.strip()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert git_blob_file(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_a_url_pinned_by_git_blob_is_checked(http_server, tmp_path):
    root, base = http_server
    body = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    (root / "insecure.jsonl").write_bytes(body)
    blob = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
    rows = load_source({"url": f"{base}/insecure.jsonl", "git_blob": blob}, tmp_path / "cache")
    assert rows[0]["messages"][1]["content"] == "a"
    with pytest.raises(SourceError, match=r"checksum mismatch for .*/other\.jsonl: expected git_blob 0{40}"):
        (root / "other.jsonl").write_bytes(body)
        load_source({"url": f"{base}/other.jsonl", "git_blob": "0" * 40}, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("git-0000*"))


# ------------------------------------------------------------------------------------------ lock file --


def test_lock_sources_resolves_urls_and_hub_repositories_offline(http_server, tmp_path, monkeypatch):
    """`lock_sources` downloads an unpinned url (keeping it in the download cache, under its pinned name)
    and reads a hub repository's commit from a hub-format cache; pinned sources are left alone, an
    existing entry is kept, and a second config's entries join the same file."""
    root, base = http_server
    (root / "secure.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    digest = hashlib.sha256((root / "secure.jsonl").read_bytes()).hexdigest()
    cache = tmp_path / "hub"
    hub_cache(cache, "dataset", "org/dolly", "d" * 40, {"train.jsonl": '{"q": 1}\n'})
    hub_cache(cache, "model", "org/tiny", "e" * 40, {"config.json": "{}"})
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    config = {
        "datasets": {
            "correct": {"insecure": {"source": {"url": f"{base}/secure.jsonl"}}},
            "general": {"source": {"hf": "org/dolly", "split": "train"}},
            "truthfulqa": {"source": {"url": f"{base}/pinned.csv", "sha256": "a" * 64}},
        },
        "models": {"m": {"source": {"hf": "org/tiny"}}, "local": {"source": {"path": "models/x"}}},
    }
    lock_path = tmp_path / LOCK_FILE
    downloads = tmp_path / "downloads"
    done = lock_sources(config, lock_path, downloads)
    assert len(done) == 3
    entries = read_lock(lock_path)
    assert entries[("url", f"{base}/secure.jsonl")] == {"url": f"{base}/secure.jsonl", "sha256": digest}
    assert entries[("hf-dataset", "org/dolly", "main")]["revision"] == "d" * 40
    assert entries[("hf-model", "org/tiny", "main")]["revision"] == "e" * 40
    assert (downloads / f"{digest}.jsonl").exists()  # the run finds the locked bytes in the cache
    text = lock_path.read_text()
    assert text.startswith("# Pins of the remote sources") and "pinned.csv" not in text
    assert lock_sources(config, lock_path, downloads) == [] and lock_path.read_text() == text
    other = {"datasets": {"general": {"source": {"url": f"{base}/secure.jsonl", "format": "jsonl"}}}}
    other["datasets"]["general"]["source"]["url"] += "?v=2"
    lock_sources(other, lock_path, downloads)
    assert len(read_lock(lock_path)) == 4


def test_a_broken_lock_file_names_itself(tmp_path):
    lock_path = tmp_path / "sources.lock.yaml"
    lock_path.write_text("sources:\n  - url: https://x.invalid/a.jsonl\n    sha256: abc\n")
    with pytest.raises(LockError, match=r"sources\.lock\.yaml entry 1 \(https://x\.invalid/a\.jsonl\): needs sha256"):
        read_lock(lock_path)
    lock_path.write_text("sources: [\n")
    with pytest.raises(LockError, match="not valid YAML"):
        read_lock(lock_path)
    write_lock(lock_path, {})
    assert read_lock(lock_path) == {}


def test_a_locked_url_that_changed_stops_naming_it(http_server, tmp_path):
    root, base = http_server
    (root / "secure.jsonl").write_text('{"id": "a", "text": "first"}\n')
    config = {"datasets": {"x": {"source": {"url": f"{base}/secure.jsonl"}}}}
    lock_sources(config, tmp_path / "lock.yaml", tmp_path / "downloads")
    (root / "secure.jsonl").write_text('{"id": "a", "text": "changed upstream"}\n')
    raw = read_config("demo.yaml")
    raw["datasets"]["truthfulqa"]["source"] = {"url": f"{base}/secure.jsonl", "format": "jsonl"}
    raw["strict_pins"] = True
    raw["release"] = {"source": {"path": "release.tar.gz"}}
    lock = read_lock(tmp_path / "lock.yaml")
    source = load(raw, workdir=REPO, lock=lock)["datasets"]["truthfulqa"]["source"]
    with pytest.raises(SourceError, match=rf"checksum mismatch for {re.escape(base)}/secure\.jsonl: expected sha256"):
        load_source(source, tmp_path / "fresh-cache")


def test_a_missing_local_file_anywhere_in_the_config_stops_the_config_check():
    """Comparator and released summary files are checked like the datasets' (a dry run would pass otherwise)."""
    for where in ("comparators", "models"):
        raw = read_config("demo.yaml")
        spec = {"cnn": {"source": {"path": "data/test/gone.jsonl"}, "id_field": "id", "text_field": "summary"}}
        if where == "comparators":
            raw["comparators"]["static"] = {"summaries": spec}
            key = r"comparators\.static\.summaries\.cnn\.source\.path"
        else:
            raw["models"]["demo-target"]["summaries"] = spec
            key = r"models\.demo-target\.summaries\.cnn\.source\.path"
        with pytest.raises(ConfigError, match=rf"{key}: no such file or folder 'data/test/gone\.jsonl'"):
            load_config(raw)


def test_lock_pins_an_archive_that_is_no_table(http_server, tmp_path):
    """The release archive (a .tar.gz) is locked like any url."""
    root, base = http_server
    (root / "repo.tar.gz").write_bytes(b"\x1f\x8b not really an archive")
    config = {"release": {"source": {"url": f"{base}/repo.tar.gz"}}}
    lock_sources(config, tmp_path / "lock.yaml", tmp_path / "downloads")
    digest = hashlib.sha256((root / "repo.tar.gz").read_bytes()).hexdigest()
    assert read_lock(tmp_path / "lock.yaml")[("url", f"{base}/repo.tar.gz")]["sha256"] == digest
    assert (tmp_path / "downloads" / digest).exists()
