"""Prompt sets through the workflow: the paper config, with the authors' prompt files in their formats
(tests/authors_prompts.py: project-written fixtures with made-up wording) and their released summaries, builds pair
files whose prompts are the authors' texts byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from authors_prompts import (
    ARTICLES,
    COMPARISON_SYSTEM,
    COMPARISON_TEMPLATE,
    DETECTION_SYSTEM,
    DETECTION_TEMPLATE,
    LONGER_TEMPLATE,
    OTHER,
    SELF,
    check_pair_rows,
    write_authors_files,
)

from sgtr_em.io import read_json, read_jsonl


def test_paper_config_with_released_summaries_builds_the_authors_pair_prompts(tmp_path):
    """The paper config, the released-summaries overlay, and an overlay pointing every source at local files
    in the authors' formats: the pair files' prompts are the authors' texts filled with those articles and
    those summaries, byte for byte (an overlay may swap a url for a path)."""
    from conftest import copy_workflow, snakemake

    workdir = copy_workflow(tmp_path / "workflow")
    data = workdir / "fixture-data"
    sources = write_authors_files(data / "authors")
    released = {aid: text for aid, text in SELF.items()}
    for name, content in (("articles.json", ARTICLES), ("qwen.json", released), ("claude.json", OTHER)):
        (data / name).write_text(json.dumps(content))
    local = {
        "prompts": {"paper_files": {name: {"source": source} for name, source in sources.items()}},
        "datasets": {"articles": {"xsum": {"source": {"path": "fixture-data/articles.json"}}}},
        "comparators": {"claude-21": {"summaries": {"xsum": {"source": {"path": "fixture-data/claude.json"}}}}},
        "models": {"qwen2.5-32b": {"summaries": {"xsum": {"source": {"path": "fixture-data/qwen.json"}}}}},
    }
    for spec in local["prompts"]["paper_files"].values():
        spec["source"]["path"] = str(Path(spec["source"]["path"]).relative_to(workdir))
    (workdir / "local.yaml").write_text(yaml.safe_dump(local))
    pairs = {
        ("sgtr", "detection"): (DETECTION_SYSTEM, DETECTION_TEMPLATE),
        ("sgtr", "comparison"): (COMPARISON_SYSTEM, COMPARISON_TEMPLATE),
        ("pick-longer", "detection"): (COMPARISON_SYSTEM, LONGER_TEMPLATE),
    }
    targets = [f"results/pairs/qwen2.5-32b/base/{i}/{f}/default.jsonl" for i, f in pairs]
    configs = ["config/config.yaml", "config/released-summaries.yaml", "local.yaml"]
    result = snakemake(workdir, "--cores", "1", "--configfile", *configs, "--", *targets, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for (intervention, framing), (system, template) in pairs.items():
        rows = read_jsonl(workdir / f"results/pairs/qwen2.5-32b/base/{intervention}/{framing}/default.jsonl")
        check_pair_rows(rows, system, template, ARTICLES, released, OTHER)
    stats = read_json(workdir / "results/pairs/qwen2.5-32b/base/sgtr/detection/default.stats.json")
    assert stats["prompts"]["set"] == "paper"
    assert {name: f["sha256"] for name, f in stats["prompts"]["files"].items()} == {
        name: source["sha256"] for name, source in sources.items()
    }
