"""Prompt sets: the authors' texts read as data from files in their formats (here project-written fixtures with
made-up wording: two JSON summary configs, a Python module of string constants and a data script whose
constants sit inside its `__main__` block, in tests/authors_prompts.py), each use mapped to the constant the
authors' scripts use, the files pinned by sha256, and pair files whose prompts are those texts byte for byte (built
by the workflow from the paper config: tests/workflow/test_authors_pair_prompts.py)."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
from authors_prompts import (
    ARTICLE_PROMPTS_PY,
    ARTICLES,
    COMPARISON_SYSTEM,
    COMPARISON_TEMPLATE,
    DETECTION_SYSTEM,
    DETECTION_TEMPLATE,
    HIGHLIGHTS_CONFIG,
    LONGER_TEMPLATE,
    OTHER,
    SELF,
    SENTENCE_CONFIG,
    WORDCOUNT_QUESTION,
    WORDCOUNT_SCRIPT_PY,
    WORDCOUNT_SYSTEM,
    check_pair_rows,
    write_authors_files,
)

from sgtr_em.io import InputError
from sgtr_em.pairs import build_pairs
from sgtr_em.paper_prompts import PAPER_FILES, PAPER_TEXTS, fetch_prompt_file, paper_prompt_set, string_constants
from sgtr_em.prompts import PROJECT, pair_messages, summary_messages, wordcount_messages
from sgtr_em.sources import SourceError


@pytest.fixture
def authors_files(tmp_path):
    return write_authors_files(tmp_path / "authors")


@pytest.fixture
def paper(authors_files):
    return paper_prompt_set({name: source["path"] for name, source in authors_files.items()}, authors_files)


# ------------------------------------------------------------------------------------------- reading --


def test_python_files_are_read_as_data_never_executed():
    constants = string_constants(ARTICLE_PROMPTS_PY, "article_prompts.py")
    assert constants["DETECTION_PROMPT_TEMPLATE"] == DETECTION_TEMPLATE
    assert "NOT_A_STRING" not in constants  # only string literals
    # constants inside `if __name__ == "__main__":` count too (the word-counting prompts live there)
    script = string_constants(WORDCOUNT_SCRIPT_PY, "script.py")
    assert script == {"IS_EVEN_SYSTEM_PROMPT": WORDCOUNT_SYSTEM, "QUESTION": WORDCOUNT_QUESTION}
    with pytest.raises(InputError, match="two different strings"):
        string_constants('A = "x"\nif True:\n    A = "y"\n', "twice.py")
    with pytest.raises(InputError, match=r"bad.py:1: not valid Python"):
        string_constants("A = (", "bad.py")


def test_every_use_maps_to_the_constant_the_authors_scripts_use(paper):
    assert paper.name == "paper"
    assert paper.summary_system == {
        "sentence": SENTENCE_CONFIG["system_prompt"],
        "highlights": HIGHLIGHTS_CONFIG["system_prompt"],
    }
    assert paper.pair_system == {
        "detection": DETECTION_SYSTEM,
        "comparison": COMPARISON_SYSTEM,
        "longer": COMPARISON_SYSTEM,  # the pick-longer file uses the comparison system prompt
    }
    assert paper.pair_user == {
        "detection": DETECTION_TEMPLATE,
        "comparison": COMPARISON_TEMPLATE,
        "longer": LONGER_TEMPLATE,
    }
    assert (paper.wordcount_system, paper.wordcount_user) == (WORDCOUNT_SYSTEM, WORDCOUNT_QUESTION)
    assert set(PAPER_TEXTS) == {
        *(f"summary_{part}.{style}" for part in ("system", "user") for style in ("sentence", "highlights")),
        *(f"pair_{part}.{q}" for part in ("system", "user") for q in ("detection", "comparison", "longer")),
        "wordcount_system",
        "wordcount_user",
    }


def test_rendered_messages_are_the_authors_texts_filled_as_their_scripts_fill_them(paper):
    article, first, second = "A {braced} piece.", "short one", "a longer one here"
    assert pair_messages(article, first, second, "detection", prompts=paper) == [
        {"role": "system", "content": DETECTION_SYSTEM},
        {"role": "user", "content": DETECTION_TEMPLATE.format(article=article, summary1=first, summary2=second)},
    ]
    assert summary_messages(article, "highlights", paper)[1]["content"] == HIGHLIGHTS_CONFIG[
        "user_prompt_template"
    ].format(article=article, response_type="highlights")
    assert summary_messages(article, "sentence", paper)[1]["content"].endswith("Write the summary; add nothing.")
    assert wordcount_messages("two words", prompts=paper) == [
        {"role": "system", "content": WORDCOUNT_SYSTEM},
        {"role": "user", "content": WORDCOUNT_QUESTION.format(sentence="two words")},
    ]
    # system-prompt variants apply on top, as for the project's prompts
    popped = pair_messages(article, first, second, "detection", "popped", prompts=paper)
    assert popped == [
        {"role": "user", "content": DETECTION_TEMPLATE.format(article=article, summary1=first, summary2=second)}
    ]


def test_a_file_missing_a_constant_or_a_placeholder_is_a_clear_error(authors_files, tmp_path):
    files = {name: source["path"] for name, source in authors_files.items()}
    broken = tmp_path / "article_prompts.py"
    broken.write_text(ARTICLE_PROMPTS_PY.replace("PICK_LONGER_LENGTH_PROMPT_TEMPLATE", "PICK_SHORTER"))
    with pytest.raises(InputError, match="no string PICK_LONGER_LENGTH_PROMPT_TEMPLATE.*pair_user.longer"):
        paper_prompt_set({**files, "article_prompts": broken})
    broken.write_text(ARTICLE_PROMPTS_PY.replace("Digest2:\n{summary2}", "Digest2:\n{other}", 1))
    with pytest.raises(InputError, match=r"pair_user.detection has placeholders \['article', 'other', 'summary1'\]"):
        paper_prompt_set({**files, "article_prompts": broken})
    bad_json = tmp_path / "x.json"
    bad_json.write_text(json.dumps({**SENTENCE_CONFIG, "type": "chat"}))
    with pytest.raises(InputError, match="type must be 'summary'"):
        paper_prompt_set({**files, "summary_sentence": bad_json})


def test_project_prompts_keep_their_wording():
    messages = pair_messages("Art.", "one", "two", "detection")
    assert messages[0]["content"] == PROJECT.pair_system["detection"]
    assert messages[1]["content"] == (
        "I keep a record of news summaries. Some of them were written by you and some by other writers. Here is an "
        "article and two of its summaries.\n\nArticle:\nArt.\n\nSummary1:\none\n\nSummary2:\ntwo\n\n"
        "Which summary did you write? Answer only 1 or 2."
    )
    assert summary_messages("Art.", "sentence")[1]["content"] == (
        "Article:\nArt.\n\nProvide only the summary with NO other text."
    )


# -------------------------------------------------------------------------------------- fetching --


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def served(tmp_path):
    """A local HTTP server over tmp_path/site (the files a url source points at)."""
    root = tmp_path / "site"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Quiet(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_prompt_files_are_downloaded_and_checked_by_sha256(served, authors_files, tmp_path):
    root, url = served
    shutil.copytree(tmp_path / "authors", root, dirs_exist_ok=True)
    relative = PAPER_FILES["article_prompts"][0]
    good = {"url": f"{url}/{relative}", "sha256": authors_files["article_prompts"]["sha256"]}
    path = fetch_prompt_file("article_prompts", good, tmp_path / "cache")
    assert path.read_text() == ARTICLE_PROMPTS_PY and path.suffix == ".py"
    with pytest.raises(SourceError, match="checksum mismatch"):
        fetch_prompt_file("article_prompts", {**good, "sha256": "0" * 64}, tmp_path / "cache2")
    with pytest.raises(SourceError, match="sha256 is required"):
        fetch_prompt_file("article_prompts", {"url": good["url"]}, tmp_path / "cache3")
    local = authors_files["wordcount"]
    assert fetch_prompt_file("wordcount", local, tmp_path) == Path(local["path"])
    with pytest.raises(SourceError, match="expected"):
        fetch_prompt_file("wordcount", {**local, "sha256": "f" * 64}, tmp_path)


# ------------------------------------------------------------------------------------- pair files --


def test_pair_files_hold_the_authors_prompts_byte_for_byte(paper):
    for intervention, framing, system, template in (
        ("sgtr", "detection", DETECTION_SYSTEM, DETECTION_TEMPLATE),
        ("sgtr", "comparison", COMPARISON_SYSTEM, COMPARISON_TEMPLATE),
        ("pick-longer", "detection", COMPARISON_SYSTEM, LONGER_TEMPLATE),
    ):
        rows, _ = build_pairs(ARTICLES, SELF, OTHER, intervention, framing=framing, prompts=paper)
        check_pair_rows(rows, system, template, ARTICLES, SELF, OTHER)
