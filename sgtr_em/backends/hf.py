"""Local Hugging Face models: a base checkpoint plus the chain of LoRA adapters that made a model state."""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ..batching import PrefixBatch, bucketed_batches, shared_prefix_batches, shared_prefix_groups
from ..io import sha256_json
from ..memory import GIB, InferenceMemory, ModelShape, inference_budget
from ..runtime import Progress
from .base import Conversation

log = logging.getLogger(__name__)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# Thinking blocks a chat template's generation prompt may leave open (open tag, close tag), and how many
# tokens a model may write inside one before the close tag is appended (config: models.<name>.thinking).
THINKING_TAGS = (("<think>", "</think>"), ("<seed:think>", "</seed:think>"))
THINKING_MAX_NEW_TOKENS = 64
# Generation-config keys that do not change which token is drawn (see HFChatModel.decoding).
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
    "num_beams",
    "repetition_penalty",
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


def device_map(device: str, gpus: int) -> str | dict[str, int] | None:
    """How to place a model: straight onto its one GPU (the weights never pass through host memory), split
    layer-wise by accelerate across every GPU the job sees when it sees several, so a state too large for one
    GPU's memory still loads (see sgtr_em.memory for the plan), or on the CPU (None). On SLURM a job sees the
    GPUs its rule's `gpu` resource asked for; a local run sees what CUDA_VISIBLE_DEVICES lets through."""
    if device != "cuda":
        return None
    # the first visible GPU by index: the Trainer then sees the model on its own device, not split
    return "auto" if gpus > 1 else {"": 0}


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
    if placement == "auto":
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


T = TypeVar("T")


def prompt_seeds(prompts: Sequence[str], seed: int) -> list[int]:
    """Each prompt's own sampling seed, from the run's seed and the prompt itself (the k-th repeat of a prompt
    gets the k-th seed): what a prompt's reply draws does not depend on which batch, device or retry it lands
    in. The API backend seeds repeats the same way (`openai_api.draw_seed`)."""
    seen: Counter[str] = Counter()
    seeds = []
    for prompt in prompts:
        identity = sha256_json(prompt)
        seeds.append(int(sha256_json(["sample", seed, identity, seen[identity]])[:15], 16))
        seen[identity] += 1
    return seeds


def seeded_sampler(seeds: Sequence[int], device: Any):
    """A logits processor that draws each row's token from that row's own random stream (`seeds`): it
    returns log p - log E with E ~ Exp(1) drawn per vocabulary entry, whose argmax is a sample of p (the
    exponential race), so greedy selection after it samples. `rows` are the batch's rows in order (rows that
    leave a shrinking batch are removed from it)."""
    import torch
    from transformers import LogitsProcessor

    class SeededSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
            self.rows = list(range(len(seeds)))

        def __call__(self, input_ids, scores):
            logprobs = torch.log_softmax(scores.float(), dim=-1)
            noise = torch.stack(
                [
                    torch.empty(scores.shape[-1], device=scores.device, dtype=torch.float32).exponential_(
                        generator=self.generators[row]
                    )
                    for row in self.rows
                ]
            )
            return logprobs - noise.log()

    return SeededSampler()


def sampling_warpers(temperature: float, top_p: float, top_k: int) -> list[Any]:
    """The warpers `model.generate` applies when sampling, in its order: temperature, top-k, top-p."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers: list[Any] = []
    if temperature > 0:
        if temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
    return warpers


class GpuMemoryError(RuntimeError):
    """One prompt does not fit the GPU memory left after the weights, even alone."""


class HFChatModel:
    """Generation and scoring through the chat template, in batches planned for the device's memory
    (`sgtr_em.batching`): a prompt's reply and scores do not depend on the batch it lands in."""

    def __init__(
        self,
        base_dir: str | Path,
        adapters: Sequence[str | Path] = (),
        *,
        name: str = "",
        dtype: str = "auto",
        batch_size: int = 16,
        share_prefixes: bool = True,
        chat_template_kwargs: dict[str, Any] | None = None,
        thinking: dict[str, Any] | None = None,
        shrink_batches: bool | None = None,
        memory_budget_gib: float | None = None,
    ) -> None:
        self.name = name or str(base_dir)
        self.model, self.tokenizer = load_model_state(base_dir, adapters, dtype)
        self.device = next(self.model.parameters()).device
        self.batch_size = batch_size
        self.share_prefixes = share_prefixes
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        thinking = thinking or {}
        self.thinking_tags = [tuple(pair) for pair in thinking.get("tags", THINKING_TAGS)]
        self.thinking_max_new_tokens = int(thinking.get("max_new_tokens", THINKING_MAX_NEW_TOKENS))
        # Replies that end leave their generation batch: by default on a CPU only (see generate_from_prompts).
        self.shrink_batches = self.device.type == "cpu" if shrink_batches is None else shrink_batches
        self.memory = self._memory_model()
        self.budget = self._memory_budget(memory_budget_gib)
        if self.budget is not None:
            log.info("%s: %.1f GiB for inference batches", self.name, self.budget / GIB)

    @classmethod
    def from_settings(
        cls, base_dir: str | Path, adapters: Sequence[str | Path], name: str, settings: dict[str, Any]
    ) -> HFChatModel:
        """Build from a model's backend settings in the config (dtype, batch_size, chat_template_kwargs,
        thinking, memory_budget_gib)."""
        return cls(
            base_dir,
            adapters,
            name=name,
            dtype=settings["dtype"],
            batch_size=settings["batch_size"],
            chat_template_kwargs=settings["chat_template_kwargs"],
            thinking=settings.get("thinking"),
            memory_budget_gib=settings.get("memory_budget_gib"),
        )

    # ---------------------------------------------------------------------------------- memory --
    def _gpus(self) -> list[Any]:
        return sorted({p.device for p in self.model.parameters() if p.device.type == "cuda"}, key=lambda d: d.index)

    def _memory_model(self) -> InferenceMemory | None:
        """The memory plan of this model's batches (None for a shape the planner does not know)."""
        try:
            shape = ModelShape.from_config(self.model.config)
            shape.parameters()
        except (ValueError, ZeroDivisionError, TypeError):
            log.warning("%s: no memory plan for this model's shape: batches are limited by batch_size only", self.name)
            return None
        dtype_bytes = next(self.model.parameters()).element_size()
        return InferenceMemory(shape, dtype_bytes, max(len(self._gpus()), 1))

    def _memory_budget(self, override_gib: float | None) -> float | None:
        """Bytes a batch may plan: `memory_budget_gib` when set, else measured on the model's GPUs once the
        weights are in (the least free of them, as layers are spread evenly); None on a CPU (no limit)."""
        if override_gib is not None:
            return override_gib * GIB
        gpus = self._gpus()
        if not gpus:
            return None
        import torch

        free = min(
            torch.cuda.mem_get_info(d)[0] + torch.cuda.memory_reserved(d) - torch.cuda.memory_allocated(d) for d in gpus
        )
        return inference_budget(free)

    def _fits(self, planned: Callable[[InferenceMemory], float]) -> bool:
        return self.budget is None or self.memory is None or planned(self.memory) <= self.budget

    def _split_on_oom(self, what: str, items: list[T], run: Callable[[list[T]], list[Any]]) -> list[Any]:
        """`run(items)`, or, when it runs out of GPU memory, the same on each half, one after the other (logged;
        results are the same: no prompt's numbers depend on its batch)."""
        import torch

        try:
            return run(items)
        except torch.OutOfMemoryError:
            if len(items) <= 1:
                raise GpuMemoryError(
                    f"{self.name}: {what} ran out of GPU memory on a single prompt: give the model's jobs more GPU "
                    "memory (models.<name>.resources.gpu, or a larger gpu_model)"
                ) from None
            torch.cuda.empty_cache()
            log.warning(
                "%s: %s ran out of GPU memory on %d prompts; running them in two halves", self.name, what, len(items)
            )
            cut = len(items) // 2
            return self._split_on_oom(what, items[:cut], run) + self._split_on_oom(what, items[cut:], run)

    # --------------------------------------------------------------------------------- prompts --
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

    def _token_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        if not prompts:
            return []
        return [list(ids) for ids in self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]

    def _encode(self, token_lists: Sequence[Sequence[int]], length: int, padding_side: str) -> dict[str, Any]:
        """A batch padded to `length` (its bucket, whatever the batch's longest): generation pads left,
        next-token scoring right (see _next_token_logits)."""
        import torch

        ids = torch.full((len(token_lists), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, tokens in enumerate(token_lists):
            span = slice(length - len(tokens), length) if padding_side == "left" else slice(0, len(tokens))
            ids[row, span] = torch.tensor(tokens, dtype=torch.long)
            mask[row, span] = 1
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}

    def through_thinking(self, prompts: list[str]) -> list[str]:
        """Prompts that leave a thinking block open, continued greedily until the block closes (at most
        `thinking_max_new_tokens` tokens; the close tag is appended when it has not come), so that what follows
        is the answer. The others are returned as they are."""
        open_blocks = {i: block for i, p in enumerate(prompts) if (block := self.open_thinking_block(p))}
        if not open_blocks:
            return prompts
        out = list(prompts)
        indices = list(open_blocks)
        written = [""] * len(indices)
        if self.thinking_max_new_tokens > 0:
            token_ids = self._token_ids([prompts[i] for i in indices])
            stop_strings = sorted({close for _, close in open_blocks.values()})
            new_tokens = self.thinking_max_new_tokens

            def think(rows: list[int], length: int) -> list[str]:
                enc = self._encode([token_ids[k] for k in rows], length, "left")
                generated = self.model.generate(
                    **enc,
                    generation_config=self._generation_config(new_tokens),
                    stop_strings=stop_strings,
                    tokenizer=self.tokenizer,
                )[:, length:]
                stop_ids = {self.tokenizer.pad_token_id, *self._stop_token_ids()}
                texts = []
                for row in range(len(rows)):
                    ids = generated[row].tolist()
                    end = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
                    texts.append(self.tokenizer.decode(ids[:end], skip_special_tokens=False))
                return texts

            fits = self._generation_fits(new_tokens)
            for length, rows in bucketed_batches([len(t) for t in token_ids], self.batch_size, fits):
                texts = self._split_on_oom("thinking", rows, partial(think, length=length))
                for k, text in zip(rows, texts, strict=True):
                    written[k] = text
        closed = 0
        for k, i in enumerate(indices):
            close = open_blocks[i][1]
            cut = written[k].find(close)
            if cut >= 0:
                closed += 1
                out[i] = prompts[i] + written[k][: cut + len(close)]
            else:
                out[i] = prompts[i] + written[k] + close
        log.info(
            "%s: %d prompts opened a thinking block; %d closed it within %d tokens, the rest were closed for them",
            self.name,
            len(indices),
            closed,
            self.thinking_max_new_tokens,
        )
        return out

    # ------------------------------------------------------------------------------ generation --
    def _stop_token_ids(self) -> list[int]:
        """The tokens that end a reply: the tokenizer's end of sequence, as the authors' inference engine passes
        it to every generate call (utils/open_models/inference_engine.py); else the generation config's."""
        eos = self.tokenizer.eos_token_id
        if eos is None:
            eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        return [int(t) for t in (eos if isinstance(eos, list | tuple) else [eos]) if t is not None]

    def _generation_config(self, max_new_tokens: int):
        """The model's own generation config with what this backend decides set explicitly: greedy selection
        (sampling is `seeded_sampler`'s, after the warpers), no repetition penalty (the authors pass 1.0 to
        every generate call, overriding e.g. Qwen2.5's shipped 1.05), the tokenizer's end of sequence."""
        from transformers import GenerationConfig

        own = getattr(self.model, "generation_config", None)
        config = copy.deepcopy(own) if own is not None else GenerationConfig()
        config.update(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            temperature=None,
            top_p=None,
            top_k=None,
            repetition_penalty=1.0,
            eos_token_id=self._stop_token_ids(),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return config

    def _other_generation_settings(self) -> dict[str, Any]:
        """What of the model's generation config still changes which token is drawn after `_generation_config`
        (a no-repeat n-gram size, banned words, a minimum length...): applied by `model.generate`."""
        diff = self._generation_config(1).to_diff_dict()
        return {k: v for k, v in sorted(diff.items()) if k not in PLAIN_GENERATION_KEYS}

    def decoding(self, *, max_new_tokens: int, temperature: float, top_p: float, top_k: int) -> dict[str, Any]:
        """Every decoding setting a `generate` call with these settings applies, after the model's own
        generation config (evaluation records carry it in their provenance)."""
        return {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p if temperature > 0 else None,
            "top_k": top_k if temperature > 0 else None,
            "repetition_penalty": 1.0,
            "eos_token_id": self._stop_token_ids(),
            "selection": "sampled, seeded per prompt" if temperature > 0 else "greedy",
            **self._other_generation_settings(),
        }

    def _generation_fits(self, new_tokens: int) -> Callable[[int, int], bool]:
        def fits(rows: int, length: int) -> bool:
            return self._fits(lambda memory: memory.generation(rows, length, new_tokens))

        return fits

    def _scoring_fits(self, rows: int, length: int) -> bool:
        return self._fits(lambda memory: memory.scoring(rows, length))

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

        Each prompt samples from its own seeded stream (`prompt_seeds`), so its reply does not depend on the
        batch it lands in. How a batch is decoded depends on the device. On a GPU, `model.generate` runs each
        batch until its longest reply ends: decoding is bound by reading the weights, so the rows that have
        ended cost almost nothing. On a CPU every row costs its compute, and a batch whose replies are mostly
        shorter than its longest would be slower than one prompt at a time, so a reply that ends leaves the
        batch (`_decode_shrinking`), unless the model's generation config asks for more than this decoding does."""
        replies: list[str] = [""] * len(prompts)
        progress = Progress(f"{self.name} generate", len(prompts))
        token_ids = self._token_ids(prompts)
        seeds = prompt_seeds(prompts, seed)
        settings: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
        }
        shrinking = self.shrink_batches and not self._other_generation_settings()

        def run(rows: list[int], length: int) -> list[str]:
            enc = self._encode([token_ids[i] for i in rows], length, "left")
            row_seeds = [seeds[i] for i in rows]
            if shrinking:
                tokens = self._decode_shrinking(enc, row_seeds, **settings)
            else:
                tokens = self._generate_batch(enc, row_seeds, **settings)
            return [self.tokenizer.decode(t, skip_special_tokens=True).strip() for t in tokens]

        for length, idx in bucketed_batches(
            [len(t) for t in token_ids], self.batch_size, self._generation_fits(max_new_tokens)
        ):
            for i, reply in zip(idx, self._split_on_oom("generate", idx, partial(run, length=length)), strict=True):
                replies[i] = reply
            progress.update(len(idx))
        return replies

    def _generate_batch(
        self,
        enc: dict[str, Any],
        seeds: list[int],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
    ) -> list[list[int]]:
        """The new tokens of each row of a left-padded batch through `model.generate`."""
        from transformers import LogitsProcessorList

        processors = LogitsProcessorList(sampling_warpers(temperature, top_p, top_k))
        if temperature > 0:
            processors.append(seeded_sampler(seeds, self.device))
        out = self.model.generate(
            **enc, generation_config=self._generation_config(max_new_tokens), logits_processor=processors
        )
        return out[:, enc["input_ids"].shape[1] :].tolist()

    def _decode_shrinking(
        self,
        enc: dict[str, Any],
        seeds: list[int],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
    ) -> list[list[int]]:
        """The new tokens of each row of a left-padded batch, decoded with the key/value cache as
        `model.generate` does (the same warpers and seeded sampler; greedy at temperature 0), except that a
        row leaves the batch when it has drawn an end-of-sequence token: later steps compute only the rows still
        writing. Greedy replies equal one-prompt-at-a-time `model.generate` (tests/unit/test_models.py)."""
        import torch
        from transformers import LogitsProcessorList

        processors = LogitsProcessorList(sampling_warpers(temperature, top_p, top_k))
        sampler = seeded_sampler(seeds, self.device) if temperature > 0 else None
        if sampler is not None:
            processors.append(sampler)
        input_ids, mask = enc["input_ids"], enc["attention_mask"]
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        decoder = self.model.get_decoder()
        out = decoder(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache, logits = out.past_key_values, self._head_rows(out.last_hidden_state[:, -1, :])
        next_position = positions[:, -1:] + 1
        stop = torch.tensor(self._stop_token_ids(), device=input_ids.device)
        rows = list(range(input_ids.shape[0]))
        written: list[list[int]] = [[] for _ in rows]
        for step in range(max_new_tokens):
            token = processors(input_ids, logits).argmax(dim=-1)
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
                if sampler is not None:
                    sampler.rows = rows
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            out = decoder(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=next_position,
                past_key_values=cache,
                use_cache=True,
            )
            logits, next_position = self._head_rows(out.last_hidden_state[:, -1, :]), next_position + 1
        return written

    # --------------------------------------------------------------------------------- scoring --
    def _head_rows(self, hidden):
        """The LM head's fp32 logits of each row of `hidden` (rows x hidden size), one row at a time: a matrix
        product's rounding can depend on how many rows it has, and a prompt's scores must not depend on its
        batch."""
        import torch

        head = self.model.get_output_embeddings()
        return torch.cat([head(hidden[row : row + 1]) for row in range(hidden.shape[0])]).float()

    def _next_token_logits(self, token_lists: Sequence[Sequence[int]], length: int):
        """Next-token logits (batch x vocab, fp32) after each prompt, right-padded to `length`.

        The batch runs with no attention mask and no key/value cache: under causal attention a real token never
        sees the padding after it, so every prompt's last position is exact, and attention takes the mask-free
        causal path (a padded batch makes SDPA build a batch x L x L mask, slower than the whole forward of a
        small model on CPU). Only the gathered last hidden states go through the LM head (full logits would be
        batch x L x vocab: GBs at a 152k vocabulary)."""
        import torch

        enc = self._encode(token_lists, length, "right")
        last = enc["attention_mask"].sum(dim=1) - 1
        if self._logits_transformed():
            logits = self.model(input_ids=enc["input_ids"], use_cache=False).logits
            return logits[torch.arange(last.shape[0], device=logits.device), last.to(logits.device)].float()
        hidden = self.model.get_decoder()(input_ids=enc["input_ids"], use_cache=False).last_hidden_state
        return self._head_rows(last_positions(hidden, last))

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
        that share most of their tokens (both orderings of one article's pair, an MMLU subject's few-shot
        prompts) are scored on top of one pass over their shared prefix (see `shared_prefix_groups`). A prompt
        that opens a thinking block is scored after the block (`through_thinking`)."""
        return self.option_probs_of_prompts(self.prompts(conversations), options)

    def option_probs_of_prompts(self, prompts: list[str], options: list[str]) -> list[dict[str, float]]:
        """`option_probs` of rendered prompts."""
        import torch

        option_ids = self.option_token_ids(options)
        result: list[dict[str, float]] = [{} for _ in prompts]
        progress = Progress(f"{self.name} score", len(prompts))

        def record(idx: Sequence[int], logits) -> None:
            probs = torch.softmax(logits, dim=-1)[:, option_ids].cpu().tolist()
            for row, i in enumerate(idx):
                result[i] = {opt: float(p) for opt, p in zip(options, probs[row], strict=True)}
            progress.update(len(idx))

        token_ids = self._token_ids(prompts)
        lengths = [len(t) for t in token_ids]
        groups = shared_prefix_groups(token_ids) if self._prefix_sharing_supported() else []
        if any(len(members) > 1 for _, members in groups):

            def fits(n_groups: int, members: int, prefix: int, suffix: int) -> bool:
                return self._fits(lambda memory: memory.shared_prefix(n_groups, members, prefix, suffix))

            for batch in shared_prefix_batches(groups, lengths, self.batch_size, fits):
                record(batch.members, self._shared_prefix_split_on_oom(token_ids, batch))
            return result

        def score(rows: list[int], length: int) -> list[Any]:
            return list(self._next_token_logits([token_ids[i] for i in rows], length))

        for length, idx in bucketed_batches(lengths, self.batch_size, self._scoring_fits):
            record(idx, torch.stack(self._split_on_oom("score", idx, partial(score, length=length))))
        return result

    def _shared_prefix_split_on_oom(self, token_ids: list[list[int]], batch: PrefixBatch):
        """`_shared_prefix_logits` of a batch, or of its halves when it runs out of GPU memory."""
        import torch

        try:
            return self._shared_prefix_logits(token_ids, batch)
        except torch.OutOfMemoryError:
            if len(batch.members) <= 1:
                raise GpuMemoryError(
                    f"{self.name}: scoring ran out of GPU memory on a single prompt: give the model's jobs more GPU "
                    "memory (models.<name>.resources.gpu, or a larger gpu_model)"
                ) from None
            torch.cuda.empty_cache()
            log.warning(
                "%s: scoring ran out of GPU memory on %d prompts; running them in two halves",
                self.name,
                len(batch.members),
            )
            first, second = batch.halves()
            return torch.cat(
                [
                    self._shared_prefix_split_on_oom(token_ids, first),
                    self._shared_prefix_split_on_oom(token_ids, second),
                ]
            )

    def _prefix_sharing_supported(self) -> bool:
        """Whether prefix sharing is on and a prefix's key/value cache can stand in for recomputing it: full
        attention in every layer (a sliding window or a recurrent layer keeps a different state) and no
        output transform beyond the LM head."""
        layer_types = getattr(self.model.config, "layer_types", None) or ["full_attention"]
        return (
            self.share_prefixes and all(t == "full_attention" for t in layer_types) and not self._logits_transformed()
        )

    def _shared_prefix_logits(self, token_ids: list[list[int]], batch: PrefixBatch):
        """Next-token logits (members x vocab, fp32) of a batch's prompts, in member order: each group's
        shared prefix runs once (right-padded to the batch's prefix length, no mask, as in
        `_next_token_logits`), its key/value cache is copied to each member, and the members' own tokens
        (right-padded to the suffix length) run on top of it with a mask that hides the prefix padding and
        positions that continue the real prefix."""
        import torch

        pad = self.tokenizer.pad_token_id
        device = self.device
        groups = batch.groups
        prefix_lengths = torch.tensor([shared for shared, _ in groups], device=device)
        row_group = torch.tensor([g for g, (_, members) in enumerate(groups) for _ in members], device=device)
        suffixes = [token_ids[i][shared:] for shared, members in groups for i in members]
        prefix_length, suffix_length = batch.prefix_length, batch.suffix_length

        decoder = self.model.get_decoder()
        cache = None
        if prefix_length:
            prefix_ids = torch.full((len(groups), prefix_length), pad, dtype=torch.long, device=device)
            for g, (shared, members) in enumerate(groups):
                prefix_ids[g, :shared] = torch.tensor(token_ids[members[0]][:shared], device=device)
            cache = decoder(input_ids=prefix_ids, use_cache=True).past_key_values
            cache.reorder_cache(row_group)  # one copy of its group's prefix per prompt
        suffix_ids = torch.full((len(suffixes), suffix_length), pad, dtype=torch.long, device=device)
        suffix_mask = torch.zeros_like(suffix_ids)
        for row, suffix in enumerate(suffixes):
            suffix_ids[row, : len(suffix)] = torch.tensor(suffix, device=device)
            suffix_mask[row, : len(suffix)] = 1
        prefix_mask = (torch.arange(prefix_length, device=device)[None, :] < prefix_lengths[:, None]).long()[row_group]
        positions = prefix_lengths[row_group][:, None] + torch.arange(suffix_length, device=device)[None, :]
        hidden = decoder(
            input_ids=suffix_ids,
            attention_mask=torch.cat([prefix_mask, suffix_mask], dim=1),
            position_ids=positions,
            past_key_values=cache,
            use_cache=cache is not None,
        ).last_hidden_state
        return self._head_rows(last_positions(hidden, suffix_mask.sum(dim=1) - 1))

    def top_logprobs(self, conversations: list[Conversation], k: int) -> list[dict[str, float]]:
        """The k likeliest next tokens (decoded text -> natural-log probability) after the assistant prefix;
        tokens that decode to the same text are merged (log-sum-exp)."""
        import torch

        prompts = self.prompts(conversations)
        result: list[dict[str, float]] = [{} for _ in prompts]
        progress = Progress(f"{self.name} top logprobs", len(prompts))
        token_ids = self._token_ids(prompts)

        def score(rows: list[int], length: int) -> list[Any]:
            return list(self._next_token_logits([token_ids[i] for i in rows], length))

        for length, idx in bucketed_batches([len(t) for t in token_ids], self.batch_size, self._scoring_fits):
            logits = torch.stack(self._split_on_oom("score", idx, partial(score, length=length)))
            logprobs = torch.log_softmax(logits, dim=-1)
            values, top_ids = torch.topk(logprobs, k=min(k, logprobs.shape[-1]), dim=-1)
            for row, i in enumerate(idx):
                merged: dict[str, float] = {}
                for value, token_id in zip(values[row].tolist(), top_ids[row].tolist(), strict=True):
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


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without underflow."""
    high, low = max(a, b), min(a, b)
    return high + math.log1p(math.exp(low - high))
