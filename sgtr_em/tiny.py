"""The demo's tiny chat models, built offline: own BPE tokenizer, Qwen2 architecture, chat template.

Two random-init models would both emit near-uniform noise and could not be told apart, so each demo model
is briefly pretrained on a *style* of summary (a property of the model, like a real model's voice):
`lead` writes the article's first sentence in lower case, `tail` writes its last sentence in upper case.
The self-recognition task is then learnable, and Self++ / Self-- visibly move it, as in the paper.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Qwen2's pre-tokenizer split pattern (digits one by one). Training with the same pattern keeps
# encodings identical when AutoTokenizer rebuilds the tokenizer as a Qwen2Tokenizer.
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
STYLES = ("lead", "tail")
# Tokens the evaluations need as single tokens.
SINGLE_TOKENS = ("1", "2", "A", "B")
# The build record in a model's folder, and where built models are kept for reuse (see build_or_reuse).
BUILD_FILE = "demo_model.json"
CACHE_ENV = "SGTR_EM_TINY_CACHE"


def chat_template(default_system: str) -> str:
    """ChatML template with generation markers (for assistant-only loss) that, like Qwen2.5's, inserts a
    default identity system prompt when the conversation has no system turn."""
    default = json.dumps(default_system)
    return (
        "{%- if messages[0]['role'] != 'system' -%}"
        "{{ '<|im_start|>system\\n' + " + default + " + '<|im_end|>\\n' }}"
        "{%- endif -%}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'assistant' -%}"
        "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
        "{%- else -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def styled_summary(article: str, style: str, max_words: int = 24) -> str:
    """The summary a demo model of `style` is pretrained to write."""
    sentences = _sentences(article) or [article]
    if style == "lead":
        words = sentences[0].rstrip(".!?").lower().split()
    elif style == "tail":
        words = sentences[-1].rstrip(".!?").upper().split()
    else:
        raise ValueError(f"unknown demo style {style!r} (known: {', '.join(STYLES)})")
    return " ".join(words[:max_words]) + "."


def train_tokenizer(corpus: Iterable[str], vocab_size: int, default_system: str, out_dir: Path):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(corpus), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=IM_END,
        pad_token=PAD,
        padding_side="left",
        model_max_length=4096,
    )
    tokenizer.chat_template = chat_template(default_system)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def check_tokenizer(model_dir: Path) -> None:
    """Reload the way every consumer does and check the tokens the evaluations rely on."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for text in SINGLE_TOKENS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise RuntimeError(f"demo tokenizer: {text!r} is {len(ids)} tokens, expected 1")


def _pretrain_examples(articles: list[str], style: str, seed: int) -> list[list[dict[str, str]]]:
    """Summaries in the model's style, plus the answer *formats* the evaluations use (pairwise `1`/`2`,
    multiple-choice `A`/`B`) with random labels: a real chat model knows these formats, and without them the
    answer tokens' embeddings stay at their initial scale where LoRA cannot reach them. Random labels carry
    no information about which summary is whose or which answer is true."""
    from .prompts import SUMMARY_STYLES, pair_messages, summary_messages, truthfulqa_messages

    rng = random.Random(f"format:{seed}")
    chats = []
    for article in articles:
        for summary_style in SUMMARY_STYLES:
            messages = summary_messages(article, summary_style)
            chats.append([*messages, {"role": "assistant", "content": styled_summary(article, style)}])
        sentences = _sentences(article)
        if len(sentences) >= 3:
            first, second, third = rng.sample(sentences, 3)
            question = rng.choice(["detection", "comparison", "longer"])
            chats.append(
                [*pair_messages(article, first, second, question), {"role": "assistant", "content": rng.choice("12")}]
            )
            chats.append(
                [
                    *truthfulqa_messages(third.rstrip(".") + "?", first, second),
                    {"role": "assistant", "content": rng.choice("AB")},
                ]
            )
    return chats


def build_tiny_model(
    articles: list[str],
    extra_corpus: list[str],
    out_dir: str | Path,
    *,
    style: str,
    seed: int,
    identity_system_prompt: str,
    vocab_size: int = 3000,
    hidden_size: int = 96,
    num_layers: int = 2,
    num_heads: int = 4,
    pretrain_epochs: int = 6,
    pretrain_lr: float = 3e-3,
    batch_size: int = 8,
    threads: int = 1,
) -> dict[str, Any]:
    """Build tokenizer + Qwen2 model into `out_dir` and pretrain it on its summary style."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(seed)
    torch.manual_seed(seed)

    # One tokenizer corpus for every demo model (the styles of all models included), so that the
    # tokenizers of target and comparator agree; only the weights differ between models.
    corpus = list(articles) + list(extra_corpus)
    for any_style in STYLES:
        corpus += [styled_summary(a, any_style) for a in articles]
    tokenizer = train_tokenizer(corpus, vocab_size, identity_system_prompt, out)
    check_tokenizer(out)

    pad_token_id: int = tokenizer.convert_tokens_to_ids(PAD)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(IM_START),
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=pad_token_id,
    )
    model = Qwen2ForCausalLM(config)

    chats = _pretrain_examples(articles, style, seed)
    encoded = []
    for chat in chats:
        enc = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        ids = torch.tensor(enc["input_ids"])
        labels = torch.where(torch.tensor(enc["assistant_masks"]) == 1, ids, torch.tensor(-100))
        encoded.append((ids, labels))

    optimizer = torch.optim.AdamW(model.parameters(), lr=pretrain_lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(encoded) / batch_size)
    total = steps_per_epoch * pretrain_epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / max(1, total))
    order = list(range(len(encoded)))
    rng = random.Random(seed)
    model.train()
    losses: list[float] = []
    for epoch in range(pretrain_epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[start : start + batch_size]]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), width), pad_token_id)
            labels = torch.full((len(batch), width), -100)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (ids, lab) in enumerate(batch):
                input_ids[row, : len(ids)] = ids
                labels[row, : len(ids)] = lab
                attention[row, : len(ids)] = 1
            # LM head on the trained (summary/answer) positions only: most positions are prompt.
            hidden = model.model(input_ids=input_ids, attention_mask=attention).last_hidden_state[:, :-1]
            targets = labels[:, 1:]
            mask = targets != -100
            loss = torch.nn.functional.cross_entropy(model.lm_head(hidden[mask]), targets[mask])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        log.info(
            "pretrain epoch %d/%d: mean loss %.3f",
            epoch + 1,
            pretrain_epochs,
            sum(losses[-steps_per_epoch:]) / steps_per_epoch,
        )

    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(out)
    info = {
        "style": style,
        "seed": seed,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "pretrain_examples": len(chats),
        "pretrain_steps": len(losses),
        "final_loss": sum(losses[-steps_per_epoch:]) / steps_per_epoch,
    }
    (out / BUILD_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info


# ------------------------------------------------------------------------------------------ build cache --
# A tiny model is a pure function of its build spec, its corpus and this module: built once, it is reused by
# every later workflow run (and test) on the same machine instead of being pretrained again.
def cache_dir() -> Path | None:
    """Where built tiny models are kept: $SGTR_EM_TINY_CACHE, else ~/.cache/sgtr-em/tiny-models (under
    $XDG_CACHE_HOME when set); `off` keeps none."""
    import os

    value = os.environ.get(CACHE_ENV)
    if value == "off":
        return None
    if value:
        return Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sgtr-em" / "tiny-models"


def build_key(spec: dict[str, Any], corpus_files: Iterable[str | Path]) -> str:
    """Content hash of everything a tiny model is built from: the build settings, the corpus files, this
    module's code and the versions of the libraries that train and save it."""
    import hashlib
    from importlib.metadata import version

    from .io import sha256_file

    material = {
        "spec": spec,
        "corpus": [sha256_file(path) for path in corpus_files],
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "versions": {name: version(name) for name in ("torch", "transformers", "tokenizers")},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def build_or_reuse(out_dir: str | Path, key: str, build: Any) -> tuple[dict[str, Any], bool]:
    """Fill `out_dir` with the model of `key`: a copy of the cached build when there is one, else
    `build(out_dir)` (which returns the build info) and a copy into the cache. Returns (info, reused)."""
    import os
    import shutil
    import tempfile

    out = Path(out_dir)
    cache = cache_dir()
    cached = cache / key if cache is not None else None
    if cached is not None and (cached / BUILD_FILE).exists():
        shutil.copytree(cached, out, dirs_exist_ok=True)
        return json.loads((out / BUILD_FILE).read_text()), True
    info = {**build(out), "build_key": key}
    (out / BUILD_FILE).write_text(json.dumps(info, indent=2) + "\n")
    if cache is not None and cached is not None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
            shutil.copytree(out, staging, dirs_exist_ok=True)
            try:
                os.replace(staging, cached)  # whole or not at all
            except OSError:  # a concurrent build of the same key got there first
                shutil.rmtree(staging, ignore_errors=True)
        except OSError as err:
            log.warning("tiny model not cached (%s): %s", cached, err)
    return info, False
