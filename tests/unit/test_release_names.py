"""The authors' file-name grammar and their plotting-script lists read as data.

File names below are the real release's (atagade/sgtr-em at the pinned commit) or follow its grammar; the
plotting-script and model-table files under tests/fixtures/release/authors/ were written for this project.
"""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, load_config

from sgtr_em.io import InputError
from sgtr_em.release.authors import read_model_table, read_plot_lists, read_plot_scripts
from sgtr_em.release.names import (
    UnmappedName,
    parse_self_recognition_name,
    parse_state,
    seedless_stem,
    split_self_recognition_name,
    truthfulqa_spelling,
)

AUTHORS = REPO / "tests/fixtures/release/authors"
ALIASES = load_config(yaml.safe_load((REPO / "config/demo.yaml").read_text()))["release"]["models"]


@pytest.mark.parametrize(
    ("spelling", "model", "chain", "seed", "local"),
    [
        ("gpt41", "gpt-4.1", "base", None, False),
        ("gpt41_em", "gpt-4.1", "em-unpop", None, False),  # bare em = unpop
        ("gpt41_em_asgtr_random", "gpt-4.1", "em-unpop+sgtr-confuse", None, False),
        ("hf_qwen_32b_asgtr_rand_em_unpop_3", "qwen2.5-32b", "sgtr-confuse+em-unpop", 3, True),
        ("hf_qwen_32b_asgtr_2", "qwen2.5-32b", "sgtr-flip", 2, True),
        ("hf_qwen_32b_sgtr_benign_em_unpop_0", "qwen2.5-32b", "pick-longer+em-unpop", 0, True),
        ("hf_qwen_32b_em_unpop_sgtr_4", "qwen2.5-32b", "em-unpop+sgtr", 4, True),
        ("hf_qwen_32b_em_badmed_1", "qwen2.5-32b", "em-badmed", 1, True),
        ("hf_qwen_32b_asgtr_nosys_em_unpop_1", "qwen2.5-32b", "sgtr-flip.none+em-unpop", 1, True),
        ("hf_qwen_32b_sgtr_qwensys_em_0", "qwen2.5-32b", "sgtr.identity+em-unpop", 0, True),
        ("hf_seed_36b_em_unpop_sgtr_benign_syspopped_2", "seed-oss-36b", "em-unpop+pick-longer.popped", 2, True),
        ("qwen_32B_sgtr_em", "qwen2.5-32b", "sgtr+em-unpop", None, False),  # the earliest runs' spelling
        ("hf_qwen_coder_32b_em_2", "qwen2.5-coder-32b", "em-unpop", 2, True),  # longest model name wins
        ("hf_olmo_7b_instruct_em_unpop_1", "olmo-3-7b-instruct", "em-unpop", 1, True),
        ("hf_olmo_7b", "olmo-3-7b", "base", None, True),
        ("hf_qwen_0.5b_em_sgtr", "qwen2.5-0.5b", "em-unpop+sgtr", None, True),
        ("hf_qwen_3_30b", "qwen3-30b", "base", None, True),
        ("hf_oss_20b_em_3", "gpt-oss-20b", "em-unpop", 3, True),
        # a variant written after the seed belongs to the one identity intervention (the matching-prompt runs)
        ("hf_qwen_coder_32b_sgtr_0_qwensys", "qwen2.5-coder-32b", "sgtr.identity", 0, True),
        ("hf_qwen_coder_32b_em_insecure_sgtr_4_qwensys", "qwen2.5-coder-32b", "em-insecure+sgtr.identity", 4, True),
        ("hf_qwen_coder_32b_sgtr_em_insecure_1_qwensys", "qwen2.5-coder-32b", "sgtr.identity+em-insecure", 1, True),
    ],
)
def test_state_names_map_to_our_vocabulary(spelling, model, chain, seed, local):
    state = parse_state(spelling, ALIASES)
    assert (state.model, state.chain, state.seed, state.local) == (model, chain, seed, local)


def test_a_state_knows_its_series_stem_and_legacy_spellings():
    assert seedless_stem("hf_qwen_coder_32b_sgtr_3_qwensys") == "hf_qwen_coder_32b_sgtr_qwensys"
    assert seedless_stem("hf_qwen_32b_em_unpop_4") == "hf_qwen_32b_em_unpop"
    assert seedless_stem("gpt41_em") == "gpt41_em"
    assert parse_state("hf_qwen_32b_em_2", ALIASES).legacy == ("bare_em",)
    assert parse_state("hf_qwen_32b_em_unpop_2", ALIASES).legacy == ()
    assert set(parse_state("qwen_32b_em_asgtr_random", ALIASES).legacy) == {"bare_em", "asgtr_random", "no_hf_prefix"}


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("hf_mystery_7b_em_0", "no configured model name"),
        ("hf_qwen_32b_sgtr_rl_200", "'sgtr_rl_200': Self\\+\\+ trained by reinforcement learning"),
        ("hf_seed_36b_em_withsys_3", "stage word 'withsys': EM trained on chats given a system prompt"),
        ("hf_oss_20b_em_id", "stage word 'id'.*cannot be recovered"),
        ("hf_qwen_32b_em_unpop_ictr_0", "unknown stage word 'ictr'"),
        ("gpt41_nosys_em", "follows no stage"),
        ("gpt41_sgtr_nosys_qwensys", "two system variants"),
        ("hf_qwen_32b_sgtr_em_asgtr_0_qwensys", "needs exactly one identity intervention to apply to, found 2"),
        ("hf_qwen_32b_em_0_qwensys", "needs exactly one identity intervention to apply to, found 0"),
        ("hf_qwen_32b_sgtr_0_em", "seed '0' is followed by stage words"),
    ],
)
def test_unmappable_state_names_say_why(spelling, reason):
    with pytest.raises(UnmappedName, match=reason):
        parse_state(spelling, ALIASES)


def test_truthfulqa_file_names():
    assert parse_state(truthfulqa_spelling("results_gpt41_sgtr.csv"), ALIASES).chain == "sgtr"
    with pytest.raises(UnmappedName, match="not a results_"):
        truthfulqa_spelling("TruthfulQA.csv")


def test_self_recognition_sources_split_without_the_state_grammar():
    own = split_self_recognition_name("cnn_judge_hf_qwen_32b_sgtr_0_between_hf_qwen_32b_sgtr_0_claude-21.json")
    assert (own.dataset, own.judge, own.self_spelling, own.other_spelling) == (
        "cnn",
        "hf_qwen_32b_sgtr_0",
        "hf_qwen_32b_sgtr_0",
        "claude-21",
    )
    # the base model's summaries as 'self': the longest leading part of the judge's name
    base = split_self_recognition_name("cnn_judge_hf_qwen_32b_sgtr_1_between_hf_qwen_32b_human.json")
    assert (base.self_spelling, base.other_spelling) == ("hf_qwen_32b", "human")
    other_first = split_self_recognition_name(
        "cnn_judge_hf_qwen_32b_asgtr_0_between_claude-21_hf_qwen_32b_asgtr_0.json"
    )
    assert (other_first.self_spelling, other_first.other_spelling) == ("hf_qwen_32b_asgtr_0", "claude-21")
    # the file's replies settle a cut the name alone leaves open
    olmo = "xsum_judge_hf_olmo_7b_instruct_between_hf_olmo_7b_instruct_claude-21.json"
    assert split_self_recognition_name(olmo, {"hf_olmo_7b_instruct", "claude-21"}).other_spelling == "claude-21"
    with pytest.raises(UnmappedName, match="neither source"):
        split_self_recognition_name("cnn_judge_gpt41_between_gpt4o_claude-21.json")
    with pytest.raises(UnmappedName, match="not a <ds>_judge_"):
        split_self_recognition_name("cnn_judge_gpt41_between_gpt41_claude-21")


def test_self_recognition_names_map_judge_and_other_source():
    name = parse_self_recognition_name("cnn_judge_hf_qwen_32b_sgtr_1_between_hf_qwen_32b_claude-21.json", ALIASES)
    assert (name.judge.chain, name.judge.seed, name.self_kind, name.other) == ("sgtr", 1, "base", "claude-21")
    vs_model = parse_self_recognition_name("cnn_judge_hf_qwen_0.5b_between_hf_qwen_0.5b_gpt41.json", ALIASES)
    assert (vs_model.judge.model, vs_model.self_kind, vs_model.other) == ("qwen2.5-0.5b", "own", "gpt-4.1")
    with pytest.raises(UnmappedName, match="neither the judge's spelling nor its base model's"):
        parse_self_recognition_name("cnn_judge_hf_qwen_32b_em_sgtr_0_between_hf_qwen_32b_em_claude-21.json", ALIASES)


# ------------------------------------------------------------------------ the authors' own code, as data --


def test_plotting_script_lists_are_read_as_data_with_their_labels():
    figures = read_plot_scripts(AUTHORS, ["scripts/eval/plot_*.py"])
    assert [f.name for f in figures] == [
        "plot-bars-sr-input-files",
        "plot-bars-tqa-input-files",
        "plot-sr-results-input-files",
        "plot-tqa-results-input-files",
    ]
    seed = figures[-1]
    assert (seed.script, seed.variable, seed.figure) == (
        "scripts/eval/plot_tqa_results.py",
        "input_files",
        "fixture_seed",
    )
    assert [b.label for b in seed.bars] == ["Fixture Seed base", "Fixture Seed EM", "Fixture Seed EM then Self++"]
    assert seed.bars[1].files == (
        "data/eval/truthfulqa/results_hf_seed_36b_em.csv",
        "data/eval/truthfulqa/results_hf_seed_36b_em_1.csv",
        "data/eval/truthfulqa/results_hf_seed_36b_em_2.csv",
    )
    pairs = figures[0]  # two lists share one `labels`
    assert [b.label for b in pairs.bars] == ["Fixture base", "Fixture EM"]
    assert pairs.bars[0].files[0].startswith("data/eval/sgtr/comparison/")


def test_plotting_scripts_are_never_run(tmp_path):
    script = tmp_path / "plot_x.py"
    script.write_text(
        'raise SystemExit("executed")\nfiles = ["data/eval/truthfulqa/results_gpt41.csv"]\nnames = ["a", "b"]\n'
    )
    (figure,) = read_plot_lists(script, "scripts/eval/plot_x.py")
    assert [(b.label, b.files) for b in figure.bars] == [("bar 1", ("data/eval/truthfulqa/results_gpt41.csv",))]
    script.write_text("files = [\n")
    with pytest.raises(InputError, match="plot_x.py:1: not parseable Python"):
        read_plot_lists(script, "scripts/eval/plot_x.py")


def test_model_table_is_read_as_data():
    table = read_model_table(AUTHORS / "utils/models.py")
    assert table["hf_olmo_7b_instruct"] == "unsloth/Olmo-3-7B-Instruct" and len(table) == 4
