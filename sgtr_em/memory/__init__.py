"""Memory plans: what a model state needs on its GPUs to train a LoRA or to run inference, from the
model's config alone (no weights loaded).

Training, per GPU: the frozen base weights, the LoRA parameters with their fp32 gradients and Adam states,
and the activations saved for the backward pass. The activation coefficients are measured, not derived: they
are the bytes autograd keeps per token and decoder layer for a LoRA under bf16 autocast
(`saved_activation_bytes`; `tests/unit/test_memory.py` re-measures small Qwen2 shapes and checks the formula
to 10%). Measured on CPU; not yet checked against a GPU's peak memory. The LM head adds little: TRL scores
label positions in chunks and never holds a full logits tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

GIB = 1024**3
# An 80 GB GPU's memory in bytes (nvidia-smi's 81,559 MiB for an H100 80GB; torch may report a little less).
GPU_80GB_BYTES = 85_520_809_984

# Bytes autograd saves per token and decoder layer for LoRA training under bf16 autocast, as coefficients of
# the hidden size, the MLP width, the query and key/value widths (heads x head_dim) and the LoRA rank per
# adapted projection: a least-squares fit to `saved_activation_bytes` on 14 small Qwen2 shapes with LoRA
# ranks 8 and 64 on all seven projections (largest error 9%, on the smallest shapes, where the rank term
# matters most; it is under 1% of the total at Qwen2.5-32B's widths).
ACTIVATION_BYTES_PER_WIDTH = {"hidden": 16.7, "intermediate": 8.75, "query": 5.8, "key_value": 3.3, "lora_rank": 9.9}
# With activation checkpointing a layer keeps only its input (4 bytes per hidden unit, measured the same
# way) and recomputes the rest in the backward pass, one layer at a time.
CHECKPOINTED_BYTES_PER_HIDDEN = 4.0
# LoRA parameters: fp32 weights, fp32 gradients and two fp32 Adam moments.
LORA_BYTES_PER_PARAMETER = 16
# CUDA context, cuBLAS/attention workspaces and allocator slack, per GPU.
RESERVED_BYTES = 3 * GIB
# Share of a GPU's memory a plan may fill (the caching allocator fragments; other kernels need headroom).
USABLE_FRACTION = 0.92
# Layers do not split evenly across GPUs under accelerate's device map, and the first GPU also holds the
# embeddings; a multi-GPU plan budgets for the busiest GPU.
MULTI_GPU_IMBALANCE = 1.15


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer (Qwen2 / Llama / Seed-OSS style) that its memory depends on."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """From a transformers config object or its dict (config.json)."""

        def get(key: str, default: Any) -> Any:
            return config.get(key, default) if isinstance(config, Mapping) else getattr(config, key, default)

        hidden, heads = int(get("hidden_size", 0)), int(get("num_attention_heads", 0))
        bias = get("attention_bias", None)
        return cls(
            hidden_size=hidden,
            intermediate_size=int(get("intermediate_size", 0)),
            num_hidden_layers=int(get("num_hidden_layers", 0)),
            num_attention_heads=heads,
            num_key_value_heads=int(get("num_key_value_heads", None) or heads),
            head_dim=int(get("head_dim", None) or hidden // heads),
            vocab_size=int(get("vocab_size", 0)),
            tie_word_embeddings=bool(get("tie_word_embeddings", False)),
            # Qwen2 always has q/k/v biases and has no attention_bias key.
            attention_bias=bool(bias) if bias is not None else get("model_type", "") == "qwen2",
        )

    @property
    def query_width(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def key_value_width(self) -> int:
        return self.num_key_value_heads * self.head_dim

    def projections(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer in a decoder layer, by the module names LoRA targets."""
        h, i, q, kv = self.hidden_size, self.intermediate_size, self.query_width, self.key_value_width
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def parameters(self) -> int:
        """Parameter count: embeddings, LM head (unless tied), the layers' projections, biases and norms."""
        per_layer = sum(a * b for a, b in self.projections().values()) + 2 * self.hidden_size
        if self.attention_bias:
            per_layer += self.query_width + 2 * self.key_value_width
        return self.embedding_parameters() + self.num_hidden_layers * per_layer + self.hidden_size

    def embedding_parameters(self) -> int:
        """The input embedding and the LM head (one matrix when tied)."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def decoder_layer_parameters(self) -> int:
        """Parameters of the decoder layers and final norm: what every token's forward multiplies through
        (the embedding is a lookup, and the LM head runs only where logits are needed)."""
        return self.parameters() - self.embedding_parameters()

    def lora_parameters(self, rank: int, target_modules: Iterable[str]) -> int:
        """LoRA parameters of rank `rank` on the named projections of every layer."""
        projections = self.projections()
        unknown = sorted(set(target_modules) - set(projections))
        if unknown:
            raise ValueError(f"unknown LoRA target modules for a memory plan: {', '.join(unknown)}")
        return self.num_hidden_layers * sum(rank * sum(projections[m]) for m in set(target_modules))

    def layer_activation_bytes_per_token(self, lora_r: int, adapted_projections: int) -> float:
        """Bytes one decoder layer saves for the backward pass per token (no checkpointing)."""
        c = ACTIVATION_BYTES_PER_WIDTH
        return (
            c["hidden"] * self.hidden_size
            + c["intermediate"] * self.intermediate_size
            + c["query"] * self.query_width
            + c["key_value"] * self.key_value_width
            + c["lora_rank"] * lora_r * adapted_projections
        )

    def kv_cache_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return 2 * self.num_hidden_layers * self.key_value_width * dtype_bytes


# Qwen2.5's released shapes (config.json of the Instruct models) and Seed-OSS-36B's; the benchmarks build
# random-init models from the Qwen2.5 ones.
SHAPES = {
    "qwen2.5-0.5b": ModelShape(896, 4864, 24, 14, 2, 64, 151936, tie_word_embeddings=True, attention_bias=True),
    "qwen2.5-7b": ModelShape(3584, 18944, 28, 28, 4, 128, 152064, attention_bias=True),
    "qwen2.5-14b": ModelShape(5120, 13824, 48, 40, 8, 128, 152064, attention_bias=True),
    "qwen2.5-32b": ModelShape(5120, 27648, 64, 40, 8, 128, 152064, attention_bias=True),
    "seed-oss-36b": ModelShape(5120, 27648, 64, 80, 8, 128, 155136, attention_bias=True),
}


def shape_named(model_id: str) -> ModelShape | None:
    """The planner's shape of a hub model by its repository name (`Qwen/Qwen2.5-32B-Instruct` and the
    authors' `unsloth/` copy are both qwen2.5-32b), or None."""
    name = model_id.rsplit("/", 1)[-1].lower().removesuffix("-instruct")
    return SHAPES.get(name)


def model_shape(source: dict[str, Any], tiny_models: dict[str, Any] | None = None) -> ModelShape | None:
    """A configured model's shape without loading it: a known hub model's (`SHAPES`), else the config.json the
    hub cache holds for its revision; a local model's config.json; a tiny demo model's from its build settings.
    None for an API model or a shape nobody here knows."""
    import json
    from pathlib import Path

    if "hf" in source:
        known = shape_named(source["hf"])
        if known is not None:
            return known
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source["hf"], "config.json", revision=source.get("revision"))
        except ImportError:
            return None
        return ModelShape.from_config(json.loads(Path(cached).read_text())) if isinstance(cached, str) else None
    if "path" in source:
        config = Path(source["path"]) / "config.json"
        return ModelShape.from_config(json.loads(config.read_text())) if config.is_file() else None
    if "builder" in source:
        tiny = {"vocab_size": 3000, "hidden_size": 96, "num_layers": 2, "num_heads": 4, **(tiny_models or {})}
        heads = tiny["num_heads"]
        return ModelShape(
            hidden_size=tiny["hidden_size"],
            intermediate_size=4 * tiny["hidden_size"],
            num_hidden_layers=tiny["num_layers"],
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            head_dim=tiny["hidden_size"] // heads,
            vocab_size=tiny["vocab_size"],
            tie_word_embeddings=True,
            attention_bias=True,
        )
    return None


# Host memory of a model job besides the weights: the interpreter with torch, CUDA and the model libraries,
# tokenizer and data; and on a GPU, the staging of one safetensors shard while the weights load onto it.
HOST_PROCESS_BYTES = 6 * GIB
HOST_LOAD_STAGING_BYTES = 6 * GIB


def host_memory_bytes(shape: ModelShape, *, gpus: int, lora_parameters: int = 0) -> float:
    """Host memory (RAM) a job needs: on GPUs, the process and the staging of the weights loading straight
    onto them (they never sit whole in host memory), and for a training the LoRA states a checkpoint gathers
    on the host (twice: the states and their saved copy); on a CPU, the fp32 weights besides."""
    training = 2 * lora_parameters * LORA_BYTES_PER_PARAMETER
    if gpus:
        return HOST_PROCESS_BYTES + HOST_LOAD_STAGING_BYTES + training
    return HOST_PROCESS_BYTES + shape.parameters() * 4 + training


@dataclass(frozen=True)
class TrainingPlan:
    """Peak memory per GPU of one LoRA training step, by part, and whether it fits. With checkpointing, one
    layer's full activations are recomputed at a time in the backward pass, on top of every layer's saved
    input."""

    shape: ModelShape
    lora_r: int
    target_modules: tuple[str, ...]
    micro_batch: int
    sequence_length: int
    checkpointing: bool
    gpu_bytes: int
    gpus: int = 1
    dtype_bytes: int = 2

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.sequence_length

    @property
    def weights(self) -> float:
        return self.shape.parameters() * self.dtype_bytes

    @property
    def lora_states(self) -> float:
        return self.shape.lora_parameters(self.lora_r, self.target_modules) * LORA_BYTES_PER_PARAMETER

    @property
    def activations(self) -> float:
        layer = self.shape.layer_activation_bytes_per_token(self.lora_r, len(set(self.target_modules)))
        if self.checkpointing:
            # every layer's input, plus one layer recomputed at a time in the backward pass
            per_token = self.shape.num_hidden_layers * CHECKPOINTED_BYTES_PER_HIDDEN * self.shape.hidden_size + layer
        else:
            per_token = self.shape.num_hidden_layers * layer
        return per_token * self.tokens_per_step

    @property
    def busiest_gpu_share(self) -> float:
        """The share of the model's memory on its busiest GPU."""
        return (MULTI_GPU_IMBALANCE if self.gpus > 1 else 1.0) / self.gpus

    @property
    def per_gpu(self) -> float:
        return (self.weights + self.lora_states + self.activations) * self.busiest_gpu_share + RESERVED_BYTES

    @property
    def fits(self) -> bool:
        return self.per_gpu <= USABLE_FRACTION * self.gpu_bytes

    def largest_micro_batch(self) -> int:
        """The largest micro-batch whose step fits (0: not even one sequence)."""
        fixed = replace(self, micro_batch=0).per_gpu
        per_sequence = replace(self, micro_batch=1).per_gpu - fixed
        return max(0, math.floor((USABLE_FRACTION * self.gpu_bytes - fixed) / per_sequence))

    def gpus_needed(self, max_gpus: int = 8) -> int | None:
        """The fewest GPUs on which this step fits (with checkpointing if needed), or None beyond `max_gpus`."""
        for gpus in range(1, max_gpus + 1):
            if choose_checkpointing(replace(self, gpus=gpus)).fits:
                return gpus
        return None

    def summary(self) -> dict[str, Any]:
        """The plan in GiB per GPU, for logs and benchmark records."""
        share = self.busiest_gpu_share
        return {
            "gpus": self.gpus,
            "gpu_gib": round(self.gpu_bytes / GIB, 1),
            "checkpointing": self.checkpointing,
            "micro_batch": self.micro_batch,
            "sequence_length": self.sequence_length,
            "weights_gib": round(self.weights * share / GIB, 2),
            "lora_states_gib": round(self.lora_states * share / GIB, 2),
            "activations_gib": round(self.activations * share / GIB, 2),
            "reserved_gib": round(RESERVED_BYTES / GIB, 2),
            "per_gpu_gib": round(self.per_gpu / GIB, 1),
            "fits": self.fits,
        }


def training_plan(
    shape: ModelShape,
    *,
    lora_r: int,
    target_modules: Iterable[str],
    micro_batch: int,
    sequence_length: int,
    gpu_bytes: int,
    gpus: int = 1,
    checkpointing: bool = False,
) -> TrainingPlan:
    shape.lora_parameters(lora_r, target_modules)  # unknown target modules fail here, not when the plan is read
    return TrainingPlan(
        shape, lora_r, tuple(target_modules), micro_batch, sequence_length, checkpointing, gpu_bytes, gpus
    )


def choose_checkpointing(plan: TrainingPlan) -> TrainingPlan:
    """Activation checkpointing only when memory needs it: the plan without it if its step fits (it costs
    a recomputed forward: 2 FLOPs per parameter and token on top of LoRA's 4, half as much again), else the
    plan with it."""
    without = replace(plan, checkpointing=False)
    return without if without.fits else replace(plan, checkpointing=True)


# Of the memory a device has free once the weights are loaded, what inference batches may plan to use: the
# caching allocator fragments, and cuBLAS and attention kernels take workspace of their own.
INFERENCE_USABLE_FRACTION = 0.9
INFERENCE_HEADROOM_BYTES = 1 * GIB
# Bytes per logit: the scores are fp32, and softmax, the sampling warpers and the option gather each hold a copy.
LOGIT_BYTES = 4 * 4


@dataclass(frozen=True)
class InferenceMemory:
    """What one inference batch adds to a loaded model's memory (weights excluded), on its busiest GPU: the
    key/value cache it keeps, one decoder layer's transient activations at a time (the MLP's three
    intermediate-width tensors dominate), the attention mask of a padded batch and the fp32 next-token
    logits. A model split over `gpus` GPUs holds its layers' caches on their own GPUs."""

    shape: ModelShape
    dtype_bytes: int = 2
    gpus: int = 1

    def kv_cache(self, tokens: float) -> float:
        share = (MULTI_GPU_IMBALANCE if self.gpus > 1 else 1.0) / self.gpus
        return self.shape.kv_cache_bytes_per_token(self.dtype_bytes) * tokens * share

    def layer_transient(self, tokens: float) -> float:
        s = self.shape
        width = 3 * s.intermediate_size + 4 * s.hidden_size + s.query_width + 2 * s.key_value_width
        return tokens * self.dtype_bytes * width

    def logits(self, rows: int) -> float:
        return rows * self.shape.vocab_size * LOGIT_BYTES

    def mask(self, rows: int, queries: int, keys: int) -> float:
        return rows * queries * keys * self.dtype_bytes

    def scoring(self, rows: int, length: int) -> float:
        """A forward pass without a key/value cache over `rows` right-padded prompts of `length` tokens (no
        attention mask: causal attention keeps each prompt's last position exact)."""
        return self.layer_transient(rows * length) + self.logits(rows)

    def generation(self, rows: int, length: int, new_tokens: int) -> float:
        """Generating `new_tokens` after `rows` left-padded prompts of `length` tokens: the cache of every
        token, the prefill's transients and its padding mask."""
        total = length + new_tokens
        return (
            self.kv_cache(rows * total)
            + self.layer_transient(rows * length)
            + self.mask(rows, length, total)
            + self.logits(rows)
        )

    def shared_prefix(self, groups: int, members: int, prefix: int, suffix: int) -> float:
        """Scoring `members` prompts on top of `groups` shared prefixes: the prefixes' cache, a copy of its
        group's prefix per member, the members' own tokens with their mask over prefix and suffix."""
        return (
            self.kv_cache((groups + members) * prefix + members * suffix)
            + self.layer_transient(max(groups * prefix, members * suffix))
            + self.mask(members, suffix, prefix + suffix)
            + self.logits(members)
        )


def inference_budget(free_bytes: float) -> float:
    """The bytes inference batches may plan on a GPU with `free_bytes` free after the weights."""
    return max(0.0, free_bytes * INFERENCE_USABLE_FRACTION - INFERENCE_HEADROOM_BYTES)


def planned_free_bytes(shape: ModelShape, gpu_bytes: int, gpus: int = 1, dtype_bytes: int = 2) -> float:
    """What the busiest of `gpus` GPUs of `gpu_bytes` has free once the weights are loaded (the audit's stand-in
    for the free memory a job measures after loading)."""
    share = (MULTI_GPU_IMBALANCE if gpus > 1 else 1.0) / gpus
    return gpu_bytes - shape.parameters() * dtype_bytes * share - RESERVED_BYTES


def saved_activation_bytes(run: Callable[[], Any], parameters: Iterable[Any]) -> int:
    """Bytes of the tensors autograd saves for the backward pass while `run()` executes a forward pass,
    each storage counted once and the model's own parameters excluded (how the activation coefficients
    above were measured)."""
    import torch

    weights = {p.untyped_storage().data_ptr() for p in parameters}
    saved: dict[tuple[int, int], int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return sum(saved.values())
