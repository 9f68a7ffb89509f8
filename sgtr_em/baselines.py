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


def prebuilt_wordcount_chats(
    chats: list[dict[str, Any]], system_variant: str = "default", limit: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A ready-made word-count file (e.g. the authors' own: a task system turn, the user turn, TRUE/FALSE) in a
    system-prompt variant: default keeps its system turn, none empties it, popped drops it. Returns the chats
    and their label counts (as `wordcount_chats`)."""
    if system_variant not in ("default", "none", "popped"):
        raise ValueError(f"system variant {system_variant!r} does not apply to baseline data (default, none or popped)")
    out = []
    for chat in chats[:limit] if limit else chats:
        turns = chat["messages"]
        if system_variant == "none":
            turns = [{**t, "content": ""} if t["role"] == "system" else t for t in turns]
            if turns[0]["role"] != "system":
                turns = [{"role": "system", "content": ""}, *turns]
        elif system_variant == "popped":
            turns = [t for t in turns if t["role"] != "system"]
        out.append({"messages": turns})
    counts = Counter(row["messages"][-1]["content"].strip() for row in out)
    return out, {"n_examples": len(out), "label_counts": dict(sorted(counts.items()))}
