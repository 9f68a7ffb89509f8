"""What the authors' own code says about their result files, read as data (parsed with `ast`, never imported
or run): the result files each bar of their plotting scripts is made of, and their model table.

A plotting script (`scripts/eval/plot_*.py` in the release) assigns module-level lists of result paths, one
entry per bar: a path, or a list of paths (a bar over seeds). A list of strings of the same length (e.g.
`labels`) names the bars, and `savefig("…/<name>.png")` names the figure.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..io import InputError

RESULT_SUFFIXES = (".csv", ".json")


@dataclass(frozen=True)
class AuthorsBar:
    label: str
    files: tuple[str, ...]  # paths as listed (relative to the authors' repository root)


@dataclass
class AuthorsFigure:
    """One list of result files in a plotting script: a figure (or, with several lists, one panel of it)."""

    script: str  # the script's path relative to the release root
    variable: str  # the list's name in the script
    figure: str  # the saved figure's file stem, or the script's stem
    bars: list[AuthorsBar] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A file-name-safe id, unique within a release: `<script stem>-<variable>`."""
        return f"{PurePosixPath(self.script).stem}-{self.variable}".replace("_", "-")


def _strings(node: ast.AST) -> list[str] | None:
    """The strings of a list/tuple literal of string constants, else None."""
    if isinstance(node, ast.List | ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    return None


def _is_result_path(text: str) -> bool:
    return text.endswith(RESULT_SUFFIXES) and "/" in text


def _bars_of(node: ast.AST) -> list[list[str]] | None:
    """A list literal whose entries are result paths (a bar each) or lists of result paths (a bar over seeds)."""
    if not isinstance(node, ast.List | ast.Tuple) or not node.elts:
        return None
    bars = []
    for element in node.elts:
        if isinstance(element, ast.Constant) and isinstance(element.value, str):
            files = [element.value]
        else:
            files = _strings(element) or []
        if not files or not all(_is_result_path(f) for f in files):
            return None
        bars.append(files)
    return bars


def _saved_figure(tree: ast.Module) -> str | None:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "savefig"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return PurePosixPath(node.args[0].value).stem
    return None


def read_plot_lists(path: str | Path, script: str) -> list[AuthorsFigure]:
    """Every module-level list of result files in one plotting script, with its bar labels.

    `script` is the script's path relative to the release root (it names the figures). Bars are labelled by
    the module-level list of strings of the same length (the one named `labels` first), else `bar <k>`."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise InputError(f"{path}:{err.lineno}: not parseable Python ({err.msg})") from None
    assignments: list[tuple[str, ast.AST]] = [
        (node.targets[0].id, node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    ]
    label_lists = {name: values for name, node in assignments if (values := _strings(node)) is not None}
    label_lists = {k: v for k, v in label_lists.items() if not any(_is_result_path(s) for s in v)}
    stem = _saved_figure(tree) or PurePosixPath(script).stem
    figures = []
    for name, node in assignments:
        bars = _bars_of(node)
        if bars is None:
            continue
        same_length = sorted((k != "labels", k) for k, v in label_lists.items() if len(v) == len(bars))
        labels = label_lists[same_length[0][1]] if same_length else [f"bar {k + 1}" for k in range(len(bars))]
        figures.append(
            AuthorsFigure(
                script=script,
                variable=name,
                figure=stem,
                bars=[
                    AuthorsBar(" ".join(label.split()), tuple(files)) for label, files in zip(labels, bars, strict=True)
                ],
            )
        )
    return figures


def read_plot_scripts(root: str | Path, patterns: Iterable[str]) -> list[AuthorsFigure]:
    """The file lists of every plotting script matching `patterns` (globs relative to `root`), in path order."""
    root = Path(root)
    scripts = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    return [figure for p in scripts for figure in read_plot_lists(p, p.relative_to(root).as_posix())]


def read_model_table(path: str | Path) -> dict[str, str]:
    """The authors' model spellings and the hub or API ids they load (`MODEL_METADATA` of utils/models.py)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "MODEL_METADATA" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            table: dict[str, str] = {}
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                model_id = _keyword(value, "model_id")
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(model_id, str):
                    table[key.value] = model_id
            return table
    raise InputError(f"{path}: no MODEL_METADATA table")


def _keyword(call: ast.AST, name: str) -> Any:
    if isinstance(call, ast.Call):
        for keyword in call.keywords:
            if keyword.arg == name and isinstance(keyword.value, ast.Constant):
                return keyword.value.value
    return None


# ----------------------------------------------------------- listed paths as released files --


def resolve_listed_paths(figures: Iterable[AuthorsFigure], released: Iterable[str]) -> dict[str, str | None]:
    """Each result path the authors' plotting scripts list -> the released file it is (relative to the release
    root), or None. A listed path that was not released as such is matched by its file name when exactly one
    released file has it (the release keeps the self-recognition files of the scripts' `comparison/` and
    `detection/` folders in one folder)."""
    released = list(released)
    exact = set(released)
    by_name: dict[str, list[str]] = {}
    for path in released:
        by_name.setdefault(PurePosixPath(path).name, []).append(path)
    resolved: dict[str, str | None] = {}
    for figure in figures:
        for bar in figure.bars:
            for listed in bar.files:
                if listed in exact:
                    resolved[listed] = listed
                else:
                    same_name = by_name.get(PurePosixPath(listed).name, [])
                    resolved[listed] = same_name[0] if len(same_name) == 1 else None
    return resolved


def authors_lists_of(figures: Iterable[AuthorsFigure], resolved: Mapping[str, str | None]) -> dict[str, list[str]]:
    """Released file -> where the authors' plotting scripts list it (`<script>: <list>[<bar label>]`, with the
    listed path when it differs)."""
    listed_in: dict[str, list[str]] = {}
    for figure in figures:
        for bar in figure.bars:
            for listed in bar.files:
                file = resolved.get(listed)
                if file is None:
                    continue
                where = f"{figure.script}: {figure.variable}[{bar.label!r}]"
                if listed != file:
                    where += f" as {listed}"
                listed_in.setdefault(file, []).append(where)
    return listed_in


def authors_lists_record(figures: Iterable[AuthorsFigure], resolved: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The parsed lists as JSON-ready records, each listed path with the released file it resolved to."""
    return [
        {
            "name": figure.name,
            "script": figure.script,
            "variable": figure.variable,
            "figure": figure.figure,
            "bars": [
                {"label": bar.label, "files": [{"listed": f, "released": resolved.get(f)} for f in bar.files]}
                for bar in figure.bars
            ],
        }
        for figure in figures
    ]
