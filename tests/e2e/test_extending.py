"""docs/extending.md's recipe for a new evaluation, followed to the letter: a toy evaluation added by writing
exactly the files it lists (in a copy of the workflow and of the package) plans and runs through the
workflow, its table, summary and figure included."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from conftest import REPO, copy_workflow, snakemake

KEY, FIGURE = "toy", "fig8_toy"

MODULE = '''"""A toy evaluation: how many words a state's greedy answer to each question has."""

from typing import Any

from sgtr_em.identity import parse_identity_questions


def prepare(rows, where, spec):
    return parse_identity_questions(rows, where)


def run(model, state, step, settings, data) -> dict[str, Any]:
    questions = data.questions("toy")
    replies = model.generate(
        [[{"role": "user", "content": q["paraphrases"][0]}] for q in questions], seed=state.seed, **settings["sampling"]
    )
    words = [len(reply.split()) for reply in replies]
    return {
        "eval": "toy",
        "model_state": state.record(),
        "metrics": {"greedy": {"words": sum(words) / len(words), "n": len(words)}},
        "records": [{"id": q["id"], "reply": r, "words": w} for q, r, w in zip(questions, replies, words, strict=True)],
        "provenance": state.provenance(settings, seeds={"sampling": state.seed}, protocols=["greedy"]),
    }


def items(record, protocol, metric):
    return float(record["words"]) if metric == "words" else None
'''

ENTRY = """        Evaluation(
            key="toy",
            run="sgtr_em.toy:run",
            items="sgtr_em.toy:items",
            dataset="toy",
            prepare="sgtr_em.toy:prepare",
            optional=True,
            metric="words",
            column="Toy answer length [words]",
            reading="Toy: words per greedy answer.",
            figure="fig8_toy",
            figure_title="Fig 8: toy answer length",
            plot_title="Fig 8. Toy: answer length per condition",
            axis="Words per answer",
            bounded=False,
        ),
"""


def recipe_files() -> list[str]:
    """The files docs/extending.md's new-evaluation recipe lists, for this toy."""
    text = (REPO / "docs/extending.md").read_text()
    section = text.split("## A new evaluation", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d+\. (.+?) —", section, re.M)
    paths = [p for step in steps for p in re.findall(r"`([^`]+)`", step)]
    return [p.replace("<key>", KEY).replace("<figure>", FIGURE) for p in paths]


@pytest.mark.e2e
def test_a_toy_evaluation_added_by_the_recipes_files_alone_runs_through_the_workflow(tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    shutil.copytree(REPO / "sgtr_em", workdir / "sgtr_em", ignore=shutil.ignore_patterns("__pycache__"))
    written: list[str] = []

    def write(relative: str, text: str) -> None:
        (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
        (workdir / relative).write_text(text)
        written.append(relative)

    write(f"sgtr_em/{KEY}.py", MODULE)
    registry = (workdir / "sgtr_em/evaluations.py").read_text()
    anchor = "        # A new evaluation's entry goes here (docs/extending.md).\n"
    write("sgtr_em/evaluations.py", registry.replace(anchor, ENTRY + anchor))
    schema = yaml.safe_load((workdir / "config/schema.yaml").read_text())
    schema["properties"]["eval"]["properties"][KEY] = {
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "properties": {
            "enabled": {"type": "boolean", "default": False},
            "chains": {"type": ["array", "null"], "items": {"type": "string"}, "default": None},
            "sampling": {
                "$ref": "#/definitions/sampling",
                "default": {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "top_k": 0},
            },
        },
    }
    schema["properties"]["datasets"]["properties"][KEY] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["source"],
        "properties": {"source": {"$ref": "#/definitions/source"}},
    }
    write("config/schema.yaml", yaml.safe_dump(schema, sort_keys=False))
    demo = yaml.safe_load((workdir / "config/demo.yaml").read_text())
    demo["eval"][KEY] = {"enabled": True, "chains": ["base"]}
    demo["datasets"][KEY] = {"source": {"path": f"data/demo/{KEY}.yaml"}}
    write("config/demo.yaml", yaml.safe_dump(demo, sort_keys=False))
    questions = [{"id": f"q{i}", "paraphrases": [f"Tell me about topic {i}."]} for i in range(3)]
    write(f"data/demo/{KEY}.yaml", yaml.safe_dump(questions))
    write(f"report/tables/{KEY}.rst", "Toy: words per greedy answer.\n")
    write(f"report/figures/{FIGURE}.rst", "Fig 8: toy answer length per condition.\n")
    assert sorted(written) == sorted(recipe_files())

    targets = [f"results/tables/{KEY}_summary.csv", f"results/figures/demo-target/{FIGURE}.png"]
    grid = 'grid={"models": ["demo-target"], "chains": ["base"], "seeds": [0]}'
    result = snakemake(workdir, *targets, "--cores", "2", "--config", grid, timeout=900, pythonpath=workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = (workdir / targets[0]).read_text()
    assert "demo-target,base" in summary and ",greedy,words," in summary
    assert (workdir / targets[1]).stat().st_size > 5000
