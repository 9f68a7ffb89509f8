"""The paper grid against the authors' runs: every condition a released result file of theirs names is in the
grid, every other condition is marked as an extension, and `--config subset=authors` runs exactly theirs (as
Snakemake plans it: tests/workflow/test_grid_authors_subset.py)."""

from __future__ import annotations

import copy

import pytest
from conftest import REPO, authors_conditions, fixture_lock, load_config, read_config

from sgtr_em.config import ConfigError, apply_subset, load
from sgtr_em.grid import model_chains, model_extensions


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config(read_config("config.yaml"))


def test_every_condition_the_authors_ran_is_in_the_grid_and_the_rest_are_extensions(paper):
    theirs = authors_conditions()
    assert set(theirs) == set(paper["grid"]["models"])
    for model in paper["grid"]["models"]:
        ours = model_chains(paper, model)
        extensions = model_extensions(paper, model)
        assert theirs[model] <= set(ours), (model, sorted(theirs[model] - set(ours)))
        assert set(ours) - set(extensions) == theirs[model], model
        assert not set(extensions) & theirs[model], model
    assert len(theirs["qwen2.5-32b"]) == 51 and len(theirs["seed-oss-36b"]) == 46 and len(theirs["gpt-4.1"]) == 9
    # some of what the issue names: pick-longer with the other EM datasets, Qwen's system variants, Seed's popped
    assert {"pick-longer+em-badmed", "em-finrisk+pick-longer", "sgtr-flip.identity", "em-unpop+sgtr-confuse.none"} <= (
        theirs["qwen2.5-32b"]
    )
    assert {"sgtr.popped+em-unpop", "em-badmed+sgtr", "pick-longer+em-finrisk"} <= theirs["seed-oss-36b"]
    assert "sgtr+em-unpop" in theirs["gpt-4.1"]  # its self-recognition file only (the comparison folder)


def test_subset_authors_runs_exactly_their_conditions(paper):
    raw = read_config("config.yaml")
    config = load({**raw, "subset": "authors"}, workdir=REPO, lock=fixture_lock(raw))
    theirs = authors_conditions()
    for model in paper["grid"]["models"]:
        assert set(model_chains(config, model)) == theirs[model], model
        assert model_extensions(config, model) == []
    # the order of the grid is kept
    assert model_chains(config, "qwen2.5-32b") == [
        c for c in model_chains(paper, "qwen2.5-32b") if c in theirs["qwen2.5-32b"]
    ]


def test_a_subset_with_chains_keeps_its_extensions_unless_told(paper):
    config = copy.deepcopy(paper)
    config["grid"]["subsets"]["mixed"] = {"chains": ["base", "em-sports", "em-unpop"]}
    config["subset"] = "mixed"
    apply_subset(config)
    assert model_chains(config, "qwen2.5-32b") == ["base", "em-sports", "em-unpop"]
    assert model_extensions(config, "qwen2.5-32b") == ["em-sports"]
    config = copy.deepcopy(paper)
    config["grid"]["subsets"]["mixed"] = {"chains": ["base", "em-sports", "em-unpop"], "extensions": False}
    config["subset"] = "mixed"
    apply_subset(config)
    assert model_chains(config, "qwen2.5-32b") == ["base", "em-unpop"]


def test_an_extension_must_be_a_chain_of_its_model():
    raw = read_config("config.yaml")
    raw["grid"]["per_model"]["gpt-4.1"]["extensions"].append("pick-longer")
    with pytest.raises(
        ConfigError, match=r"grid\.per_model\.gpt-4\.1\.extensions: 'pick-longer' is not a chain of gpt-4\.1"
    ):
        load(raw, workdir=REPO, lock=fixture_lock(raw))
