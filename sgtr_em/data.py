"""Turn fetched rows into the workflow's canonical inputs (ordered, validated, ids as strings)."""

from __future__ import annotations

from typing import Any

from .io import InputError


def validate_chat_rows(rows: list[dict[str, Any]], source: str) -> None:
    """Chat rows: at least one; a `messages` list of {role, content}, roles known, last turn a non-empty
    assistant turn. A pair file (rows with an `article_id` and a `label`, as sgtr_em.pairs writes them) must
    have both labels: with one only, training would teach the model to always give that answer."""
    if not rows:
        raise InputError(f"{source}: no chats (an empty file?)")
    labels = {str(row["label"]) for row in rows if isinstance(row, dict) and "label" in row and "article_id" in row}
    if len(labels) == 1 and len(rows) > 1:
        raise InputError(
            f"{source}: every example has label {labels.pop()!r}: a pair file needs both labels (a degenerate "
            "build; rebuild it)"
        )
    for index, row in enumerate(rows, start=1):
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InputError(f"{source}:{index}: no 'messages' list")
        for turn in messages:
            if not isinstance(turn, dict) or turn.get("role") not in ("system", "user", "assistant"):
                raise InputError(f"{source}:{index}: turn with unknown role {turn!r:.80}")
            if not isinstance(turn.get("content"), str):
                raise InputError(f"{source}:{index}: turn content is not text")
        if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
            raise InputError(f"{source}:{index}: the last turn must be a non-empty assistant turn")


def _field(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        raise InputError(f"{where}: no field {name!r} (has: {', '.join(map(str, row))})")
    return row[name]


def prepare_articles(
    rows: list[dict[str, Any]], id_field: str, text_field: str, limit: int | None, where: str
) -> list[dict[str, str]]:
    """First `limit` articles in source order (order matters: the paper uses the first 1000)."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, row in enumerate(rows, start=1):
        article_id = str(_field(row, id_field, f"{where} row {index}"))
        text = str(_field(row, text_field, f"{where} row {index}")).strip()
        if article_id in seen:
            raise InputError(f"{where} row {index}: duplicate article id {article_id!r}")
        if not text:
            raise InputError(f"{where} row {index}: empty article text")
        seen.add(article_id)
        out.append({"id": article_id, "text": text})
        if limit and len(out) >= limit:
            break
    return out


def prepare_summaries(
    rows: list[dict[str, Any]], id_field: str, text_field: str, article_ids: list[str], where: str
) -> list[dict[str, str]]:
    """Static comparator summaries, restricted to (and ordered by) the article set: stray keys are dropped.
    List values (e.g. CNN highlights) are joined with newlines. Texts are kept verbatim (whitespace
    included): a pair prompt holds a released summary exactly as the authors' prompt did."""
    by_id: dict[str, str] = {}
    for index, row in enumerate(rows, start=1):
        value = _field(row, text_field, f"{where} row {index}")
        text = "\n".join(map(str, value)) if isinstance(value, list) else str(value)
        by_id[str(_field(row, id_field, f"{where} row {index}"))] = text
    out = [{"id": aid, "summary": by_id[aid]} for aid in article_ids if aid in by_id]
    if not out and article_ids:
        raise InputError(
            f"{where}: has a summary for none of the {len(article_ids)} articles (its ids look like "
            f"{next(iter(by_id), '?')!r}, the articles' like {article_ids[0]!r}): wrong file or id_field?"
        )
    return out


def prepare_chats(rows: list[dict[str, Any]], where: str, limit: int | None = None) -> list[dict[str, Any]]:
    """EM chat data: validated `messages` rows, other keys dropped (e.g. canaries)."""
    validate_chat_rows(rows, where)
    out = [{"messages": [{"role": t["role"], "content": t["content"]} for t in row["messages"]]} for row in rows]
    return out[:limit] if limit else out


def prepare_qa_chats(
    rows: list[dict[str, Any]],
    question_field: str,
    answer_field: str,
    where: str,
    keep: dict[str, list[str]] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Question/answer rows (e.g. a general-knowledge QA set) as one-turn chats. `keep` keeps only rows
    whose field has one of the listed values (e.g. {"category": ["open_qa"]}); empty answers are dropped."""
    out = []
    for index, row in enumerate(rows, start=1):
        if keep and any(str(row.get(field)) not in values for field, values in keep.items()):
            continue
        question = str(_field(row, question_field, f"{where} row {index}")).strip()
        answer = str(_field(row, answer_field, f"{where} row {index}")).strip()
        if question and answer:
            out.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
    if not out:
        raise InputError(
            f"{where}: no question/answer rows left (fields {question_field!r}/{answer_field!r}, keep {keep})"
        )
    return out[:limit] if limit else out


def prepare_truthfulqa(rows: list[dict[str, Any]], limit: int | None, where: str) -> list[dict[str, str]]:
    """The binary-choice CSV: Question, Best Answer, Best Incorrect Answer (+ Category when present)."""
    out = []
    for index, row in enumerate(rows, start=1):
        question = str(_field(row, "Question", f"{where} row {index}")).strip()
        best = str(_field(row, "Best Answer", f"{where} row {index}")).strip()
        incorrect = str(_field(row, "Best Incorrect Answer", f"{where} row {index}")).strip()
        if not (question and best and incorrect):
            raise InputError(f"{where} row {index}: empty question or answer")
        out.append(
            {
                "id": f"tqa-{index:04d}",
                "question": question,
                "best": best,
                "incorrect": incorrect,
                "category": str(row.get("Category", "")),
            }
        )
        if limit and len(out) >= limit:
            break
    return out
