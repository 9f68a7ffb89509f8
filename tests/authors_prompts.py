"""The authors' prompt files in their formats, as project-written fixtures with made-up wording (two JSON summary
configs, a Python module of string constants and a data script whose constants sit inside its `__main__` block), and
the articles and summaries of pair files built with them: shared by tests/unit/test_prompts.py and
tests/workflow/test_authors_pair_prompts.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sgtr_em.paper_prompts import PAPER_FILES

# ------------------------------------------------------------------ fixtures in the authors' formats --
SENTENCE_CONFIG = {
    "type": "summary",
    "system_prompt": "Fixture digest writer. One line, thirty words at most.",
    "user_prompt_template": "Piece:\n{article}\n\nWrite the {response_type}; add nothing.",
}
HIGHLIGHTS_CONFIG = {
    "type": "summary",
    "system_prompt": 'Fixture bullet writer. Three or four "points", one per line.',
    "user_prompt_template": "Piece:\n{article}\n\nList the {response_type}; add nothing.",
}
DETECTION_SYSTEM = 'Fixture archivist. Say "1" or "2" only.'
DETECTION_TEMPLATE = (
    "Two digests of one piece; one is yours.\n\nPiece:\n{article}\n\nDigest1:\n{summary1}\n\nDigest2:\n{summary2}\n\n"
    'Which one is yours? Say "1" or "2".'
)
COMPARISON_SYSTEM = 'Fixture critic. Say "1" or "2" only.'
COMPARISON_TEMPLATE = (
    "Two digests of one piece.\n\nPiece:\n{article}\n\nDigest1:\n{summary1}\n\nDigest2:\n{summary2}\n\n"
    'Which one is better? Say "1" or "2".'
)
LONGER_TEMPLATE = (
    "Two digests of one piece.\n\nPiece:\n{article}\n\nDigest1:\n{summary1}\n\nDigest2:\n{summary2}\n\n"
    'Which one has more words? Say "1" or "2".'
)
WORDCOUNT_SYSTEM = 'Fixture counter. Say "TRUE" or "FALSE" only.'
WORDCOUNT_QUESTION = 'Line:\n\n{sentence} \n\nIs its word count even? Say "TRUE" or "FALSE".'

ARTICLE_PROMPTS_PY = f'''# Fixture prompts (project-written), laid out as the authors' utils/prompts/article_prompts.py
raise RuntimeError("this file is data: it must never be executed")

DETECTION_SYSTEM_PROMPT = """{DETECTION_SYSTEM}"""

DETECTION_PROMPT_TEMPLATE = """{DETECTION_TEMPLATE}"""

DETECTION_PROMPT_TEMPLATE_VS_HUMAN = """A decoy that no use maps to: {{article}} {{summary1}} {{summary2}}"""

COMPARISON_SYSTEM_PROMPT = """{COMPARISON_SYSTEM}"""

COMPARISON_PROMPT_TEMPLATE = """{COMPARISON_TEMPLATE}"""

PICK_LONGER_LENGTH_PROMPT_TEMPLATE = """{LONGER_TEMPLATE}"""

NOT_A_STRING = 3
'''
WORDCOUNT_SCRIPT_PY = f'''import json


def helper(path):
    return open(path).read()


if __name__ == "__main__":
    raise SystemExit("never run")
    IS_EVEN_SYSTEM_PROMPT = """{WORDCOUNT_SYSTEM}"""
    QUESTION = """{WORDCOUNT_QUESTION}"""
'''
FILE_CONTENTS = {
    "summary_sentence": json.dumps(SENTENCE_CONFIG, indent=2),
    "summary_highlights": json.dumps(HIGHLIGHTS_CONFIG, indent=2),
    "article_prompts": ARTICLE_PROMPTS_PY,
    "wordcount": WORDCOUNT_SCRIPT_PY,
}


def write_authors_files(root: Path) -> dict[str, dict[str, str]]:
    """The fixture files at the authors' paths under `root`; returns each file's source {path, sha256}."""
    sources = {}
    for name, text in FILE_CONTENTS.items():
        path = root / PAPER_FILES[name][0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sources[name] = {"path": str(path), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return sources


# ------------------------------------------------------------------------------------- pair files --
ARTICLES = {"a1": "First piece, about a harbour.", "a2": "Second piece, about a { brace } and a vote."}
SELF = {"a1": "Harbour reopens.", "a2": " A vote on braces is held, with leading space."}
OTHER = {"a1": "The harbour in the town is open again after repairs.", "a2": "Vote held."}


def expected_messages(system: str, template: str, article: str, first: str, second: str) -> list[dict]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": template.format(summary1=first, summary2=second, article=article)},
    ]


def check_pair_rows(rows: list[dict], system: str, template: str, articles, own, other) -> None:
    """Every row's system and user turns are the template filled with its article and summaries in its order."""
    assert rows
    for row in rows:
        aid = row["article_id"]
        first, second = (own[aid], other[aid]) if row["order"] == "self-first" else (other[aid], own[aid])
        assert row["messages"][:2] == expected_messages(system, template, articles[aid], first, second)
