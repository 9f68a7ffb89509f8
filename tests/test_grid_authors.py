"""The paper grid against the authors' runs: every condition a released result file of theirs names is in the
grid, every other condition is marked as an extension, and `--config subset=authors` runs exactly theirs."""

from __future__ import annotations

import copy
import re
from collections import defaultdict

import pytest
from conftest import REPO, copy_workflow, fixture_lock, load_config, read_config, snakemake

from sgtr_em.config import ConfigError, apply_subset, load
from sgtr_em.grid import model_chains, model_extensions
from sgtr_em.release.names import UnmappedName, parse_self_recognition_name, parse_state, truthfulqa_spelling

NAMES = REPO / "tests/fixtures/authors_result_names.txt"
# Stage words of released names with no chain here (sgtr_em.release.names.UNMAPPABLE_STAGE_WORDS): Self++ by
# reinforcement learning, and EM on chats with an unnamed system prompt.
UNMAPPABLE = ("_rl_", "_withsys")


def authors_conditions() -> dict[str, set[str]]:
    """Per target model, the chains the authors' released result file names spell."""
    aliases = load_config(read_config("config.yaml"))["release"]["models"]
    out: dict[str, set[str]] = defaultdict(set)
    for line in NAMES.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("results_"):
                state = parse_state(truthfulqa_spelling(line), aliases)
            else:
                state = parse_self_recognition_name(line, aliases).judge
        except UnmappedName as err:
            assert any(word in line for word in UNMAPPABLE), err
            continue
        out[state.model].add(state.chain)
    return out


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


@pytest.mark.workflow
def test_the_authors_subset_plans_their_trainings_and_none_of_the_extensions(tmp_path):
    """`snakemake -n --config subset=authors` (the paper config, offline with the fixture lock): every training
    job is a condition of theirs, and no extension is planned."""
    workdir = copy_workflow(tmp_path / "authors")
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", "--config", "subset=authors", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = set(re.findall(r"results/adapters/([^/\s]+)/([^/\s]+)/seed\d+", result.stdout))
    theirs = authors_conditions()
    # every training is a condition of theirs or its first stage (`sgtr-confuse.none` of `sgtr-confuse.none+em-unpop`)
    trained = {(m, "+".join(c.split("+")[: i + 1])) for m, chains in theirs.items() for c in chains for i in range(2)}
    assert planned and planned <= trained, sorted(planned - trained)
    extensions = {(m, c) for m in theirs for c in model_extensions(load_config(read_config("config.yaml")), m)}
    evaluated = set(re.findall(r"results/eval/truthfulqa/([^/\s]+)/([^/\s]+)/seed\d+\.json", result.stdout))
    assert evaluated == {(m, c) for m, chains in theirs.items() for c in chains}
    assert not evaluated & extensions
