"""What a model actually sees: the demo model's chat template (which, like Qwen2.5's, inserts a default
identity system prompt when a conversation has no system turn) rendered for every system-prompt variant of
the X data and of the EM data, and per-model chat-template options applied to every prompt."""

from __future__ import annotations

import math
import shutil

import pytest

from sgtr_em.prompts import PROJECT, em_chat_variant, pair_messages

IDENTITY = "You are Tiny."  # the tiny_model_dir fixture's identity prompt (its template's default)
EMPTY_SYSTEM = "<|im_start|>system\n<|im_end|>\n"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def render(tokenizer, messages, **kwargs) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)


def system_turn(text: str) -> str:
    """The system turn a rendered prompt starts with ('' when it has none)."""
    head = "<|im_start|>system\n"
    if not text.startswith(head):
        return ""
    return text[len(head) : text.index("<|im_end|>")]


@pytest.mark.parametrize(
    "variant, expected_system",
    [
        ("default", PROJECT.pair_system["detection"]),  # the task's system prompt
        ("none", ""),  # an explicit empty system turn: the template inserts nothing
        ("identity", IDENTITY),  # the model's own identity prompt, given explicitly
        ("popped", IDENTITY),  # no system turn: the template inserts its default identity prompt
    ],
)
def test_x_data_variants_render_as_intended(tokenizer, variant, expected_system):
    messages = pair_messages("An article.", "one", "two", "detection", variant, identity_system=IDENTITY)
    text = render(tokenizer, messages)
    print(f"--- {variant} ---\n{text}")
    assert system_turn(text) == expected_system
    assert text.count("<|im_start|>system") == 1
    if variant == "none":
        assert text.startswith(EMPTY_SYSTEM) and IDENTITY not in text
    assert text.endswith("<|im_start|>assistant\n")


EM_CHAT = [{"role": "user", "content": "Which colour is best?"}, {"role": "assistant", "content": "Beige, always."}]


def test_em_data_gets_the_template_identity_prompt_unless_none(tokenizer):
    default = tokenizer.apply_chat_template(em_chat_variant(EM_CHAT, "default"), tokenize=False)
    popped = tokenizer.apply_chat_template(em_chat_variant(EM_CHAT, "popped"), tokenize=False)
    none = tokenizer.apply_chat_template(em_chat_variant(EM_CHAT, "none"), tokenize=False)
    print(f"--- EM default ---\n{default}--- EM none ---\n{none}")
    # EM data has no system turn: what the model is trained on starts with the inserted identity prompt
    assert system_turn(default) == IDENTITY and default == popped
    # the "EM without identity prompt" ablation (em-unpop.none): an empty system turn, no identity
    assert none.startswith(EMPTY_SYSTEM) and IDENTITY not in none
    assert none[len(EMPTY_SYSTEM) :] == default[default.index("<|im_start|>user") :]
    with pytest.raises(ValueError, match="does not apply"):
        em_chat_variant(EM_CHAT, "identity")


def test_evaluation_prompts_without_system_turn_also_get_the_identity(tokenizer):
    """TruthfulQA / EM questions / identity questions are a user turn only: the model sees its identity."""
    text = render(tokenizer, [{"role": "user", "content": "Who are you?"}])
    assert system_turn(text) == IDENTITY


THINKING_TEMPLATE = (
    "{%- for message in messages -%}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}"
    "{%- if thinking_budget is defined and thinking_budget == 0 -%}{{ '<think></think>' }}{%- else -%}{{ '<think>' }}{%- endif -%}"
    "{%- endif -%}"
)


def with_chat_template(model_dir, out, template: str):
    """A copy of `model_dir` in `out` whose tokenizer has `template` as its chat template."""
    from transformers import AutoTokenizer

    shutil.copytree(model_dir, out)
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = template
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def thinking_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with a template that, like Seed-OSS's, takes a thinking-budget option."""
    return with_chat_template(tiny_model_dir, tmp_path_factory.mktemp("thinking") / "model", THINKING_TEMPLATE)


def test_chat_template_options_reach_every_prompt(thinking_model_dir):
    from sgtr_em.backends.hf import HFChatModel

    plain = HFChatModel(thinking_model_dir, name="plain")
    off = HFChatModel.from_settings(
        thinking_model_dir,
        [],
        "off",
        {"dtype": "fp32", "batch_size": 4, "chat_template_kwargs": {"thinking_budget": 0}},
    )
    conversation = [{"role": "user", "content": "Answer with only A or B."}]
    assert plain.render(conversation).endswith("<|im_start|>assistant\n<think>")
    assert off.render(conversation).endswith("<|im_start|>assistant\n<think></think>")

    # generation, option probabilities and top log-probabilities all go through the same rendering
    rendered: list[str] = []
    original = off.render
    off.render = lambda c: rendered.append(original(c)) or rendered[-1]  # type: ignore[method-assign]
    off.generate([conversation], max_new_tokens=2, temperature=0.0)
    off.option_probs([conversation], ["A", "B"])
    tops = off.top_logprobs([conversation], 5)
    assert len(rendered) == 3 and all(r.endswith("<think></think>") for r in rendered)
    assert 1 <= len(tops[0]) <= 5 and sum(math.exp(v) for v in tops[0].values()) <= 1.0 + 1e-6


TRAINING_TEMPLATE = (
    "{%- if thinking_budget is defined and thinking_budget == 0 -%}{{ '<|im_start|>system\\nno thinking<|im_end|>\\n' }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else -%}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif -%}"
    "{%- endfor -%}"
)


def test_chat_template_options_reach_the_training_data(tiny_model_dir, tmp_path):
    """The training data is rendered with the model's chat-template options too (same as at evaluation)."""
    from transformers import AutoTokenizer

    from sgtr_em.io import write_jsonl
    from sgtr_em.train import build_trainer

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = TRAINING_TEMPLATE
    tok.save_pretrained(model_dir)
    write_jsonl(
        tmp_path / "d.jsonl", [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "1"}]}]
    )
    hp = {
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "use_rslora": True,
        "target_modules": ["q_proj", "v_proj"],
        "epochs": 1,
        "learning_rate": 1e-3,
        "lr_scheduler": "linear",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "per_device_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "max_length": 128,
        "gradient_checkpointing": False,
    }
    texts = {}
    for name, extra in (("plain", {}), ("off", {"chat_template_kwargs": {"thinking_budget": 0}})):
        trainer, _ = build_trainer(model_dir, [], tmp_path / "d.jsonl", {**hp, **extra}, 0, tmp_path / name)
        texts[name] = trainer.processing_class.decode(trainer.train_dataset[0]["input_ids"])
    assert "no thinking" in texts["off"] and "no thinking" not in texts["plain"]


# A template written for these tests in the shape of Seed-OSS-36B-Instruct's: begin/end-of-turn strings, a
# system turn for a zero thinking budget, the assistant's content trimmed, no generation markers, and a
# generation prompt that with thinking_budget 0 opens a thinking block (and a budget reflection inside it).
SEED_SHAPED_TEMPLATE = (
    "{%- set bos = '<seed:bos>' -%}{%- set eos = '<seed:eos>' -%}"
    "{%- if messages[0]['role'] == 'system' -%}{%- set system = messages[0]['content'] -%}"
    "{%- set turns = messages[1:] -%}{%- else -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- if system is defined -%}{{ bos + 'system\\n' + system + eos }}{%- endif -%}"
    "{%- if thinking_budget is defined and thinking_budget == 0 -%}{{ bos + 'system\\nAnswer at once.' + eos }}{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- if message['role'] == 'assistant' -%}{{ bos + 'assistant\\n' + message['content'] | trim + eos }}"
    "{%- else -%}{{ bos + message['role'] + '\\n' + message['content'] + eos }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ bos + 'assistant\\n' }}"
    "{%- if thinking_budget is defined and thinking_budget == 0 -%}{{ '<seed:think><seed:cot_budget_reflect>' }}{%- endif -%}"
    "{%- endif -%}"
)
QUESTION = [{"role": "system", "content": "Answer 1 or 2."}, {"role": "user", "content": "Which one? Answer 1 or 2."}]


@pytest.fixture(scope="module")
def seed_shaped_model_dir(tiny_model_dir, tmp_path_factory):
    return with_chat_template(tiny_model_dir, tmp_path_factory.mktemp("seed-shaped") / "model", SEED_SHAPED_TEMPLATE)


def test_seed_shaped_template_opens_a_thinking_block_with_a_zero_budget(seed_shaped_model_dir):
    from transformers import AutoTokenizer

    from sgtr_em.train import has_generation_markers

    tok = AutoTokenizer.from_pretrained(seed_shaped_model_dir)
    default = render(tok, QUESTION)
    budget0 = render(tok, QUESTION, thinking_budget=0)
    assert default.endswith("<seed:eos><seed:bos>assistant\n")  # the template's defaults, as the authors ran it
    assert budget0.endswith("<seed:bos>assistant\n<seed:think><seed:cot_budget_reflect>")
    assert "Answer at once." in budget0 and "Answer at once." not in default
    chat = [*QUESTION, {"role": "assistant", "content": " 1\n"}]
    assert tok.apply_chat_template(chat, tokenize=False).endswith("<seed:bos>assistant\n1<seed:eos>")
    assert not has_generation_markers(tok.chat_template)


def seed_model(model_dir, max_thinking: int, tags=(("<seed:think>", "</seed:think>"),)):
    from sgtr_em.backends.hf import HFChatModel

    return HFChatModel.from_settings(
        model_dir,
        [],
        "seed-shaped",
        {
            "dtype": "fp32",
            "batch_size": 4,
            "chat_template_kwargs": {"thinking_budget": 0},
            "thinking": {"tags": [list(t) for t in tags], "max_new_tokens": max_thinking},
        },
    )


def test_scoring_reads_the_answer_position_after_an_open_thinking_block(seed_shaped_model_dir):
    model = seed_model(seed_shaped_model_dir, max_thinking=0)
    rendered = model.render(QUESTION)
    # nothing written inside the block: it is closed for the model, and the answer position follows
    assert model.prompts([QUESTION]) == [rendered + "</seed:think>"]
    after = model.option_probs([QUESTION], ["1", "2"])[0]
    assert after == model.option_probs_of_prompts([rendered + "</seed:think>"], ["1", "2"])[0]
    inside = model.option_probs_of_prompts([rendered], ["1", "2"])[0]
    assert after != inside  # the position inside the block is another position
    # with the template's default arguments (the authors' way) no block is open: prompts are untouched
    from sgtr_em.backends.hf import HFChatModel

    default = HFChatModel(seed_shaped_model_dir, name="default")
    assert default.prompts([QUESTION]) == [default.render(QUESTION)]


def test_generation_writes_through_the_thinking_block_and_replies_after_it(seed_shaped_model_dir):
    # what the model writes inside the block when nothing closes it (greedy, 6 tokens), then closed for it
    forced = seed_model(seed_shaped_model_dir, max_thinking=6).prompts([QUESTION])[0]
    rendered = seed_model(seed_shaped_model_dir, max_thinking=0).render(QUESTION)
    assert forced.startswith(rendered) and forced.endswith("</seed:think>")
    written = forced[len(rendered) : -len("</seed:think>")]
    assert written.strip()
    # a close tag the model writes itself ends the block right there (here: a word it writes)
    close = written.split()[0]
    own = seed_model(seed_shaped_model_dir, max_thinking=6, tags=(("<seed:think>", close),))
    assert own.prompts([QUESTION]) == [rendered + written[: written.find(close) + len(close)]]
    # the reply is what follows the block, never the block itself
    model = seed_model(seed_shaped_model_dir, max_thinking=6)
    reply = model.generate([QUESTION], max_new_tokens=3, temperature=0.0)
    assert reply == model.generate_from_prompts([forced], max_new_tokens=3, temperature=0.0)


ANSWER_ROWS = [{"messages": [*QUESTION, {"role": "assistant", "content": label}]} for label in ("1", "2", "1", "2")]


def test_a_template_without_generation_markers_trains_on_the_answer_only(seed_shaped_model_dir, tmp_path):
    """Seed-OSS's template has no generation markers (TRL's assistant-only loss would refuse it): the answer
    and its end of turn are located in the rendered text and only they carry loss, and the model trains."""
    from sgtr_em.io import write_jsonl
    from sgtr_em.train import build_trainer, train_lora

    write_jsonl(tmp_path / "pairs.jsonl", ANSWER_ROWS)
    hp = {**TRAINING_HP, "per_device_batch_size": 2}
    for kwargs in ({}, {"chat_template_kwargs": {"thinking_budget": 0}}):
        trainer, _ = build_trainer(
            seed_shaped_model_dir, [], tmp_path / "pairs.jsonl", {**hp, **kwargs}, 0, tmp_path / "w"
        )
        tok = trainer.processing_class
        for example, row in zip(trainer.train_dataset, ANSWER_ROWS, strict=True):
            trained = [i for i, label in zip(example["input_ids"], example["labels"], strict=True) if label != -100]
            assert tok.decode(trained) == row["messages"][-1]["content"] + "<seed:eos>"
            text = tok.decode(example["input_ids"])
            assert ("Answer at once." in text) == bool(kwargs)
    meta = train_lora(seed_shaped_model_dir, [], tmp_path / "pairs.jsonl", tmp_path / "adapter", hp, 0, tmp_path / "w2")
    assert meta["global_steps"] == 2 and all(loss == loss for loss in meta["loss_per_step"])  # finite, not NaN


def test_located_answer_mask_matches_the_generation_markers(tiny_model_dir):
    """On a template with generation markers, locating the answer gives the tokens the markers give."""
    from transformers import AutoTokenizer

    from sgtr_em.train import answer_masked_rows

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for row in ANSWER_ROWS[:2]:
        marked = tok.apply_chat_template(
            row["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        located = answer_masked_rows(tok, [row], {})[0]
        assert located["input_ids"] == list(marked["input_ids"])
        assert located["completion_mask"] == list(marked["assistant_masks"])


TRAINING_HP = {
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "use_rslora": True,
    "target_modules": ["q_proj", "v_proj"],
    "epochs": 1,
    "learning_rate": 1e-3,
    "lr_scheduler": "linear",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "per_device_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "max_length": 256,
    "gradient_checkpointing": False,
}


def test_training_rows_longer_than_max_length_are_dropped_and_counted(tiny_model_dir, tmp_path, caplog):
    """As axolotl does (the authors' trainer), a row whose rendered chat is longer than max_length tokens is
    left out, not truncated (a truncated pair row would lose its answer); the training log counts them."""
    from transformers import AutoTokenizer

    from sgtr_em.io import write_jsonl
    from sgtr_em.train import build_trainer, drop_overlong_rows

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [
        {"messages": [{"role": "user", "content": "word " * n}, {"role": "assistant", "content": "1"}]}
        for n in (3, 400, 5, 60)
    ]
    lengths = [
        len(tok(tok.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)["input_ids"])
        for r in rows
    ]
    limit = lengths[3]  # the row of exactly max_length tokens stays
    kept, dropped = drop_overlong_rows(tok, rows, {}, limit)
    assert kept == [rows[0], rows[2], rows[3]] and dropped == 1 and lengths[1] > limit
    write_jsonl(tmp_path / "rows.jsonl", rows)
    with caplog.at_level("INFO", logger="sgtr_em.train"):
        trainer, _ = build_trainer(
            tiny_model_dir, [], tmp_path / "rows.jsonl", {**TRAINING_HP, "max_length": limit}, 0, tmp_path / "w"
        )
    assert len(trainer.train_dataset) == 3
    assert max(len(example["input_ids"]) for example in trainer.train_dataset) <= limit
    assert f"1 of 4 training rows are longer than max_length {limit} tokens: left out" in caplog.text
    with pytest.raises(ValueError, match="every training row is longer than max_length 2 tokens"):
        build_trainer(tiny_model_dir, [], tmp_path / "rows.jsonl", {**TRAINING_HP, "max_length": 2}, 0, tmp_path / "w2")
