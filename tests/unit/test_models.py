"""The demo model builder and the training loss mask."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_LORA_HP as HP

from sgtr_em.io import write_jsonl
from sgtr_em.train import build_trainer


def test_tiny_tokenizer_reloads_with_single_answer_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for text in ("1", "2", "A", "B"):
        assert len(tok.encode(text, add_special_tokens=False)) == 1
    text = "Summary1:\nthe 2024 report, 17 pages."
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_chat_template_inserts_identity_prompt_only_without_system_turn(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    user = [{"role": "user", "content": "hi"}]
    assert "You are Tiny." in tok.apply_chat_template(user, tokenize=False)
    empty = tok.apply_chat_template([{"role": "system", "content": ""}, *user], tokenize=False)
    assert "You are Tiny." not in empty and empty.startswith("<|im_start|>system\n<|im_end|>")
    assert tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True).endswith("<|im_start|>assistant\n")


def test_loss_mask_covers_only_the_answer_tokens(tiny_model_dir, tmp_path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "Which one? Answer 1 or 2."},
                {"role": "assistant", "content": label},
            ]
        }
        for label in ("1", "2", "1", "2")
    ]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    trainer, _ = build_trainer(tiny_model_dir, [], tmp_path / "pairs.jsonl", HP, 0, tmp_path / "work")
    tok = trainer.processing_class
    for example, row in zip(trainer.train_dataset, rows, strict=True):
        trained = [i for i, label in zip(example["input_ids"], example["labels"], strict=True) if label != -100]
        assert tok.decode(trained) == row["messages"][-1]["content"] + "<|im_end|>"


def test_training_writes_a_loadable_peft_adapter(tiny_model_dir, tmp_path):
    from sgtr_em.backends.hf import HFChatModel
    from sgtr_em.train import train_lora

    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "1"}]} for i in range(4)
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    meta = train_lora(
        tiny_model_dir, [], tmp_path / "d.jsonl", tmp_path / "adapter", HP, 0, tmp_path / "work", model_id="tiny"
    )
    assert meta["global_steps"] == 2 and len(meta["loss_per_step"]) == 2
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny" and config["r"] == 4
    model = HFChatModel(tiny_model_dir, [tmp_path / "adapter"])
    probs = model.option_probs([[{"role": "user", "content": "q0"}]], ["1", "2"])[0]
    assert 0 <= probs["1"] <= 1


def test_batched_scoring_matches_one_at_a_time(tiny_model_dir):
    from sgtr_em.backends.hf import HFChatModel

    convs = [[{"role": "user", "content": "x " * n + "Answer 1 or 2."}] for n in (1, 7, 30, 3)]
    batched = HFChatModel(tiny_model_dir, batch_size=4).option_probs(convs, ["1", "2"])
    single = HFChatModel(tiny_model_dir, batch_size=1).option_probs(convs, ["1", "2"])
    for a, b in zip(batched, single, strict=True):
        assert abs(a["1"] - b["1"]) < 1e-4 and abs(a["2"] - b["2"]) < 1e-4


def test_neighbouring_prompts_that_share_most_tokens_are_grouped():
    from sgtr_em.batching import shared_prefix_groups

    article_a, article_b = list(range(100, 140)), list(range(200, 240))
    preamble = [1, 2, 3]
    prompts = [
        preamble + article_a + [7, 8],  # ordering 1 of article a
        preamble + article_a + [8, 7],  # ordering 2: shares the article
        preamble + article_b + [7, 8],  # another article: shares only the preamble
        preamble + article_b + [8, 7],
        [5, 6],
    ]
    assert shared_prefix_groups(prompts) == [(43, [0, 1]), (43, [2, 3]), (1, [4])]
    # identical prompts keep their last token to score
    assert shared_prefix_groups([[1, 2, 3], [1, 2, 3]]) == [(2, [0, 1])]


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_shared_prefix_scoring_matches_one_at_a_time(tiny_model_dir, batch_size):
    """Both orderings of a pair scored from one pass over the article give the per-prompt probabilities."""
    from sgtr_em.backends.hf import HFChatModel
    from sgtr_em.prompts import pair_messages

    convs = []
    for k in range(4):
        article = " ".join(f"w{(k * 7 + i) % 13}" for i in range(40 + 9 * k))
        first, second = "x " * (1 + k), "y y"
        convs += [
            pair_messages(article, first, second, "detection"),
            pair_messages(article, second, first, "detection"),
        ]
    model = HFChatModel(tiny_model_dir, batch_size=batch_size)
    shared = model.option_probs(convs, ["1", "2"])
    single = HFChatModel(tiny_model_dir, batch_size=1, share_prefixes=False)
    for a, b in zip(shared, single.option_probs(convs, ["1", "2"]), strict=True):
        assert a["1"] == pytest.approx(b["1"], abs=1e-5) and a["2"] == pytest.approx(b["2"], abs=1e-5)


def test_seeded_generation_is_reproducible(tiny_model_dir):
    from sgtr_em.backends.hf import HFChatModel

    model = HFChatModel(tiny_model_dir, batch_size=2)
    convs = [[{"role": "user", "content": f"Write about {w}."}] for w in ("rain", "sun", "snow")]
    kw = dict(max_new_tokens=8, temperature=0.7, top_p=0.9, top_k=50)
    assert model.generate(convs, seed=1, **kw) == model.generate(convs, seed=1, **kw)


def random_chat_model(tiny_model_dir, out, stop_token: int | None = None):
    """A random-init Qwen2 model with the tiny model's tokenizer and chat template (greedy replies of random
    weights differ from prompt to prompt), ending replies at `stop_token` (as its end-of-sequence token) when
    given."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    config = Qwen2Config(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        # large weights: peaked next-token distributions, so padding's rounding never flips a greedy choice
        initializer_range=0.5,
    )
    model = Qwen2ForCausalLM(config)
    if stop_token is not None:
        # replies end at the tokenizer's end-of-sequence token (as the authors' generate calls have it)
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(stop_token)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_cpu_batches_drop_finished_replies_and_decode_as_generate_does(tiny_model_dir, tmp_path):
    """On a CPU a reply that ends leaves its batch (short replies no longer wait for the batch's longest):
    greedy replies of such batches are exactly model.generate's one prompt at a time, and sampled replies
    are seeded and keep to max_new_tokens."""
    from collections import Counter

    from sgtr_em.backends.hf import HFChatModel

    convs = [[{"role": "user", "content": f"Write about {w}. " + "x " * n}] for n, w in enumerate("abcdef")]
    greedy = dict(max_new_tokens=12, temperature=0.0, top_p=1.0, top_k=0, seed=0)
    # A stop token that greedy decoding draws in some replies, at different steps.
    probe = HFChatModel(random_chat_model(tiny_model_dir, tmp_path / "probe"), batch_size=1, shrink_batches=False)
    written = [probe.tokenizer.encode(r, add_special_tokens=False) for r in probe.generate(convs, **greedy)]
    counts = Counter(t for ids in written for t in set(ids[1:]))
    stop = next(t for t, n in counts.most_common() if n < len(convs))
    model_dir = random_chat_model(tiny_model_dir, tmp_path / "model", stop_token=stop)

    shrinking = HFChatModel(model_dir, batch_size=8)
    assert shrinking.shrink_batches and not shrinking._other_generation_settings()
    one_at_a_time = HFChatModel(model_dir, batch_size=1, shrink_batches=False)
    replies = shrinking.generate(convs, **greedy)
    assert replies == one_at_a_time.generate(convs, **greedy)
    token_ids = shrinking._token_ids(shrinking.prompts(convs))
    batch = shrinking._encode(token_ids, max(map(len, token_ids)), "left")
    settings = {k: greedy[k] for k in greedy if k != "seed"}
    lengths = [len(ids) for ids in shrinking._decode_shrinking(batch, [0] * len(convs), **settings)]
    assert len(set(lengths)) > 1 and max(lengths) == 12  # some replies left the batch before others ended
    sampled = dict(max_new_tokens=6, temperature=0.9, top_p=0.9, top_k=20)
    assert shrinking.generate(convs, seed=3, **sampled) == shrinking.generate(convs, seed=3, **sampled)


def test_cpu_label_position_scoring_gives_the_same_loss(tiny_model_dir, tmp_path):
    """The CPU speed-up (score only label positions) must not change the loss."""
    import torch
    from trl.trainer import utils as trl_utils

    from sgtr_em.train import score_label_positions_only_on_cpu

    rows = [
        {
            "messages": [
                {"role": "user", "content": f"question {i} " * (i + 1)},
                {"role": "assistant", "content": str(1 + i % 2)},
            ]
        }
        for i in range(4)
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    score_label_positions_only_on_cpu()
    patched = trl_utils._use_triton
    losses = {}
    try:
        for name, hook in (("all_positions", patched.original), ("label_positions", patched)):
            trl_utils._use_triton = hook
            trainer, _ = build_trainer(
                tiny_model_dir, [], tmp_path / "d.jsonl", HP, 0, tmp_path / name, compact_cpu_loss=False
            )
            batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
            with torch.no_grad():
                losses[name] = float(trainer.compute_loss(trainer.model, batch))
    finally:
        trl_utils._use_triton = patched
    assert abs(losses["all_positions"] - losses["label_positions"]) < 1e-5


def test_tiny_model_build_is_reused_only_for_the_same_spec_corpus_and_code(tmp_path, monkeypatch):
    from sgtr_em.tiny import BUILD_FILE, build_key, build_or_reuse

    monkeypatch.setenv("SGTR_EM_TINY_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the council met\n")
    builds = []

    def build(out):
        builds.append(out)
        (out / "weights.bin").write_bytes(b"w" * 10)
        return {"style": "lead"}

    key = build_key({"seed": 1}, [corpus])
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    assert build_or_reuse(first, key, build) == ({"style": "lead", "build_key": key}, False)
    info, reused = build_or_reuse(second, key, build)
    assert reused and len(builds) == 1 and info["build_key"] == key
    assert (second / "weights.bin").read_bytes() == b"w" * 10 and (second / BUILD_FILE).exists()
    # Anything a model is built from changes the key: settings, corpus contents.
    assert build_key({"seed": 2}, [corpus]) != key
    corpus.write_text("the council met again\n")
    assert build_key({"seed": 1}, [corpus]) != key
    # A cache entry without its build record (a copy cut short) is never taken for a build.
    other_key = build_key({"seed": 3}, [corpus])
    (tmp_path / "cache" / other_key).mkdir()
    third = tmp_path / "third"
    third.mkdir()
    assert build_or_reuse(third, other_key, build)[1] is False and len(builds) == 2
    monkeypatch.setenv("SGTR_EM_TINY_CACHE", "off")
    fourth = tmp_path / "fourth"
    fourth.mkdir()
    assert build_or_reuse(fourth, key, build)[1] is False and len(builds) == 3


def _mixed_workload():
    """Prompts of many lengths, both orderings of article pairs (shared prefixes) and repeated prompts."""
    from sgtr_em.prompts import pair_messages

    plain = [[{"role": "user", "content": "word " * (3 + 11 * k) + "Answer 1 or 2."}] for k in range(9)]
    pairs = []
    for k in range(4):
        article = " ".join(f"w{(k * 7 + i) % 13}" for i in range(30 + 9 * k))
        pairs += [pair_messages(article, "x " * (1 + k), "y y", "detection")]
        pairs += [pair_messages(article, "y y", "x " * (1 + k), "detection")]
    return [*plain, plain[0], plain[0]], pairs


def test_scores_and_replies_do_not_depend_on_batch_size(tiny_model_dir):
    """Each prompt is computed at its own bucket's shape and samples from its own seeded stream: batch sizes
    1, 3 and 16 give the same probabilities, bit for bit, and the same replies (repeats of a prompt are
    separate draws)."""
    from sgtr_em.backends.hf import HFChatModel

    plain, pairs = _mixed_workload()
    sampled = dict(max_new_tokens=12, temperature=0.9, top_p=0.9, top_k=40, seed=5)
    outputs = {}
    for batch_size in (1, 3, 16):
        model = HFChatModel(tiny_model_dir, batch_size=batch_size)
        outputs[batch_size] = (
            model.option_probs(plain, ["1", "2"]),
            model.option_probs(pairs, ["1", "2"]),
            model.generate(plain, **sampled),
        )
    assert outputs[1] == outputs[3] == outputs[16]
    replies = outputs[1][2]
    assert replies[-1] != replies[-2] or replies[-2] != replies[0]  # three draws of one prompt, not one reply


def test_a_memory_budget_makes_batches_smaller_not_results_different(tiny_model_dir):
    from sgtr_em.backends.hf import HFChatModel

    plain, pairs = _mixed_workload()
    unlimited = HFChatModel(tiny_model_dir, batch_size=16)
    tight = HFChatModel(tiny_model_dir, batch_size=16, memory_budget_gib=2e-4)  # about 200 KB per batch
    assert tight.memory is not None and tight.budget is not None
    for what, call in (("score", lambda m: m.option_probs(plain + pairs, ["1", "2"])),):
        assert call(unlimited) == call(tight), what
    sampled = dict(max_new_tokens=8, temperature=0.7, top_p=0.9, top_k=50, seed=1)
    assert unlimited.generate(plain, **sampled) == tight.generate(plain, **sampled)


def test_a_batch_that_runs_out_of_gpu_memory_is_split_and_gives_the_same_results(tiny_model_dir, caplog):
    """An out-of-memory error (raised here whenever a forward pass holds more than two prompts) splits the
    batch in halves until it fits; nothing else changes."""
    import torch

    from sgtr_em.backends.hf import HFChatModel

    plain, pairs = _mixed_workload()
    sampled = dict(max_new_tokens=8, temperature=0.7, top_p=0.9, top_k=50, seed=1)
    reference = HFChatModel(tiny_model_dir, batch_size=16, shrink_batches=False)
    expected = (reference.option_probs(plain, ["1", "2"]), reference.option_probs(pairs, ["1", "2"]))
    expected_replies = reference.generate(plain, **sampled)

    failing = HFChatModel(tiny_model_dir, batch_size=16, shrink_batches=False)
    decoder = failing.model.get_decoder()
    forward = decoder.forward

    def small_batches_only(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    decoder.forward = small_batches_only
    with caplog.at_level("WARNING"):
        got = (failing.option_probs(plain, ["1", "2"]), failing.option_probs(pairs, ["1", "2"]))
        got_replies = failing.generate(plain, **sampled)
    assert got == expected and got_replies == expected_replies
    assert "ran out of GPU memory" in caplog.text and "two halves" in caplog.text


def test_the_models_own_repetition_penalty_does_not_apply(tiny_model_dir, tmp_path):
    """Qwen2.5 ships repetition_penalty 1.05 in its generation config; the authors pass 1.0 to every generate
    call, and so does this backend, recording it with the other decoding settings."""
    import shutil

    from transformers import GenerationConfig

    from sgtr_em.backends.hf import HFChatModel

    penalised = tmp_path / "penalised"
    shutil.copytree(tiny_model_dir, penalised)
    config = GenerationConfig.from_pretrained(penalised)
    config.repetition_penalty = 1.05
    config.save_pretrained(penalised)
    convs = [[{"role": "user", "content": f"Say {w} again and again."}] for w in ("rain", "sun", "snow")]
    sampled = dict(max_new_tokens=16, temperature=0.7, top_p=0.9, top_k=50, seed=2)
    plain_model, penalised_model = HFChatModel(tiny_model_dir), HFChatModel(penalised)
    assert penalised_model.model.generation_config.repetition_penalty == 1.05
    assert plain_model.generate(convs, **sampled) == penalised_model.generate(convs, **sampled)
    decoding = penalised_model.decoding(max_new_tokens=16, temperature=0.7, top_p=0.9, top_k=50)
    assert decoding["repetition_penalty"] == 1.0 and decoding["selection"] == "sampled, seeded per prompt"
    assert decoding["eos_token_id"] == [penalised_model.tokenizer.eos_token_id]


def test_scoring_builds_no_key_value_cache(tiny_model_dir):
    from sgtr_em.backends.hf import HFChatModel

    model = HFChatModel(tiny_model_dir, share_prefixes=False)
    decoder = model.model.get_decoder()
    forward, calls = decoder.forward, []

    def recording(*args, **kwargs):
        calls.append(kwargs.get("use_cache"))
        return forward(*args, **kwargs)

    decoder.forward = recording
    model.option_probs([[{"role": "user", "content": "q"}]] * 3, ["1", "2"])
    assert calls == [False]


def _answer_rows(n: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"Item {i}: " + "word " * (3 + (i * 7) % 23) + "Which one?"},
                {"role": "assistant", "content": str(1 + i % 2)},
            ]
        }
        for i in range(n)
    ]


def test_a_smaller_micro_batch_with_more_accumulation_trains_the_same(tiny_model_dir, tmp_path):
    """The memory fallback's promise: micro-batch 1 x 8 accumulation steps takes the same optimizer steps as
    4 x 2 (the loss is normalised by each step's answer tokens), so the loss trajectory matches."""
    from sgtr_em.train import whole_run_loss

    write_jsonl(tmp_path / "d.jsonl", _answer_rows(32))
    hp = {**HP, "per_device_batch_size": 4, "gradient_accumulation_steps": 2, "epochs": 2}
    losses = {}
    for name, cap in (("configured", None), ("fallback", 1)):
        trainer, _ = build_trainer(
            tiny_model_dir, [], tmp_path / "d.jsonl", hp, 0, tmp_path / name, largest_micro_batch=cap
        )
        executed = (trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps)
        assert executed == ((4, 2) if cap is None else (1, 8))
        trainer.train()
        losses[name] = whole_run_loss(trainer.state.log_history)[0]
    assert len(losses["configured"]) == len(losses["fallback"]) == 8
    assert losses["configured"] == pytest.approx(losses["fallback"], rel=1e-4, abs=1e-5)


def test_a_training_that_runs_out_of_memory_retries_at_a_smaller_micro_batch(tiny_model_dir, tmp_path):
    """Out of GPU memory mid-run: the job fails with one line naming what its retry does, and the retry (same
    work dir) runs the next smaller micro-batch from the last checkpoint, recording what it executed."""
    import torch
    from transformers import TrainerCallback

    from sgtr_em.train import MEMORY_FALLBACK, TrainingDoesNotFit, train_lora

    class OutOfMemoryAboveOneRow(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if args.per_device_train_batch_size > 1 and state.global_step >= 2:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return control

    write_jsonl(tmp_path / "d.jsonl", _answer_rows(16))
    hp = {**HP, "per_device_batch_size": 2, "gradient_accumulation_steps": 2}
    args = (tiny_model_dir, [], tmp_path / "d.jsonl", tmp_path / "adapter", hp, 0, tmp_path / "work")
    with pytest.raises(TrainingDoesNotFit, match="out of GPU memory at micro-batch 2: the retry runs micro-batch 1"):
        train_lora(*args, checkpoint_steps=1, callbacks=[OutOfMemoryAboveOneRow()])
    assert (tmp_path / "work" / MEMORY_FALLBACK).is_file() and not (tmp_path / "adapter").exists()
    meta = train_lora(*args, checkpoint_steps=1, callbacks=[OutOfMemoryAboveOneRow()])
    assert meta["executed_batch"] == {"per_device_batch_size": 1, "gradient_accumulation_steps": 4}
    assert meta["hyperparameters"]["per_device_batch_size"] == 2 and meta["resumed_from_step"] == 2
    assert meta["global_steps"] == 4 and not (tmp_path / "work").exists()
