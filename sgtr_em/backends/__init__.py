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
