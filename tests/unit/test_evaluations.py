"""The evaluation registry (sgtr_em.evaluations): every registered evaluation is complete where the workflow
will look for it, so a missing piece shows at once, not as a KeyError in a late job."""

from __future__ import annotations

import inspect

import pytest
import yaml
from conftest import REPO

from sgtr_em.evaluations import EVALUATIONS, OPTIONAL, evaluation_of, function, table_kind

SCHEMA = yaml.safe_load((REPO / "config/schema.yaml").read_text())


@pytest.mark.parametrize("key", list(EVALUATIONS))
def test_every_registered_evaluation_has_its_schema_block_captions_titles_and_functions(key):
    evaluation = EVALUATIONS[key]
    assert key in SCHEMA["properties"]["eval"]["properties"], f"config/schema.yaml: no eval.{key}"
    if evaluation.dataset:
        assert evaluation.dataset in SCHEMA["properties"]["datasets"]["properties"], f"no datasets.{evaluation.dataset}"
    assert (REPO / f"report/tables/{key}.rst").is_file(), f"report/tables/{key}.rst"
    if evaluation.figure:
        assert (REPO / f"report/figures/{evaluation.figure}.rst").is_file(), f"report/figures/{evaluation.figure}.rst"
        assert evaluation.figure_title
    if evaluation.optional:
        settings = SCHEMA["properties"]["eval"]["properties"][key]["properties"]
        assert {"enabled", "chains"} <= set(settings)
        assert evaluation.figure and evaluation.plot_title and evaluation.axis
    if evaluation.judged:
        assert evaluation.answers and "{model}" in evaluation.answers
    assert evaluation.metric and evaluation.column and evaluation.reading
    run = inspect.signature(function(evaluation.run))
    assert list(run.parameters) == ["model", "state", "step", "settings", "data"]
    if evaluation.items:
        assert list(inspect.signature(function(evaluation.items)).parameters) == ["record", "protocol", "metric"]
    if evaluation.prepare:
        assert list(inspect.signature(function(evaluation.prepare)).parameters) == ["rows", "where", "spec"]


def test_a_table_or_step_name_finds_its_evaluation():
    assert evaluation_of("self_recognition-claude-21") is EVALUATIONS["self_recognition"]
    assert table_kind("self_recognition-claude-21") == ("self_recognition", "claude-21")
    assert evaluation_of("truthfulqa") is EVALUATIONS["truthfulqa"]
    assert evaluation_of("summaries-cnn") is None and evaluation_of("nothing") is None
    assert OPTIONAL == ("em_questions", "identity", "mmlu")
