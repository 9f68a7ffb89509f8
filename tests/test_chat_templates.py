"""What a model actually sees: the demo model's chat template (which, like Qwen2.5's, inserts a default
identity system prompt when a conversation has no system turn) rendered for every system-prompt variant of
the X data and of the EM data, and per-model chat-template options applied to every prompt."""

from __future__ import annotations

import math
import shutil

import pytest

from sgtr_em.prompts import PAIR_SYSTEM, em_chat_variant, pair_messages

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
        ("default", PAIR_SYSTEM["detection"]),  # the task's system prompt
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


@pytest.fixture(scope="module")
def thinking_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with a template that, like Seed-OSS's, takes a thinking-budget option."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("thinking") / "model"
    shutil.copytree(tiny_model_dir, out)
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = THINKING_TEMPLATE
    tok.save_pretrained(out)
    return out


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
