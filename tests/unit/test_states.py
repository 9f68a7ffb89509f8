"""Model states others can load: every adapter folder is a hub model repository (a card with the hub's metadata
header, the base model and its commit in adapter_config.json), and `load_state` rebuilds a chained state
exactly as the evaluation job loads it."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from test_models import HP

from sgtr_em import chains
from sgtr_em.io import write_json, write_jsonl
from sgtr_em.runtime import model_identity
from sgtr_em.states import (
    CARD,
    StateError,
    export_state,
    load_state,
    model_card,
    push_state,
    read_card_record,
    resolve_state,
    state_record,
)
from sgtr_em.train import train_lora

BUILT = {"builder": "tiny", "style": "lead", "seed": 3}
PROMPT = [{"role": "user", "content": "Which summary is yours? Answer 1 or 2."}]


def train_stage(root: Path, chain: str, answer: str, seed: int = 0) -> Path:
    """One stage trained as the workflow's training job does, in a run's layout under `root` (paths relative to
    it, as Snakemake gives them): the adapter on its parents, its provenance, its card."""
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": answer}]} for i in range(4)
    ]
    parents = [f"results/adapters/tiny/{c}/seed{seed}" for c in chains.prefixes(chain)[:-1]]
    out = f"results/adapters/tiny/{chain}/seed{seed}"
    with contextlib.chdir(root):
        write_jsonl(f"data-{answer}.jsonl", rows)
        identity = model_identity("tiny", BUILT)
        record = state_record(model="tiny", chain=chain, seed=seed, identity=identity, run_name="test")
        train_lora(
            "results/models/tiny",
            parents,
            f"data-{answer}.jsonl",
            out,
            HP,
            seed,
            f"work/{chain}",
            model_id="tiny",
            provenance={"model": identity, "code_version": "test"},
            card=lambda meta: model_card(record, meta),
        )
    return root / out


def new_run(root: Path, tiny_model_dir: Path) -> Path:
    shutil.copytree(tiny_model_dir, root / "results" / "models" / "tiny")
    return root


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    """A run's layout with the base model in results/models/ and a two-stage chain, EM then Self++."""
    root = new_run(tmp_path_factory.mktemp("run"), tiny_model_dir)
    first = train_stage(root, "em-unpop", "1")
    second = train_stage(root, "em-unpop+sgtr", "2")
    return {"root": root, "model": root / "results/models/tiny", "first": first, "second": second}


def next_token_logits(model, tokenizer):
    import torch

    ids = tokenizer(
        tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True), return_tensors="pt"
    )
    with torch.no_grad():
        return model(**ids).logits[0, -1]


def test_adapter_folder_is_a_hub_model_repository(run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(run["second"] / CARD)
    assert card.data.library_name == "peft" and card.data.pipeline_tag == "text-generation"
    assert "peft" in card.data.tags and "lora" in card.data.tags
    # A built demo model is not on the hub: the header names no base_model, the card names its build spec.
    assert card.data.base_model is None
    record = read_card_record(run["second"])
    built = model_identity("tiny", BUILT)
    assert record["base"] == {"id": "built:tiny", "revision": built["revision"], "hub": False}
    assert record["chain"] == "em-unpop+sgtr" and record["parents"] == ["em-unpop"] and record["stage"] == "sgtr"
    text = card.text
    assert built["revision"] in text and "is not this state" in text and "merge_and_unload" in text
    assert "data-2.jsonl" in text and "`lora_r` | `4`" in text
    first = (run["first"] / CARD).read_text()
    assert "is not this state" not in first and "PeftModel.from_pretrained(base" in first
    config = json.loads((run["second"] / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny" and config["revision"] is None
    meta = json.loads((run["second"] / "training_meta.json").read_text())
    assert len(meta["learning_rate_per_step"]) == meta["global_steps"] == 2


def test_a_hub_base_is_named_with_its_commit(tiny_model_dir, tmp_path):
    from huggingface_hub import ModelCard

    commit = "0123456789abcdef0123456789abcdef01234567"
    write_jsonl(
        tmp_path / "d.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "1"}]}] * 2,
    )
    out = tmp_path / "adapter"
    identity = model_identity("tiny", {"hf": "org/tiny", "revision": commit})
    record = state_record(model="tiny", chain="sgtr", seed=0, identity=identity)
    train_lora(
        tiny_model_dir,
        [],
        tmp_path / "d.jsonl",
        out,
        HP,
        0,
        tmp_path / "w",
        model_id="org/tiny",
        base_revision=commit,
        card=lambda meta: model_card(record, meta),
    )
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/tiny" and config["revision"] == commit
    card = ModelCard.load(out / CARD)
    assert card.data.base_model == "org/tiny" and card.data.base_model_relation == "adapter"
    assert f'revision="{commit}"' in card.text
    # with the base found on the hub by its commit
    state = resolve_state(out)
    assert (state.base, state.revision, state.adapters) == ("org/tiny", commit, [out])


def test_the_card_is_identical_for_identical_trainings(run, tiny_model_dir, tmp_path):
    again = train_stage(new_run(tmp_path, tiny_model_dir), "em-unpop", "1")
    for name in (CARD, "adapter_config.json", "adapter_model.safetensors"):
        assert (again / name).read_bytes() == (run["first"] / name).read_bytes(), name


def test_load_state_rebuilds_the_chain_as_the_evaluation_job_does(run):
    """The evaluation job's model (HFChatModel on the base and the chain's adapters in order) and the public
    loader's, from the last adapter's path alone, give the same logits, option probabilities and greedy reply
    on a fixed prompt; what AutoPeftModel builds from the folder alone (base and last stage) is another model."""
    import torch

    from sgtr_em.backends.hf import HFChatModel, load_model_state

    evaluated = HFChatModel(run["model"], [run["first"], run["second"]])
    loaded, tokenizer = load_state(run["second"])
    assert torch.equal(next_token_logits(evaluated.model, evaluated.tokenizer), next_token_logits(loaded, tokenizer))
    # the evaluation's own scoring and generation code, on the loader's model
    mine = HFChatModel(run["model"])
    mine.model = loaded
    assert mine.option_probs([PROMPT], ["1", "2"]) == evaluated.option_probs([PROMPT], ["1", "2"])
    greedy = dict(max_new_tokens=6, temperature=0.0, top_p=1.0, top_k=0, seed=0)
    assert mine.generate([PROMPT], **greedy) == evaluated.generate([PROMPT], **greedy)
    naive, _ = load_model_state(run["model"], [run["second"]])
    assert not torch.equal(next_token_logits(naive, tokenizer), next_token_logits(loaded, tokenizer))


def test_load_state_of_a_model_folder_is_the_base(run):
    state = resolve_state(run["model"])
    assert state.adapters == [] and state.base == str(run["model"])


def test_export_carries_the_parents_and_the_results(run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    results = run["root"] / "results"
    write_json(
        results / "eval/truthfulqa/tiny/em-unpop+sgtr/seed0.json",
        {
            "eval": "truthfulqa",
            "model_state": {"model": "tiny", "chain": "em-unpop+sgtr", "seed": 0},
            "metrics": {"logprob": {"misalignment": 0.25, "misalignment:health": 0.5, "n": 4}},
        },
    )
    out = export_state(run["second"], tmp_path / "export")
    assert (out / "parents/1-em-unpop/adapter_model.safetensors").is_file()
    text = (out / CARD).read_text()
    assert "| truthfulqa | logprob | misalignment | 0.2500 |" in text
    reference, tokenizer = load_state(run["second"])
    moved, _ = load_state(out, base=run["model"])
    assert torch.equal(next_token_logits(moved, tokenizer), next_token_logits(reference, tokenizer))
    merged = export_state(run["second"], tmp_path / "merged", merge=True)
    standard = AutoModelForCausalLM.from_pretrained(merged)
    assert torch.allclose(next_token_logits(standard, tokenizer), next_token_logits(reference, tokenizer), atol=1e-5)
    assert "library_name: transformers" in (merged / CARD).read_text()


def test_a_folder_that_is_no_state_says_so(tmp_path):
    with pytest.raises(StateError, match="neither a model folder"):
        resolve_state(tmp_path)


def test_push_needs_a_token_for_the_hub_only(tmp_path, monkeypatch):
    (tmp_path / CARD).write_text("---\nlibrary_name: peft\n---\n")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(StateError, match="set HF_TOKEN"):
        push_state(tmp_path, "user/state")
    # A token is never sent to an endpoint that is not the hub's own over https.
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example")
    with pytest.raises(StateError, match="no token for http://mirror.example"):
        push_state(tmp_path, "user/state")


def test_an_adapter_trained_before_cards_is_read_from_its_training_record(run, tmp_path):
    """An older run's adapter (no card): its model, chain and seed come from its place in the run's layout,
    the base model's identity from its training record."""
    root = tmp_path / "old"
    shutil.copytree(run["root"] / "results", root / "results")
    for card in (root / "results/adapters").rglob(CARD):
        card.unlink()
    adapter = root / "results/adapters/tiny/em-unpop+sgtr/seed0"
    state = resolve_state(adapter)
    assert state.adapters == [root / "results/adapters/tiny/em-unpop/seed0", adapter]
    assert state.record["base"]["revision"] == model_identity("tiny", BUILT)["revision"]
    out = export_state(adapter, tmp_path / "export")
    assert read_card_record(out)["parents"] == ["em-unpop"] and (out / "parents/1-em-unpop").is_dir()
