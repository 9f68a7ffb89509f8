"""The authors' prompt texts, read as data from their repository's files (config `prompts.set: paper`;
docs/methodology.md §11 has the mapping with the scripts that use each text).

Their summary prompts are JSON files ({type: summary, system_prompt, user_prompt_template}); their pairwise
and word-counting prompts are string constants of Python files. A Python file is parsed with `ast` and its
string constants are taken by name: it is never imported or executed. Each file is fetched by url (or read
from a local path) and must match its sha256.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .io import InputError, sha256_file
from .prompts import SUMMARY_STYLES, PromptSet
from .sources import SourceError, download

# The authors' files, by our name: their path in the authors' repository and what each holds.
PAPER_FILES = {
    "summary_sentence": ("utils/prompts/default_xsum_summary_config.json", "summary prompts of XSum (one sentence)"),
    "summary_highlights": ("utils/prompts/default_cnn_summary_prompts.json", "summary prompts of CNN (highlights)"),
    "article_prompts": ("utils/prompts/article_prompts.py", "pairwise prompts (detection, comparison, pick-longer)"),
    "wordcount": ("scripts/data/generate_benign_aesthetic_dataset.py", "word-counting prompts"),
}
SUMMARY_FILE = {"sentence": "summary_sentence", "highlights": "summary_highlights"}
# Each use of a prompt -> (file, constant or JSON field): what the authors' scripts use for it.
PAPER_TEXTS: dict[str, tuple[str, str]] = {
    **{f"summary_system.{style}": (SUMMARY_FILE[style], "system_prompt") for style in SUMMARY_STYLES},
    **{f"summary_user.{style}": (SUMMARY_FILE[style], "user_prompt_template") for style in SUMMARY_STYLES},
    "pair_system.detection": ("article_prompts", "DETECTION_SYSTEM_PROMPT"),
    "pair_user.detection": ("article_prompts", "DETECTION_PROMPT_TEMPLATE"),
    "pair_system.comparison": ("article_prompts", "COMPARISON_SYSTEM_PROMPT"),
    "pair_user.comparison": ("article_prompts", "COMPARISON_PROMPT_TEMPLATE"),
    "pair_system.longer": ("article_prompts", "COMPARISON_SYSTEM_PROMPT"),
    "pair_user.longer": ("article_prompts", "PICK_LONGER_LENGTH_PROMPT_TEMPLATE"),
    "wordcount_system": ("wordcount", "IS_EVEN_SYSTEM_PROMPT"),
    "wordcount_user": ("wordcount", "QUESTION"),
}


def string_constants(source: str, where: str) -> dict[str, str]:
    """Names assigned a string literal anywhere in a Python file (module level or inside blocks such as
    `if __name__ == "__main__":`), read from its syntax tree. A name bound to two different strings is
    ambiguous and an error."""
    try:
        tree = ast.parse(source, filename=where)
    except SyntaxError as err:
        raise InputError(f"{where}:{err.lineno}: not valid Python ({err.msg})") from None
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        value = getattr(node, "value", None)
        if not (targets and isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                if target.id in found and found[target.id] != value.value:
                    raise InputError(f"{where}:{target.lineno}: {target.id} is assigned two different strings")
                found[target.id] = value.value
    return found


def summary_config(text: str, where: str) -> dict[str, str]:
    """The authors' summary prompt config: {type: summary, system_prompt, user_prompt_template}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}:{err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict) or data.get("type") != "summary":
        raise InputError(f"{where}: not a summary prompt config (type must be 'summary')")
    for key in ("system_prompt", "user_prompt_template"):
        if not isinstance(data.get(key), str):
            raise InputError(f"{where}: no string {key!r}")
    return {key: data[key] for key in ("system_prompt", "user_prompt_template")}


def fetch_prompt_file(name: str, source: Mapping[str, Any], cache_dir: str | Path) -> Path:
    """The local copy of one prompt file, checked against its sha256 (required: these texts are the
    experiment)."""
    expected = source.get("sha256")
    if not expected:
        raise SourceError(f"prompts.paper_files.{name}: a sha256 is required")
    if "path" in source:
        path = Path(source["path"])
        if not path.exists():
            raise SourceError(f"prompts.paper_files.{name}: no such file {path}")
    elif "url" in source:
        suffix = Path(PAPER_FILES[name][0]).suffix if name in PAPER_FILES else ""
        path = download(source["url"], Path(cache_dir) / f"{expected}{suffix}", expected)
    else:
        raise SourceError(f"prompts.paper_files.{name}: give a url or a path")
    actual = sha256_file(path)
    if actual != expected:
        raise SourceError(f"prompts.paper_files.{name}: {path} has sha256 {actual}, expected {expected}")
    return path


def paper_prompt_set(
    files: Mapping[str, str | Path], sources: Mapping[str, Mapping[str, Any]] | None = None
) -> PromptSet:
    """The authors' prompt set from local copies of their files (`files`: our file name -> path)."""
    missing = [name for name in PAPER_FILES if name not in files]
    if missing:
        raise InputError(f"paper prompts: files missing: {', '.join(missing)}")
    contents: dict[str, dict[str, str]] = {}
    for name, path in files.items():
        text = Path(path).read_text(encoding="utf-8")
        where = f"{PAPER_FILES[name][0]} ({path})" if name in PAPER_FILES else str(path)
        contents[name] = summary_config(text, where) if name in SUMMARY_FILE.values() else string_constants(text, where)
    texts: dict[str, Any] = {"summary_system": {}, "summary_user": {}, "pair_system": {}, "pair_user": {}}
    for use, (name, constant) in PAPER_TEXTS.items():
        if constant not in contents[name]:
            raise InputError(f"paper prompts: {PAPER_FILES[name][0]} has no string {constant} (needed for {use})")
        kind, _, key = use.partition(".")
        if key:
            texts[kind][key] = contents[name][constant]
        else:
            texts[kind] = contents[name][constant]
    recorded = {
        name: {**{k: source[k] for k in ("url", "path", "sha256") if k in source}, "file": PAPER_FILES[name][0]}
        for name, source in (sources or {}).items()
    }
    return PromptSet.from_dict({"set": "paper", "sources": recorded, "texts": texts}, "paper prompts")
