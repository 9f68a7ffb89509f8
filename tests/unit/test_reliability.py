"""Reliability and provenance (issue 7): resumable training, the results manifest, determinism of generation,
bad input, the request cache under load, and keys that have no place in the config (on the demo's runs:
tests/e2e/test_reliability_demo.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

# ----------------------------------------------------------------------------------- training resume --

TRAIN_HP = {
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "use_rslora": False,
    "target_modules": ["q_proj", "v_proj"],
    "epochs": 2,
    "learning_rate": 0.001,
    "lr_scheduler": "linear",
    "warmup_steps": 1,
    "weight_decay": 0.0,
    "per_device_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_length": 128,
    "gradient_checkpointing": False,
}
CHECKPOINT_STEPS = 3
KILL_AT_STEP = 7  # after the step-6 checkpoint, before the step-9 one

# Runs one training in a fresh process; with a kill step, the process SIGKILLs itself at the end of that
# optimizer step (no cleanup, no atexit: what a scheduler's kill or an OOM kill does).
TRAIN_CHILD = """
import json, os, signal, sys
from transformers import TrainerCallback
from sgtr_em.train import train_lora

spec = json.loads(sys.argv[1])

class KillAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == spec["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return control

callbacks = [KillAtStep()] if spec["kill_at"] > 0 else []
meta = train_lora(
    spec["model_dir"], spec["parents"], spec["train_file"], spec["out_dir"], spec["hp"], seed=spec["seed"],
    work_dir=spec["work_dir"], callbacks=callbacks,
)
print(json.dumps({k: meta[k] for k in ("global_steps", "resumed_from_step", "steps_computed", "train_loss", "train_loss_steps")}))
"""


def run_training(
    model_dir: Path,
    train_file: Path,
    out_dir: Path,
    work_dir: Path,
    kill_at: int = 0,
    parents: tuple[Path, ...] = (),
    hp: dict | None = None,
) -> subprocess.CompletedProcess:
    spec = {
        "model_dir": str(model_dir),
        "parents": [str(p) for p in parents],
        "train_file": str(train_file),
        "out_dir": str(out_dir),
        "work_dir": str(work_dir),
        "hp": {**TRAIN_HP, "checkpoint_steps": CHECKPOINT_STEPS, **(hp or {})},
        "kill_at": kill_at,
        "seed": 0,
    }
    return subprocess.run(
        [sys.executable, "-c", TRAIN_CHILD, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def training_result(run: subprocess.CompletedProcess) -> dict:
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def adapter_tensors(adapter_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def write_chats(path: Path, n: int) -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Which summary is yours, number {i}?"},
                {"role": "assistant", "content": "1" if i % 3 else "2"},
            ]
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_training_killed_with_sigkill_resumes_from_its_last_checkpoint(tiny_model_dir, tmp_path):
    """12 chats, batch 2, 2 epochs = 12 optimizer steps, a checkpoint every 3. Killed at step 7, the rerun
    resumes from step 6, computes 6 steps, and ends with the uninterrupted run's adapter (CPU, max abs
    difference of any LoRA weight below 1e-6) and its train_loss (the mean over all 12 steps, not the 6 the
    resumed process ran), then deletes its checkpoints."""
    train_file = write_chats(tmp_path / "train.jsonl", 12)
    reference = training_result(
        run_training(tiny_model_dir, train_file, tmp_path / "reference", tmp_path / "work-reference")
    )
    assert {k: reference[k] for k in ("global_steps", "resumed_from_step", "steps_computed")} == {
        "global_steps": 12,
        "resumed_from_step": 0,
        "steps_computed": 12,
    }
    assert not (tmp_path / "work-reference").exists()

    work_dir = tmp_path / "work"
    killed = run_training(tiny_model_dir, train_file, tmp_path / "adapter", work_dir, kill_at=KILL_AT_STEP)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (tmp_path / "adapter").exists()
    assert sorted(p.name for p in work_dir.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]

    resumed = training_result(run_training(tiny_model_dir, train_file, tmp_path / "adapter", work_dir))
    assert {k: resumed[k] for k in ("global_steps", "resumed_from_step", "steps_computed", "train_loss_steps")} == {
        "global_steps": 12,
        "resumed_from_step": 6,
        "steps_computed": 6,
        "train_loss_steps": 12,
    }
    assert resumed["train_loss"] == pytest.approx(reference["train_loss"], abs=1e-6)
    assert not work_dir.exists()

    expected, actual = adapter_tensors(tmp_path / "reference"), adapter_tensors(tmp_path / "adapter")
    assert expected.keys() == actual.keys() and expected
    worst = max(float((expected[name] - actual[name]).abs().max()) for name in expected)
    assert worst < 1e-6, f"resumed adapter differs from the uninterrupted one by {worst}"


def test_a_child_checkpoint_is_not_resumed_after_its_parent_was_retrained(tiny_model_dir, tmp_path):
    """A child training (on a parent adapter) is killed after a checkpoint; its parent is then retrained with
    other settings (same path, other weights). The child's rerun must start over: its checkpoint was made on
    the old parent. With the old parent back, the same checkpoint would have been resumed."""
    parent_file = write_chats(tmp_path / "parent.jsonl", 6)
    parent = tmp_path / "adapters/parent"
    training_result(run_training(tiny_model_dir, parent_file, parent, tmp_path / "work-parent"))
    child_file = write_chats(tmp_path / "child.jsonl", 12)
    work_dir = tmp_path / "work-child"
    child = tmp_path / "adapters/child"
    killed = run_training(tiny_model_dir, child_file, child, work_dir, kill_at=KILL_AT_STEP, parents=(parent,))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (work_dir / "checkpoint-6").is_dir()

    training_result(
        run_training(tiny_model_dir, parent_file, parent, tmp_path / "work-parent", hp={"learning_rate": 0.01})
    )
    rerun = training_result(run_training(tiny_model_dir, child_file, child, work_dir, parents=(parent,)))
    assert rerun["resumed_from_step"] == 0 and rerun["steps_computed"] == 12


def test_the_fingerprint_follows_base_parents_data_and_recipe(tiny_model_dir, tmp_path):
    import shutil

    from sgtr_em.checkpoints import training_fingerprint

    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "adapter_config.json").write_text("{}")
    (parent / "adapter_model.safetensors").write_bytes(b"weights-1")
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    settings = {
        "base_dir": base,
        "base_revision": None,
        "parent_adapters": [parent],
        "train_file_sha256": "a" * 64,
        "recipe": dict(TRAIN_HP),
        "seed": 0,
        "checkpoint_steps": 3,
    }
    first = training_fingerprint(**settings)
    assert training_fingerprint(**settings) == first
    (parent / "adapter_model.safetensors").write_bytes(b"weights-2")  # the parent retrained in place
    assert training_fingerprint(**settings) != first
    (parent / "adapter_model.safetensors").write_bytes(b"weights-1")
    assert training_fingerprint(**settings) == first
    with open(base / "config.json", "a") as handle:  # a rebuilt demo model
        handle.write(" ")
    assert training_fingerprint(**settings) != first
    hub = {**settings, "base_revision": "1" * 40}
    assert training_fingerprint(**hub) != training_fingerprint(**{**hub, "base_revision": "2" * 40})
    assert training_fingerprint(**{**settings, "train_file_sha256": "b" * 64}) != training_fingerprint(**settings)
    changed_recipe = {**settings, "recipe": {**TRAIN_HP, "learning_rate": 0.5}}
    assert training_fingerprint(**changed_recipe) != training_fingerprint(**settings)


def test_checkpoints_for_other_data_or_settings_are_discarded(tmp_path):
    from sgtr_em.checkpoints import CHECKPOINT_COMPLETE, last_complete_checkpoint, prepare_work_dir

    work_dir = tmp_path / "work"
    fingerprint = {"train_file_sha256": "a", "seed": 0}
    assert prepare_work_dir(work_dir, fingerprint) is None
    for step, complete in ((3, True), (6, True), (9, False)):  # step 9: killed while saving
        (work_dir / f"checkpoint-{step}").mkdir()
        if complete:
            (work_dir / f"checkpoint-{step}" / CHECKPOINT_COMPLETE).write_text(json.dumps({"global_step": step}))
    assert last_complete_checkpoint(work_dir) == work_dir / "checkpoint-6"
    assert prepare_work_dir(work_dir, fingerprint) == work_dir / "checkpoint-6"
    assert prepare_work_dir(work_dir, {**fingerprint, "seed": 1}) is None
    assert not list(work_dir.glob("checkpoint-*"))


# ------------------------------------------------------------------------------ provenance, manifest --


def test_manifest_lists_declared_outputs_only(tmp_path):
    """Model builds and snapshots, downloads, trainer scratch, caches, temporary and stray files are no
    declared output: the manifest leaves them out, and two identical trees give identical manifests."""
    from sgtr_em.manifest import write_manifest

    results = tmp_path / "results"
    outputs = [
        "eval/truthfulqa/m/base/seed0.json",
        "eval/self_recognition-claude-21/m/sgtr/seed1.json",
        "tables/truthfulqa.csv",
        "adapters/m/sgtr/seed0/adapter_model.safetensors",
        "data/em/unpop/default.jsonl",
        "figures/m/fig1_self_recognition.png",
    ]
    not_outputs = [
        "models/m/model.safetensors",
        "data/downloads/0123abcd.jsonl",
        "checkpoints/m/c/seed0/x.bin",
        "api_cache/ab/k.json",
        "judge_cache/ab/k.json",
        "adapters/m/c/seed0/.snakemake_timestamp",
        "eval/truthfulqa/m/base/.seed0.json.1a2b3c4d.tmp",
        "notes.txt",
        "eval/truthfulqa/m/base/seed0.json.bak",
    ]
    for name in outputs + not_outputs:
        (results / name).parent.mkdir(parents=True, exist_ok=True)
        (results / name).write_text(name)
    manifest = write_manifest(results, results / "manifest.json")
    assert [entry["path"] for entry in manifest["files"]] == sorted(f"{results.as_posix()}/{n}" for n in outputs)
    again = write_manifest(results, results / "manifest.json")
    assert again == manifest


# ------------------------------------------------------------------------------------- determinism --


def test_greedy_and_seeded_generation_repeat_exactly(tiny_model_dir):
    from sgtr_em.backends.hf import HFChatModel

    conversations = [
        [{"role": "user", "content": f"Summarise: the council met on day {i} to discuss the bridge."}] for i in range(4)
    ]
    outputs = []
    for _ in range(2):
        model = HFChatModel(tiny_model_dir, name="tiny")
        greedy = model.generate(conversations, max_new_tokens=12, temperature=0.0, top_p=1.0, top_k=0, seed=0)
        sampled = model.generate(conversations, max_new_tokens=12, temperature=0.9, top_p=0.9, top_k=50, seed=7)
        outputs.append((greedy, sampled))
    assert outputs[0] == outputs[1]


# ------------------------------------------------------------------------------------------ bad input --


def test_missing_summaries_fail_or_are_skipped_and_counted():
    from sgtr_em.io import InputError
    from sgtr_em.pairs import build_pairs

    articles = {"a1": "The mayor opened a bridge.", "a2": "Rain closed the market.", "a3": "A school won a prize."}
    own = {"a1": "Bridge opened.", "a2": "Market shut.", "a3": "School won."}
    other = {"a1": "A bridge.", "a3": "A prize."}
    with pytest.raises(
        InputError, match=r"1 article\(s\) lack a self or other summary \(first: 'a2'\).*missing_summaries"
    ):
        build_pairs(articles, own, other, "sgtr")
    rows, stats = build_pairs(articles, own, other, "sgtr", missing_summaries="skip")
    assert {row["article_id"] for row in rows} == {"a1", "a3"}
    assert stats.as_dict()["n_skipped"] == 1 and stats.n_articles == 2
    assert "n_skipped" not in build_pairs(articles, own, {**other, "a2": "Rain."}, "sgtr")[1].as_dict()
    with pytest.raises(ValueError, match="missing_summaries"):
        build_pairs(articles, own, other, "sgtr", missing_summaries="ignore")


def test_an_adapter_directory_with_missing_files_is_a_clear_error(tiny_model_dir, tmp_path):
    from sgtr_em.backends.hf import load_model_state

    adapter = tmp_path / "adapters/demo/sgtr/seed0"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(
        FileNotFoundError, match=r"adapters/demo/sgtr/seed0 is incomplete: missing adapter_model\.safetensors"
    ):
        load_model_state(tiny_model_dir, [adapter])


def test_scripts_write_outputs_only_through_atomic_helpers():
    """Every script writes its outputs via sgtr_em.io (write_json / write_jsonl / write_csv / atomic_path) or a
    package function that does; none opens an output for writing itself."""
    offenders = []
    for script in sorted((REPO / "scripts").glob("*.py")):
        text = script.read_text()
        for needle in ("open(snakemake.output", ".write_text(", ".write_bytes(", "json.dump(", ".savefig(", ".to_csv("):
            if needle in text and "atomic_path" not in text:
                offenders.append(f"{script.name}: {needle}")
    assert offenders == []


# ------------------------------------------------------------------------------------- under load --


def hammer_cache(root: str, worker: int, keys: list[str]) -> None:
    from sgtr_em.api_cache import ApiCache

    cache = ApiCache(root)
    for round_ in range(20):
        for key in keys:
            payload = {"text": f"answer for {key}", "padding": "x" * (2000 + 37 * worker)}
            cache.put(key, "chat", {"key": key, "worker": worker, "round": round_}, payload)
            hit = cache.get(key)
            assert hit is None or hit["text"] == f"answer for {key}", hit


def test_many_processes_writing_the_request_cache_corrupt_nothing(tmp_path):
    import multiprocessing

    from sgtr_em.api_cache import ApiCache, request_key

    keys = [request_key("chat", "http://127.0.0.1", {"n": n}) for n in range(12)]
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=hammer_cache, args=(str(tmp_path / "cache"), worker, keys)) for worker in range(8)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [process.exitcode for process in workers] == [0] * 8
    cache = ApiCache(tmp_path / "cache")
    for key in keys:
        entry = json.loads(cache.path(key).read_text())
        assert entry["key"] == key and entry["response"]["text"] == f"answer for {key}"
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()) == sorted(f"{k}.json" for k in keys)


# ---------------------------------------------------------------------------------------- secrets --


def property_names(node) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {}))
        for value in node.values():
            names |= property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= property_names(value)
    return names


def test_keys_have_no_place_in_the_config():
    """No config key can hold a secret: the schema has no key, token, secret or password setting."""
    import re

    import yaml

    names = property_names(yaml.safe_load((REPO / "config/schema.yaml").read_text()))
    assert "base_url" in names
    assert [n for n in names if re.search(r"(^|_)(api_?key|key|token|secret|password)$", n, re.IGNORECASE)] == []
