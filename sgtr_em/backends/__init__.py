"""Backends: "a model you can ask" — batched chat generation and next-token probabilities."""

from __future__ import annotations

from pathlib import Path

from .base import ChatModel, Conversation, decoding_settings

__all__ = ["ChatModel", "Conversation", "decoding_settings", "load_chat_model", "local_model_dir", "model_kind"]


# ------------------------------------------------------------------------------ model-kind dispatch --
# Scripts get their model here, so they stay the same for every kind of model.


def model_kind(source: dict) -> str:
    """`openai` for a model behind the OpenAI API (`source: {openai: <model id>}`), else `hf` (a local
    directory: hub download, tiny demo build or configured path)."""
    return "openai" if "openai" in source else "hf"


def local_model_dir(model_dir: str | Path | list, who: str) -> str | Path:
    """The directory of a local model: a folder as given, or the hub-cache snapshot a hub model's record
    names (sgtr_em.hub). A job's input list of model files is empty for an API model, which has no local
    files: here it means the model's config and its job's inputs disagree."""
    if isinstance(model_dir, list):
        raise ValueError(f"{who}: a local (hf) model needs its model directory as input, got {model_dir!r}")
    from .. import hub

    return hub.snapshot_dir(model_dir) if hub.is_record(model_dir) else model_dir


def load_chat_model(
    name: str,
    source: dict,
    backend: dict,
    model_dir: str | Path | list,
    adapters: list,
    api_config: dict | None = None,
    threads: int | None = None,
) -> ChatModel:
    """The model state `name` (base model + its chain's stages) as a ChatModel. `threads` fixes torch's
    CPU threads (the job's), so results do not depend on how many CPUs the executor exposes.

    hf: the local base directory with the LoRA adapters merged in; openai: the last stage's `ft:` model id
    (from its `openai_model.json`), or the base model id, behind the API configured by `api_config`.
    """
    if model_kind(source) == "openai":
        from .openai_api import ApiSettings, OpenAIChatModel
        from .openai_state import parent_model_id

        model_id = parent_model_id(source["openai"], list(adapters))
        return OpenAIChatModel(model_id, ApiSettings.from_config(api_config), name=name)
    from .hf import HFChatModel

    if threads:
        import torch

        # CPU float reductions depend on the thread count: a job gets the same numbers locally and on SLURM.
        torch.set_num_threads(threads)
    return HFChatModel.from_settings(local_model_dir(model_dir, name), list(adapters), name, backend)
