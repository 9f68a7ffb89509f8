"""Local Hugging Face models: a base checkpoint plus the chain of LoRA adapters that made a model state."""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..runtime import Progress
from . import Conversation

log = logging.getLogger(__name__)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# Thinking blocks a chat template's generation prompt may leave open (open tag, close tag), and how many
# tokens a model may write inside one before the close tag is appended (config: models.<name>.thinking).
THINKING_TAGS = (("<think>", "</think>"), ("<seed:think>", "</seed:think>"))
THINKING_MAX_NEW_TOKENS = 64
# Generation-config keys that do not change which token is drawn (see HFChatModel._plain_generation_config).
PLAIN_GENERATION_KEYS = {
    "_from_model_config",
    "transformers_version",
    "use_cache",
    "output_attentions",
    "output_hidden_states",
    "output_scores",
    "output_logits",
    "return_dict_in_generate",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "decoder_start_token_id",
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "max_length",
    "max_new_tokens",
}


def pick_device_dtype(dtype: str = "auto"):
    """bf16 on a GPU that supports it, fp32 on CPU (CPU bf16 matmuls are slow and imprecise)."""
    import torch

    if torch.cuda.is_available():
        device = "cuda"
        auto = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        device = "cpu"
        auto = torch.float32
    chosen = {"auto": auto, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    return device, chosen


def check_adapter_dir(path: str | Path) -> None:
    missing = [name for name in ADAPTER_FILES if not (Path(path) / name).exists()]
    if missing:
        raise FileNotFoundError(f"adapter directory {path} is incomplete: missing {', '.join(missing)}")


def device_map(device: str, gpus: int) -> str | None:
    """How to place a model: on one device (None: load, then move), or split layer-wise by accelerate
    across every GPU the job sees when it sees several, so a state too large for one GPU's memory still
    loads (see sgtr_em.memory for the plan). On SLURM a job sees the GPUs its rule's `gpu` resource asked
    for; a local run sees what CUDA_VISIBLE_DEVICES lets through."""
    return "auto" if device == "cuda" and gpus > 1 else None


def load_model_state(
    base_dir: str | Path, adapters: Sequence[str | Path] = (), dtype: str = "auto", device: str | None = None
):
    """Load the base model and merge each adapter of the chain in training order.

    Merging in memory (instead of keeping merged copies on disk) costs seconds and saves a full
    checkpoint per stage: 64 GB for a 32B model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    auto_device, torch_dtype = pick_device_dtype(dtype)
    device = device or auto_device
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    placement = device_map(device, torch.cuda.device_count() if device == "cuda" else 0)
    if placement is None:
        # transformers wraps PreTrainedModel.to with functools.wraps, which mypy does not bind to the instance
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch_dtype).to(device)  # type: ignore[arg-type]
    else:
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch_dtype, device_map=placement)
        log.info(
            "%s split across %d GPUs: %s",
            base_dir,
            torch.cuda.device_count(),
            # set by accelerate when it places the model
            sorted(set(map(str, getattr(model, "hf_device_map", {}).values()))),
        )
    if adapters:
        from peft import PeftModel

        for adapter in adapters:
            check_adapter_dir(adapter)
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.eval()
    torch.set_grad_enabled(False)
    return model, tokenizer


class HFChatModel:
    """Batched, left-padded, length-sorted generation and scoring through the chat template."""

    def __init__(
        self,
        base_dir: str | Path,
        adapters: Sequence[str | Path] = (),
        *,
        name: str = "",
        dtype: str = "auto",
        batch_size: int = 16,
        max_padding: float = 0.1,
        share_prefixes: bool = True,
        chat_template_kwargs: dict[str, Any] | None = None,
        thinking: dict[str, Any] | None = None,
        shrink_batches: bool | None = None,
    ) -> None:
        self.name = name or str(base_dir)
        self.model, self.tokenizer = load_model_state(base_dir, adapters, dtype)
        self.device = next(self.model.parameters()).device
        self.batch_size = batch_size
        self.max_padding = max_padding
        self.share_prefixes = share_prefixes
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        thinking = thinking or {}
        self.thinking_tags = [tuple(pair) for pair in thinking.get("tags", THINKING_TAGS)]
        self.thinking_max_new_tokens = int(thinking.get("max_new_tokens", THINKING_MAX_NEW_TOKENS))
        # Replies that end leave their generation batch: by default on a CPU only (see generate_from_prompts).
        self.shrink_batches = self.device.type == "cpu" if shrink_batches is None else shrink_batches

    @classmethod
    def from_settings(
        cls, base_dir: str | Path, adapters: Sequence[str | Path], name: str, settings: dict[str, Any]
    ) -> HFChatModel:
        """Build from a model's backend settings in the config (dtype, batch_size, chat_template_kwargs,
        thinking)."""
        return cls(
            base_dir,
            adapters,
            name=name,
            dtype=settings["dtype"],
            batch_size=settings["batch_size"],
            chat_template_kwargs=settings["chat_template_kwargs"],
            thinking=settings.get("thinking"),
        )

    def render(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
        )

    def open_thinking_block(self, prompt: str) -> tuple[str, str] | None:
        """The (open, close) tags of a thinking block the rendered prompt leaves open, if any (e.g. Seed-OSS's
        generation prompt with thinking_budget 0 ends inside `<seed:think>`), so the next token is not the answer."""
        for open_tag, close_tag in self.thinking_tags:
            if prompt.rfind(open_tag) > prompt.rfind(close_tag):
                return open_tag, close_tag
        return None

    def prompts(self, conversations: list[Conversation]) -> list[str]:
        """The rendered prompts, each at its answer position: a prompt that leaves a thinking block open is
        continued through it (`through_thinking`)."""
        return self.through_thinking([self.render(c) for c in conversations])

    def through_thinking(self, prompts: list[str]) -> list[str]:
        """Prompts that leave a thinking block open, continued greedily until the block closes (at most
        `thinking_max_new_tokens` tokens; the close tag is appended when it has not come), so that what follows
        is the answer. The others are returned as they are."""
        open_blocks = {i: block for i, p in enumerate(prompts) if (block := self.open_thinking_block(p))}
        if not open_blocks:
            return prompts
        out = list(prompts)
        indices = list(open_blocks)
        closed = 0
        for _, idx, enc in self._batches([prompts[i] for i in indices]):
            written = [""] * len(idx)
            if self.thinking_max_new_tokens > 0:
                generated = self.model.generate(
                    **enc,
                    max_new_tokens=self.thinking_max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    stop_strings=sorted({close for _, close in open_blocks.values()}),
                    tokenizer=self.tokenizer,
                    pad_token_id=self.tokenizer.pad_token_id,
                )[:, enc["input_ids"].shape[1] :]
                stop_ids = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
                for row in range(len(idx)):
                    ids = generated[row].tolist()
                    end = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
                    written[row] = self.tokenizer.decode(ids[:end], skip_special_tokens=False)
            for row, k in enumerate(idx):
                i = indices[k]
                close = open_blocks[i][1]
                cut = written[row].find(close)
                if cut >= 0:
                    closed += 1
                    out[i] = prompts[i] + written[row][: cut + len(close)]
                else:
                    out[i] = prompts[i] + written[row] + close
        log.info(
            "%s: %d prompts opened a thinking block; %d closed it within %d tokens, the rest were closed for them",
            self.name,
            len(indices),
            closed,
            self.thinking_max_new_tokens,
        )
        return out

    def _batches(self, prompts: list[str], padding_side: str = "left", lengths: Sequence[int] | None = None):
        """Yield (batch number, indices, encoded batch) in `length_sorted_batches` order (`lengths`: the
        prompts' token counts, when already known). Generation needs left padding; next-token scoring uses
        right padding (see _next_token_logits)."""
        if lengths is None:
            lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        batches = length_sorted_batches(lengths, [1] * len(prompts), self.batch_size, self.max_padding)
        for batch_no, idx in enumerate(batches):
            enc = self.tokenizer(
                [prompts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                padding_side=padding_side,
                add_special_tokens=False,
            )
            yield batch_no, idx, {k: v.to(self.device) for k, v in enc.items()}

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 100,
        temperature: float = 0.7,
        top_p: float = 0.9,
        top_k: int = 50,
        seed: int = 0,
    ) -> list[str]:
        """One reply per conversation (see ChatModel.generate); after a thinking block the prompt opened, which
        is not part of the reply (`through_thinking`)."""
        return self.generate_from_prompts(
            self.prompts(conversations),
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            seed=seed,
        )

    def generate_from_prompts(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int = 100,
        temperature: float = 0.7,
        top_p: float = 0.9,
        top_k: int = 50,
        seed: int = 0,
    ) -> list[str]:
        """`generate` of rendered prompts: only the new tokens decoded, special tokens skipped, stripped.

        How a batch is decoded depends on the device. On a GPU, `model.generate` runs each batch until its
        longest reply ends: decoding is bound by reading the weights, so the rows that have ended cost
        almost nothing. On a CPU every row costs its compute, and a batch whose replies are mostly shorter
        than its longest would be slower than one prompt at a time, so a reply that ends leaves the batch
        (`_decode_shrinking`), unless the model's generation config asks for more than this decoding does."""
        import torch

        replies: list[str] = [""] * len(prompts)
        progress = Progress(f"{self.name} generate", len(prompts))
        sampling = temperature > 0
        shrinking = self.shrink_batches and self._plain_generation_config()
        for batch_no, idx, enc in self._batches(prompts):
            # Seed per batch: a batch's replies do not depend on what ran before it.
            torch.manual_seed(seed * 1_000_003 + batch_no)
            if shrinking:
                tokens = self._decode_shrinking(
                    enc, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k
                )
                for row, i in enumerate(idx):
                    replies[i] = self.tokenizer.decode(tokens[row], skip_special_tokens=True).strip()
                progress.update(len(idx))
                continue
            kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": sampling}
            if sampling:
                kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            out = self.model.generate(
                **enc,
                **kwargs,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            for row, i in enumerate(idx):
                replies[i] = self.tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
            progress.update(len(idx))
        return replies

    def _plain_generation_config(self) -> bool:
        """Whether the model's generation config sets nothing that changes which token is drawn beyond what
        `generate` passes (temperature, top-p, top-k): no repetition penalty, banned words, minimum length...
        Only then is `_decode_shrinking` the same decoding as `model.generate`."""
        config = getattr(self.model, "generation_config", None)
        if config is None:
            return True
        return not set(config.to_diff_dict()) - PLAIN_GENERATION_KEYS

    def _stop_token_ids(self) -> list[int]:
        """The tokens that end a reply, as `model.generate` has them: the generation config's end-of-sequence
        ids, else the tokenizer's."""
        config = getattr(self.model, "generation_config", None)
        eos = getattr(config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return [int(t) for t in (eos if isinstance(eos, list | tuple) else [eos])]

    def _decode_shrinking(
        self, enc: dict[str, Any], *, max_new_tokens: int, temperature: float, top_p: float, top_k: int
    ) -> list[list[int]]:
        """The new tokens of each row of a left-padded batch, decoded with the key/value cache as
        `model.generate` does (temperature, then top-k, then top-p; greedy at temperature 0), except that a
        row leaves the batch when it has drawn an end-of-sequence token: later steps compute only the rows still
        writing. Greedy replies equal one-prompt-at-a-time `model.generate` (tests/test_models.py)."""
        import torch
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        warpers = LogitsProcessorList()
        if temperature > 0:
            if temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(temperature))
            if top_k:
                warpers.append(TopKLogitsWarper(top_k))
            if top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p))
        input_ids, mask = enc["input_ids"], enc["attention_mask"]
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        # the prompt's last position only through the LM head, as model.generate does
        last_only = (
            {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self.model.forward).parameters else {}
        )
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **last_only)
        cache, logits = out.past_key_values, out.logits[:, -1, :]
        next_position = positions[:, -1:] + 1
        stop = torch.tensor(self._stop_token_ids(), device=input_ids.device)
        rows = list(range(input_ids.shape[0]))
        written: list[list[int]] = [[] for _ in rows]
        for step in range(max_new_tokens):
            if temperature > 0:
                token = torch.multinomial(torch.softmax(warpers(input_ids, logits.float()), dim=-1), 1).squeeze(1)
            else:
                token = logits.argmax(dim=-1)
            # the token that ends a reply is kept, as model.generate keeps it (decoding drops special tokens)
            for row, tok in zip(rows, token.tolist(), strict=True):
                written[row].append(tok)
            ended = torch.isin(token, stop).tolist()
            live = [k for k, end in enumerate(ended) if not end]
            if not live or step + 1 == max_new_tokens:
                break
            if len(live) < len(rows):
                keep = torch.tensor(live, device=input_ids.device)
                cache.reorder_cache(keep)
                mask, next_position, token = mask[keep], next_position[keep], token[keep]
                rows = [rows[k] for k in live]
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            out = self.model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=next_position,
                past_key_values=cache,
                use_cache=True,
            )
            logits, next_position = out.logits[:, -1, :], next_position + 1
        return written

    def _next_token_logits(self, enc: dict[str, Any]):
        """Next-token logits (batch x vocab, fp32) after each prompt of a right-padded batch.

        The batch runs with no attention mask: under causal attention a real token never sees the
        padding after it, so every prompt's last position is exact, and attention takes the mask-free
        causal path (a padded batch makes SDPA build a batch x L x L mask, slower than the whole forward
        of a small model on CPU). Only the gathered last hidden states go through the LM head (full
        logits would be batch x L x vocab: GBs at a 152k vocabulary)."""
        import torch

        last = enc["attention_mask"].sum(dim=1) - 1
        if self._logits_transformed():
            logits = self.model(**enc).logits
            return logits[torch.arange(last.shape[0], device=logits.device), last.to(logits.device)].float()
        hidden = self.model.get_decoder()(input_ids=enc["input_ids"]).last_hidden_state
        return self.model.get_output_embeddings()(last_positions(hidden, last)).float()

    def _logits_transformed(self) -> bool:
        """Whether the model transforms its logits beyond the LM head (e.g. Gemma's softcapping), so that
        only its own forward gives them."""
        config = self.model.config
        return bool(getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None))

    def option_token_ids(self, options: Sequence[str]) -> list[int]:
        ids = []
        for option in options:
            encoded = self.tokenizer.encode(option, add_special_tokens=False)
            if len(encoded) != 1:
                raise ValueError(f"{self.name}: answer option {option!r} is {len(encoded)} tokens, need exactly 1")
            ids.append(encoded[0])
        return ids

    def option_probs(self, conversations: list[Conversation], options: list[str]) -> list[dict[str, float]]:
        """Probabilities of each option as the next token, one forward pass per batch. Neighbouring prompts
        that share most of their tokens (both orderings of one article's pair) are scored from one pass
        over their shared prefix (see `shared_prefix_groups`). A prompt that opens a thinking block is scored
        after the block (`through_thinking`)."""
        return self.option_probs_of_prompts(self.prompts(conversations), options)

    def option_probs_of_prompts(self, prompts: list[str], options: list[str]) -> list[dict[str, float]]:
        """`option_probs` of rendered prompts."""
        import torch

        option_ids = self.option_token_ids(options)
        result: list[dict[str, float]] = [{} for _ in prompts]
        progress = Progress(f"{self.name} score", len(prompts))
        token_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        groups = shared_prefix_groups(token_ids) if self._prefix_sharing_supported() else []
        if any(len(members) > 1 for _, members in groups):
            batches = (
                (
                    [i for g in idx for i in groups[g][1]],
                    self._shared_prefix_logits(token_ids, [groups[g] for g in idx]),
                )
                # each group's prefix is what pads (it runs once per group)
                for idx in length_sorted_batches(
                    [shared for shared, _ in groups], [len(m) for _, m in groups], self.batch_size, self.max_padding
                )
            )
        else:
            lengths = [len(t) for t in token_ids]
            batches = ((idx, self._next_token_logits(enc)) for _, idx, enc in self._batches(prompts, "right", lengths))
        for idx, logits in batches:
            probs = torch.softmax(logits, dim=-1)[:, option_ids].cpu().tolist()
            for row, i in enumerate(idx):
                result[i] = {opt: float(p) for opt, p in zip(options, probs[row], strict=True)}
            progress.update(len(idx))
        return result

    def _prefix_sharing_supported(self) -> bool:
        """Whether prefix sharing is on and a prefix's key/value cache can stand in for recomputing it: full
        attention in every layer (a sliding window or a recurrent layer keeps a different state) and no
        output transform beyond the LM head."""
        layer_types = getattr(self.model.config, "layer_types", None) or ["full_attention"]
        return (
            self.share_prefixes and all(t == "full_attention" for t in layer_types) and not self._logits_transformed()
        )

    def _shared_prefix_logits(self, token_ids: list[list[int]], groups: list[tuple[int, list[int]]]):
        """Next-token logits (prompts x vocab, fp32) of the groups' prompts, in group order: each group's
        shared prefix runs once (right-padded, no mask, as in `_next_token_logits`), its key/value cache is
        copied to each member, and the members' own tokens run on top of it with a mask that hides the
        prefix padding and positions that continue the prefix."""
        import torch

        pad = self.tokenizer.pad_token_id
        device = self.device
        prefix_lengths = torch.tensor([shared for shared, _ in groups], device=device)
        row_group = torch.tensor([g for g, (_, members) in enumerate(groups) for _ in members], device=device)
        suffixes = [token_ids[i][shared:] for shared, members in groups for i in members]
        longest_prefix = int(prefix_lengths.max())
        longest_suffix = max(len(s) for s in suffixes)

        decoder = self.model.get_decoder()
        cache = None
        if longest_prefix:
            prefix_ids = torch.full((len(groups), longest_prefix), pad, dtype=torch.long, device=device)
            for g, (shared, members) in enumerate(groups):
                prefix_ids[g, :shared] = torch.tensor(token_ids[members[0]][:shared], device=device)
            cache = decoder(input_ids=prefix_ids, use_cache=True).past_key_values
            cache.reorder_cache(row_group)  # one copy of its group's prefix per prompt
        suffix_ids = torch.full((len(suffixes), longest_suffix), pad, dtype=torch.long, device=device)
        suffix_mask = torch.zeros_like(suffix_ids)
        for row, suffix in enumerate(suffixes):
            suffix_ids[row, : len(suffix)] = torch.tensor(suffix, device=device)
            suffix_mask[row, : len(suffix)] = 1
        prefix_mask = (torch.arange(longest_prefix, device=device)[None, :] < prefix_lengths[:, None]).long()[row_group]
        positions = prefix_lengths[row_group][:, None] + torch.arange(longest_suffix, device=device)[None, :]
        hidden = decoder(
            input_ids=suffix_ids,
            attention_mask=torch.cat([prefix_mask, suffix_mask], dim=1),
            position_ids=positions,
            past_key_values=cache,
            use_cache=cache is not None,
        ).last_hidden_state
        return self.model.get_output_embeddings()(last_positions(hidden, suffix_mask.sum(dim=1) - 1)).float()

    def top_logprobs(self, conversations: list[Conversation], k: int) -> list[dict[str, float]]:
        """The k likeliest next tokens (decoded text -> natural-log probability) after the assistant prefix;
        tokens that decode to the same text are merged (log-sum-exp)."""
        import torch

        prompts = self.prompts(conversations)
        result: list[dict[str, float]] = [{} for _ in prompts]
        progress = Progress(f"{self.name} top logprobs", len(prompts))
        for _, idx, enc in self._batches(prompts, padding_side="right"):
            logprobs = torch.log_softmax(self._next_token_logits(enc), dim=-1)
            values, token_ids = torch.topk(logprobs, k=min(k, logprobs.shape[-1]), dim=-1)
            for row, i in enumerate(idx):
                merged: dict[str, float] = {}
                for value, token_id in zip(values[row].tolist(), token_ids[row].tolist(), strict=True):
                    text = self.tokenizer.decode([token_id])
                    merged[text] = _log_add(merged[text], value) if text in merged else float(value)
                result[i] = merged
            progress.update(len(idx))
        return result


def last_positions(hidden, last):
    """Each row's hidden state at its index in `last`, gathered on the device the hidden states are on (a
    model split across GPUs ends on another device than its inputs started on)."""
    import torch

    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last.to(hidden.device)]


def length_sorted_batches(
    lengths: Sequence[int], rows: Sequence[int], batch_size: int, max_padding: float
) -> list[list[int]]:
    """Batches of item indices (items: prompts, or groups of prompts sharing a prefix), longest first: at
    most `batch_size` rows per batch (a larger item goes alone), and a batch closed early when padding its
    items to the longest would pass `max_padding` of its tokens. Pads cost compute, and a padded batch
    needs an attention mask, which on CPU is slower than the forward of the prompts one by one."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        batch = batches[-1] if batches else []
        fits = sum(rows[j] for j in batch) + rows[i] <= batch_size
        padded = lengths[batch[0]] * (len(batch) + 1) if batch else 0
        if batch and fits and sum(lengths[j] for j in batch) + lengths[i] >= (1 - max_padding) * padded:
            batch.append(i)
        else:
            batches.append([i])
    return batches


def shared_prefix_groups(token_ids: Sequence[Sequence[int]]) -> list[tuple[int, list[int]]]:
    """Runs of neighbouring prompts that share most of their tokens, as (shared prefix length, indices).

    A prompt joins the run before it when their common prefix is at least half of every member's length
    (the two orderings of an article's pair share the article; two articles share only the preamble, and
    stay apart). Every member keeps at least its last token outside the prefix, so a singleton's prefix is
    all but its last token."""
    groups: list[tuple[int, list[int]]] = []
    for i, tokens in enumerate(token_ids):
        if groups:
            shared, members = groups[-1]
            limit = min(shared, len(tokens) - 1)
            common = len(os.path.commonprefix([list(token_ids[members[0]][:limit]), list(tokens[:limit])]))
            if 2 * common >= max(len(tokens), *(len(token_ids[m]) for m in members)):
                groups[-1] = (common, [*members, i])
                continue
        groups.append((max(len(tokens) - 1, 0), [i]))
    return groups


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without underflow."""
    high, low = max(a, b), min(a, b)
    return high + math.log1p(math.exp(low - high))
