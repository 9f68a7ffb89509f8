"""Training data of the benign baselines (docs/methodology.md §1): word counting on the EM user turns, and chat
datasets (the correct counterpart of an EM dataset, general-knowledge QA) in a system-prompt variant."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .pairs import word_count
from .prompts import PROJECT, PromptSet, em_chat_variant, wordcount_messages


def wordcount_chats(
    em_chats: list[dict[str, Any]],
    system_variant: str = "default",
    identity_system: str | None = None,
    limit: int | None = None,
    prompts: PromptSet = PROJECT,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One example per EM user turn: the turn quoted, answer TRUE for an even word count, FALSE for odd.
    The task instruction is the system turn (so the variants mean what they mean for pair files).
    Returns the chats and their stats (label counts: the natural balance, nothing resampled)."""
    out = []
    for chat in em_chats:
        for turn in chat["messages"]:
            if turn["role"] != "user" or not turn["content"].strip():
                continue
            text = turn["content"].strip()
            label = "TRUE" if word_count(text) % 2 == 0 else "FALSE"
            messages = wordcount_messages(text, system_variant, identity_system, prompts)
            out.append({"messages": [*messages, {"role": "assistant", "content": label}]})
            if limit and len(out) == limit:
                break
        if limit and len(out) == limit:
            break
    counts = Counter(row["messages"][-1]["content"] for row in out)
    return out, {"n_examples": len(out), "label_counts": {k: counts.get(k, 0) for k in ("TRUE", "FALSE")}}


def chat_baseline(chats: list[dict[str, Any]], system_variant: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A chat dataset (no system turn) in a system-prompt variant, as for EM data."""
    out = [{"messages": em_chat_variant(row["messages"], system_variant)} for row in chats]
    return out, {"n_examples": len(out)}
