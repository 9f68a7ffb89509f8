"""Backends: "a model you can ask" — batched chat generation and next-token probabilities."""

from __future__ import annotations

from typing import Protocol

Conversation = list[dict[str, str]]


class ChatModel(Protocol):
    name: str

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
        seed: int,
    ) -> list[str]:
        """One reply per conversation; temperature 0 means greedy. Seeded: same inputs, same replies."""
        ...

    def option_probs(self, conversations: list[Conversation], options: list[str]) -> list[dict[str, float]]:
        """Next-token probability of each single-token option after the assistant prefix."""
        ...


class TopLogprobsModel(ChatModel, Protocol):
    """Optional capability (an LLM judge's probability-weighted scores): the top-k next tokens after the
    assistant prefix with their natural-log probabilities, tokens that read the same merged."""

    def top_logprobs(self, conversations: list[Conversation], k: int) -> list[dict[str, float]]: ...


# ------------------------------------------------------------------------------ model-kind dispatch --
# Scripts get their model and training backend here, so they stay the same for every kind of model.


def model_kind(source: dict) -> str:
    """`openai` for a model behind the OpenAI API (`source: {openai: <model id>}`), else `hf` (a local
    directory: hub download, tiny demo build or configured path)."""
    return "openai" if "openai" in source else "hf"


def load_chat_model(
    name: str,
    source: dict,
    backend: dict,
    model_dir: str | list,
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
        from ..openai_ft import parent_model_id
        from .openai_api import ApiSettings, OpenAIChatModel

        model_id = parent_model_id(source["openai"], list(adapters))
        return OpenAIChatModel(model_id, ApiSettings.from_config(api_config), name=name)
    from .hf import HFChatModel

    if threads:
        import torch

        # CPU float reductions depend on the thread count: a job gets the same numbers locally and on SLURM.
        torch.set_num_threads(threads)
    return HFChatModel.from_settings(model_dir, list(adapters), name, backend)


def train_stage(
    *,
    source: dict,
    model_dir: str | list,
    parents: list,
    train_file: str,
    out_dir: str,
    hp: dict,
    seed: int,
    work_dir: str,
    threads: int,
    model_id: str,
    model: str,
    chain: str,
    api_config: dict | None = None,
) -> dict:
    """Train one stage of a chain: a LoRA adapter (hf) or an OpenAI fine-tuning job (openai) whose
    `openai_model.json` lands in `out_dir`. `work_dir` (outside the output) keeps what must survive a
    failed or killed job: trainer scratch, or the fine-tuning job's state file."""
    if model_kind(source) == "openai":
        from ..openai_ft import FineTuneSettings, fine_tune, job_suffix, parent_model_id
        from .openai_api import ApiSettings

        api_config = api_config or {}
        ft = FineTuneSettings.from_config({**api_config.get("fine_tuning", {}), **hp})
        return fine_tune(
            base_model=parent_model_id(source["openai"], list(parents)),
            train_file=train_file,
            out_dir=out_dir,
            state_dir=work_dir,
            seed=seed,
            suffix=job_suffix(chain, seed),
            settings=ApiSettings.from_config(api_config),
            ft=ft,
            who=f"train_lora {model}/{chain}/seed{seed}",
        )
    from ..train import train_lora

    return train_lora(
        model_dir, parents, train_file, out_dir, hp, seed=seed, work_dir=work_dir, threads=threads, model_id=model_id
    )
