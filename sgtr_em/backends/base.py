"""What every backend is: a chat model you can ask for replies and next-token probabilities. The backends
(hf, openai_api) import this, never their package, whose dispatch imports them."""

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


def decoding_settings(model: object, sampling: dict) -> dict:
    """Every decoding setting `model.generate(..., **sampling)` applies, after the model's own defaults (the
    backends' `decoding`); the sampling settings as given for a model that cannot say more."""
    keys = ("max_new_tokens", "temperature", "top_p", "top_k")
    decoding = getattr(model, "decoding", None)
    if decoding is None or not all(k in sampling for k in keys):
        return dict(sampling)
    return decoding(**{k: sampling[k] for k in keys})
