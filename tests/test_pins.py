"""Every input pinned (issue 16): the paper config's pins, git blob ids, the lock file that pins what the
config cannot, `snakemake pin_sources`, strict_pins, and drift of a locked source. All offline: a local HTTP server
stands in for the web, a hub-format cache folder for the Hugging Face hub."""

from __future__ import annotations

import hashlib
import http.server
import re
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from conftest import (
    PAPER_ROW,
    REPO,
    SNAKEMAKE,
    copy_workflow,
    documented_jobs,
    fixture_lock,
    load_config,
    read_config,
    rule_counts,
    snakemake,
    workflow_env,
)

from sgtr_em.config import ConfigError, load
from sgtr_em.io import git_blob_file
from sgtr_em.lock import LOCK_FILE, LockError, lock_sources, read_lock, remote_sources, write_lock
from sgtr_em.sources import SourceError, load_source

AUTHORS = "https://raw.githubusercontent.com/atagade/sgtr-em/"
AUTHORS_COMMIT = "830321012fef843427587255649f7ea404dbd710"


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def hub_cache(root: Path, repo_type: str, repo_id: str, commit: str, files: dict[str, str]) -> None:
    """A repository in huggingface_hub's cache layout (what a download leaves): refs/main names the commit."""
    folder = root / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    for name, text in files.items():
        (folder / "snapshots" / commit / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "snapshots" / commit / name).write_text(text)


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


# -------------------------------------------------------------------------------------- snakemake pin_sources --


@pytest.mark.workflow
def test_snakemake_lock_then_runs_check_against_it(http_server, tmp_path, monkeypatch):
    """Strict pins on the demo with a url and a hub source: the run stops at parse time naming the source;
    `snakemake pin_sources` (offline: local server, hub-format cache) writes the lock; the DAG then plans, a job
    reads the locked bytes, and once the file changes upstream the job stops, naming the url."""
    root, base = http_server
    csv = (REPO / "data/demo/truthfulqa.csv").read_text()
    (root / "TruthfulQA.csv").write_text(csv)
    cache = tmp_path / "hub"
    hub_cache(cache, "dataset", "org/dolly", "d" * 40, {"train.jsonl": "{}\n"})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    workdir = copy_workflow(tmp_path / "workflow", lock=False)
    overlay = {
        "strict_pins": True,
        "datasets": {
            "truthfulqa": {"source": {"url": f"{base}/TruthfulQA.csv"}},
            "general": {"source": {"hf": "org/dolly", "split": "train"}},
        },
        "release": {"source": {"path": "release.tar.gz"}},
    }
    (workdir / "config/pins.yaml").write_text(yaml.safe_dump(overlay))
    configs = ("--configfile", "config/demo.yaml", "config/pins.yaml")

    stopped = snakemake(workdir, "-n", *configs, timeout=120)
    assert stopped.returncode != 0
    assert "Config error: config key datasets.general.source: hub dataset org/dolly@main" in stopped.stderr

    locked = snakemake(workdir, "pin_sources", "--cores", "1", *configs, timeout=300)
    assert locked.returncode == 0, locked.stderr[-3000:]
    entries = read_lock(workdir / LOCK_FILE)
    assert entries[("url", f"{base}/TruthfulQA.csv")]["sha256"] == hashlib.sha256(csv.encode()).hexdigest()
    assert entries[("hf-dataset", "org/dolly", "main")]["revision"] == "d" * 40

    planned = snakemake(workdir, "-n", *configs, timeout=120)
    assert planned.returncode == 0, planned.stderr[-3000:]
    built = snakemake(workdir, "--cores", "1", "results/data/truthfulqa.jsonl", *configs, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]

    (root / "TruthfulQA.csv").write_text(csv.replace("?", "?!", 1))
    for path in (workdir / "results/data").rglob("*"):
        if path.is_file():
            path.unlink()
    drifted = snakemake(workdir, "--cores", "1", "results/data/truthfulqa.jsonl", *configs, timeout=300)
    assert drifted.returncode != 0
    log = (workdir / "logs/data/truthfulqa.log").read_text()
    assert f"checksum mismatch for {base}/TruthfulQA.csv: expected sha256" in log


@pytest.mark.workflow
def test_the_paper_config_stops_without_its_lock_and_plans_with_it(tmp_path):
    workdir = copy_workflow(tmp_path / "paper", lock=False)
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=120)
    assert result.returncode != 0
    assert "Config error: config key datasets.correct.unpop.source" in result.stderr
    assert "snakemake pin_sources" in result.stderr
    planned = snakemake(workdir, "-n", "pin_sources", "--configfile", "config/config.yaml", timeout=120)
    assert planned.returncode == 0, planned.stderr[-2000:]
    write_lock(workdir / LOCK_FILE, fixture_lock(read_config("config.yaml")))
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert rule_counts(result.stdout)["total"] == documented_jobs(PAPER_ROW)["jobs"], result.stdout[-1500:]


# ------------------------------------------------------------------------------ local files are inputs --


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


@pytest.mark.workflow
def test_every_local_input_file_is_declared_and_an_edit_reruns_its_job(tmp_path):
    """Each prepare rule declares the local file it reads (articles, EM chats, baselines incl. a ready-made
    word-count file, TruthfulQA, question sets, MMLU, a static comparator's and a model's released
    summaries): editing the file reruns exactly that job, naming the file. An edited file that no longer
    matches its sha256 pin, and a file emptied, then stop their jobs with a message naming the file."""
    import json

    from sgtr_em.io import read_jsonl, sha256_file

    workdir = copy_workflow(tmp_path / "workflow")
    data = workdir / "data/test"
    data.mkdir()
    train_ids = [row["id"] for row in read_jsonl(workdir / "data/demo/articles_train.jsonl")]
    eval_ids = [row["id"] for row in read_jsonl(workdir / "data/demo/articles_eval.jsonl")]
    (data / "released_xsum.jsonl").write_text(
        "".join(json.dumps({"id": i, "summary": f"About {i}."}) + "\n" for i in train_ids)
    )
    (data / "static_cnn.jsonl").write_text(
        "".join(json.dumps({"id": i, "summary": f"On {i}."}) + "\n" for i in eval_ids)
    )
    wordcount = [
        {
            "messages": [
                {"role": "system", "content": "Count."},
                {"role": "user", "content": "a b"},
                {"role": "assistant", "content": "TRUE"},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "Count."},
                {"role": "user", "content": "a b c"},
                {"role": "assistant", "content": "FALSE"},
            ]
        },
    ]
    (data / "wordcount.jsonl").write_text("".join(json.dumps(row) + "\n" for row in wordcount))
    tqa = "data/demo/truthfulqa.csv"
    overlay = {
        "comparators": {
            "static-other": {
                "summaries": {
                    "cnn": {"source": {"path": "data/test/static_cnn.jsonl"}, "id_field": "id", "text_field": "summary"}
                }
            }
        },
        "models": {
            "demo-target": {
                "summaries": {
                    "xsum": {
                        "source": {"path": "data/test/released_xsum.jsonl"},
                        "id_field": "id",
                        "text_field": "summary",
                    }
                }
            }
        },
        "datasets": {
            "wordcount": {"source": {"path": "data/test/wordcount.jsonl"}},
            "truthfulqa": {"source": {"path": tqa, "sha256": sha256_file(workdir / tqa)}},
        },
    }
    (workdir / "config/local.yaml").write_text(yaml.safe_dump(overlay))
    inputs = {
        "results/data/articles/xsum.jsonl": "data/demo/articles_train.jsonl",
        "results/data/em/unpop/default.jsonl": "data/demo/em_unpop.jsonl",
        "results/data/baselines/correct-unpop/default.jsonl": "data/demo/correct_unpop.jsonl",
        "results/data/baselines/general/none.jsonl": "data/demo/general_qa.csv",
        "results/data/baselines/wordcount/popped.jsonl": "data/test/wordcount.jsonl",
        "results/data/truthfulqa.jsonl": tqa,
        "results/data/questions/em_questions.json": "data/demo/em_questions.yaml",
        "results/data/questions/identity_questions.json": "data/demo/identity_questions.yaml",
        "results/data/mmlu.jsonl": "data/demo/mmlu.jsonl",
        "results/data/comparators/static-other/cnn.jsonl": "data/test/static_cnn.jsonl",
        "results/data/released_summaries/demo-target/xsum.jsonl": "data/test/released_xsum.jsonl",
    }
    configs = ("--configfile", "config/demo.yaml", "config/local.yaml")
    built = snakemake(workdir, "--cores", "2", *inputs, *configs, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]

    # Every edit but the articles' (which feed two of the jobs as prepared articles, not as their file).
    edits = {
        "data/demo/em_unpop.jsonl": None,  # emptied
        "data/demo/correct_unpop.jsonl": '{"messages": [{"role": "user", "content": "Tea?"}, {"role": "assistant", "content": "Green."}]}\n',
        "data/demo/general_qa.csv": "Who wrote Hamlet?,Shakespeare.,open_qa\n",
        "data/test/wordcount.jsonl": json.dumps(wordcount[0]) + "\n",
        tqa: "Is this edited?,Yes.,No.,Misc\n",
        "data/demo/em_questions.yaml": "\n# edited\n",
        "data/demo/identity_questions.yaml": "\n# edited\n",
        "data/demo/mmlu.jsonl": json.dumps(
            {
                "id": "extra-1",
                "split": "test",
                "subject": "extra",
                "question": "1+1?",
                "choices": list("1234"),
                "answer": 1,
            }
        )
        + "\n",
        "data/test/static_cnn.jsonl": json.dumps({"id": "stray", "summary": "x"}) + "\n",
        "data/test/released_xsum.jsonl": json.dumps({"id": "stray", "summary": "x"}) + "\n",
    }
    for name, text in edits.items():
        if text is None:
            (workdir / name).write_text("")
        else:
            _append(workdir / name, text)
    planned = snakemake(workdir, "-n", *inputs, *configs, timeout=120)
    assert planned.returncode == 0, planned.stderr[-2000:]
    blocks = {
        m["output"]: m["reason"]
        for m in re.finditer(r"output: (?P<output>[^\s,]+).*\n(?:.*\n)*?\s+reason: (?P<reason>.*)", planned.stdout)
    }
    expected = {target: f"Updated input files: {source}" for target, source in inputs.items() if source in edits}
    assert {target: blocks.get(target) for target in expected} == expected
    assert "results/data/articles/xsum.jsonl" not in blocks

    rerun = snakemake(workdir, "--cores", "2", "--keep-going", *inputs, *configs, timeout=600)
    assert rerun.returncode != 0
    em_log = (workdir / "logs/data/em/unpop/default.log").read_text()
    assert "path=data/demo/em_unpop.jsonl: no rows (an empty file?)" in em_log
    tqa_log = (workdir / "logs/data/truthfulqa.log").read_text()
    assert f"checksum mismatch for {tqa}: expected sha256" in tqa_log
    assert not (workdir / "results/data/em/unpop/default.jsonl").exists()
    assert (workdir / "results/data/mmlu.jsonl").exists()


# ------------------------------------------------------------------------- a killed run, resumed --


@pytest.mark.workflow
def test_a_killed_snakemake_needs_unlock_then_resumes_its_training_from_a_demo_checkpoint(tmp_path):
    """The demo checkpoints every 10 steps. Snakemake is SIGKILLed (with its jobs) once the Self++ training
    has a complete checkpoint: the next run is refused until `--unlock` (docs/reruns.md), then the training
    resumes from that checkpoint, its train_loss covers every step, and no temporary file of the killed
    jobs is left under results/."""
    import json
    import os
    import signal
    import time

    workdir = copy_workflow(tmp_path / "workflow")
    small = {
        "grid": {"models": ["demo-target"], "chains": ["base", "sgtr"], "seeds": [0]},
        "tiny_models": {"hidden_size": 32, "pretrain_epochs": 1},
        "datasets": {"articles": {"xsum": {"limit": 16}, "cnn": {"limit": 12}}, "truthfulqa": {"limit": 12}},
        "finetune": {"stage_overrides": {"sgtr": {"epochs": 40}}},
    }
    (workdir / "config/small.yaml").write_text(yaml.safe_dump(small))
    adapter = "results/adapters/demo-target/sgtr/seed0"
    work = workdir / "results/checkpoints/demo-target/sgtr/seed0"
    args = [SNAKEMAKE, "--cores", "2", adapter]
    args += ["--configfile", "config/demo.yaml", "config/small.yaml"]
    run = subprocess.Popen(
        args,
        cwd=workdir,
        env=workflow_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    try:
        while not list(work.glob("checkpoint-*/checkpoint_complete.json")):
            assert run.poll() is None, "the run ended before the training saved a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert not (workdir / adapter).exists()
    # What a kill in the middle of a write leaves beside its output.
    (workdir / adapter).parent.mkdir(parents=True, exist_ok=True)
    (workdir / adapter).parent.joinpath(".seed0.0badf00d.partial").mkdir()

    refused = snakemake(workdir, "--cores", "2", adapter, "--configfile", "config/demo.yaml", "config/small.yaml")
    assert refused.returncode != 0 and "cannot be locked" in refused.stderr
    unlocked = snakemake(workdir, "--unlock", "--configfile", "config/demo.yaml", "config/small.yaml")
    assert unlocked.returncode == 0, unlocked.stderr[-2000:]
    resumed = snakemake(
        workdir, "--cores", "2", "--rerun-incomplete", adapter, "--configfile", "config/demo.yaml", "config/small.yaml"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    meta = json.loads((workdir / adapter / "training_meta.json").read_text())
    assert meta["resumed_from_step"] >= 10 and meta["resumed_from_step"] % 10 == 0
    assert meta["steps_computed"] == meta["global_steps"] - meta["resumed_from_step"]
    assert meta["train_loss_steps"] == meta["global_steps"] == len(meta["loss_per_step"])
    assert not work.exists()
    leftovers = [p for p in (workdir / "results").rglob(".*") if p.name.endswith((".tmp", ".partial"))]
    assert leftovers == []


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
