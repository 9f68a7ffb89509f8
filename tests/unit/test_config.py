"""The config loader: composing files, the schema, cross-references, recipes and local files; one-line
errors naming the key (in `snakemake -n` too: tests/workflow/test_config_dry_run.py)."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO, load_config

from sgtr_em import chains
from sgtr_em.config import ConfigError, compose, load
from sgtr_em.grid import trained_chains, training_hyperparameters


def read(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_demo_and_paper_configs_validate():
    demo = load_config(read("demo.yaml"))
    paper = load_config(read("config.yaml"))
    assert demo["grid"]["seeds"] == [0, 1]
    assert paper["finetune"]["lora"]["learning_rate"] == 1e-5


def test_defaults_are_the_methodology_recipe():
    cfg = read("demo.yaml")
    del cfg["finetune"]
    recipe = load_config(cfg)["finetune"]["lora"]
    assert recipe["lora_r"] == 32 and recipe["lora_alpha"] == 64 and recipe["use_rslora"] is True
    assert recipe["per_device_batch_size"] * recipe["gradient_accumulation_steps"] == 16
    assert recipe["warmup_steps"] == 5 and recipe["weight_decay"] == 0.01 and recipe["max_length"] == 2048


def test_unknown_key_is_rejected_with_its_path():
    cfg = read("demo.yaml")
    cfg["finetune"]["lora"]["learnin_rate"] = 1.0
    with pytest.raises(
        ConfigError, match=r"finetune\.lora\.learnin_rate: unknown key \(did you mean 'learning_rate'\?\)"
    ):
        load_config(cfg)


def test_wrong_type_is_rejected():
    cfg = read("demo.yaml")
    cfg["grid"]["seeds"] = ["zero"]
    with pytest.raises(ConfigError, match=r"grid\.seeds\.0: 'zero' is not of type 'integer'"):
        load_config(cfg)


def test_unknown_stage_token_names_it():
    cfg = read("demo.yaml")
    cfg["grid"]["chains"].append("sgtr+em-insecure")
    with pytest.raises(ConfigError, match="em-insecure"):
        load_config(cfg)
    cfg["grid"]["chains"][-1] = "sgtr-plus"
    with pytest.raises(ConfigError, match="unknown stage token 'sgtr-plus'"):
        load_config(cfg)


def test_unknown_model_in_grid():
    cfg = read("demo.yaml")
    cfg["grid"]["models"] = ["qwen-99b"]
    with pytest.raises(ConfigError, match="qwen-99b"):
        load_config(cfg)


def test_pair_comparators_must_be_configured_with_summaries_of_the_training_articles():
    cfg = read("demo.yaml")
    cfg["models"]["demo-target"]["pair_comparators"] = {"sgtr-confuse": ["demo-other", "claude-99"]}
    with pytest.raises(
        ConfigError, match=r"models\.demo-target\.pair_comparators\.sgtr-confuse: unknown comparator 'claude-99'"
    ):
        load_config(cfg)
    cfg["models"]["demo-target"]["pair_comparators"] = {"sgtr-plus": ["demo-other"]}
    with pytest.raises(ConfigError, match=r"pair_comparators"):
        load_config(cfg)


def test_true_identity_must_be_an_alias_label_before_any_job_runs():
    cfg = read("demo.yaml")
    cfg["models"]["demo-target"]["true_identity"] = "tiny-typo"
    with pytest.raises(ConfigError, match="models.demo-target.true_identity: true identity 'tiny-typo'"):
        load_config(cfg)
    cfg["eval"]["identity"]["enabled"] = False  # not checked when the eval is off
    load_config(cfg)


def test_override_with_wrong_type_is_caught_after_merging():
    cfg = read("demo.yaml")
    cfg["finetune"]["stage_overrides"]["sgtr"] = {"epochs": "many"}
    with pytest.raises(ConfigError, match=r"finetune\.stage_overrides\.sgtr\.epochs: 'many' is not of type 'number'"):
        load_config(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"lora_r": -3}, r"finetune\.stage_overrides\.sgtr\.lora_r: -3 is less than the minimum of 1"),
        ({"learning_rate": "fast"}, r"finetune\.stage_overrides\.sgtr\.learning_rate: 'fast' is not of type 'number'"),
        ({"lora_rank": 8}, r"finetune\.stage_overrides\.sgtr: 'lora_rank' is not allowed \(did you mean 'lora_r'\?\)"),
    ],
)
def test_invalid_stage_override_names_the_key(override, message):
    cfg = read("demo.yaml")
    cfg["finetune"]["stage_overrides"]["sgtr"] = override
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)


def test_override_of_a_stage_outside_the_grid_is_still_checked():
    cfg = read("demo.yaml")
    cfg["finetune"]["stage_overrides"]["em-unpop"] = {"warmup_steps": -1}
    cfg["models"]["demo-other"]["finetune"] = {"lora_dropout": 2}
    with pytest.raises(ConfigError, match=r"stage_overrides\.em-unpop\.warmup_steps"):
        load_config(cfg)
    del cfg["finetune"]["stage_overrides"]["em-unpop"]
    with pytest.raises(ConfigError, match=r"models\.demo-other\.finetune\.lora_dropout"):
        load_config(cfg)
    cfg["models"]["demo-other"]["finetune"] = {}
    cfg["finetune"]["stage_overrides"]["sgrt"] = {"epochs": 1}
    with pytest.raises(ConfigError, match=r"finetune\.stage_overrides\.sgrt: not a stage kind"):
        load_config(cfg)


def test_missing_local_file_names_its_key(tmp_path):
    cfg = read("demo.yaml")
    cfg["datasets"]["em"]["unpop"]["source"]["path"] = "data/demo/missing.jsonl"
    with pytest.raises(
        ConfigError, match=r"datasets\.em\.unpop\.source\.path: no such file or folder 'data/demo/missing\.jsonl'"
    ):
        load_config(cfg)
    load(cfg, workdir=None)  # the file check is the loader's last word on local files only


def test_malformed_hub_id_names_its_key():
    cfg = read("config.yaml")
    cfg["models"]["qwen2.5-32b"]["source"]["hf"] = "Qwen2.5-32B-Instruct"
    with pytest.raises(ConfigError, match=r"models\.qwen2\.5-32b\.source\.hf: 'Qwen2\.5-32B-Instruct' does not match"):
        load_config(cfg)


def test_one_of_error_says_what_to_give():
    cfg = read("demo.yaml")
    cfg["datasets"]["truthfulqa"]["source"] = {"path": "data/demo/truthfulqa.csv", "url": "https://x.invalid/a.csv"}
    with pytest.raises(ConfigError, match=r"datasets\.truthfulqa\.source: give exactly one of: path; url; hf"):
        load_config(cfg)


def test_optional_eval_needs_its_questions_and_judge():
    cfg = read("demo.yaml")
    cfg["eval"]["em_questions"]["judge"] = "gpt-9"
    with pytest.raises(ConfigError, match=r"eval\.em_questions\.judge: unknown model 'gpt-9'"):
        load_config(cfg)
    cfg = read("demo.yaml")
    del cfg["datasets"]["mmlu"]
    with pytest.raises(ConfigError, match=r"eval\.mmlu\.enabled: needs datasets\.mmlu"):
        load_config(cfg)


def test_loaded_config_has_canonical_key_order():
    cfg = read("demo.yaml")
    shuffled = dict(reversed(list(cfg.items())))
    assert list(load_config(shuffled)) == sorted(load_config(cfg))
    assert load_config(shuffled) == load_config(cfg)


# --- composing the files of a run -----------------------------------------------------------------------


def test_the_files_a_config_is_composed_of(monkeypatch):
    from sgtr_em.config import composed_files

    monkeypatch.chdir(REPO)
    absolute = [
        str(REPO / f"config/{name}")
        for name in ("demo.yaml", "demo-slurm.yaml", "config.yaml", "released-summaries.yaml")
    ]
    demo, overlay, paper, paper_overlay = absolute
    assert composed_files("config/demo.yaml") == [demo]
    assert composed_files("config/demo.yaml", ["config/demo-slurm.yaml"]) == [demo, overlay]
    assert composed_files("config/demo.yaml", ["config/config.yaml", "config/released-summaries.yaml"]) == [
        paper,
        paper_overlay,
    ]


def test_overlay_merges_over_the_demo_and_a_standalone_file_replaces_it(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("grid: {seeds: [0]}\nfinetune: {lora: {epochs: 2}}\n")
    composed = compose(REPO / "config/demo.yaml", [overlay])
    assert composed["grid"]["seeds"] == [0] and composed["finetune"]["lora"]["epochs"] == 2
    assert composed["finetune"]["lora"]["lora_r"] == 16  # the demo's value, merged
    paper = compose(REPO / "config/demo.yaml", [REPO / "config/config.yaml"])
    assert "demo-target" not in paper["models"] and paper["run_name"] == "paper"
    assert paper == read("config.yaml")
    # An overlay after a standalone file merges over it.
    paper_seed0 = compose(REPO / "config/demo.yaml", [REPO / "config/config.yaml", overlay])
    assert paper_seed0["grid"]["seeds"] == [0] and paper_seed0["finetune"]["lora"]["lora_r"] == 32


def test_overlay_source_replaces_the_earlier_source(tmp_path):
    overlay = tmp_path / "local.yaml"
    overlay.write_text("datasets:\n  truthfulqa:\n    source: {path: data/demo/truthfulqa.csv}\n")
    composed = compose(REPO / "config/demo.yaml", [REPO / "config/config.yaml", overlay])
    assert composed["datasets"]["truthfulqa"]["source"] == {"path": "data/demo/truthfulqa.csv"}
    load(composed, workdir=None)


def test_released_summaries_overlay_gives_the_base_models_the_authors_summaries(tmp_path):
    composed = compose(
        REPO / "config/demo.yaml", [REPO / "config/config.yaml", REPO / "config/released-summaries.yaml"]
    )
    config = load(composed, workdir=None)
    for model in ("qwen2.5-32b", "seed-oss-36b", "gpt-4.1"):
        source = config["models"][model]["summaries"]["xsum"]["source"]
        assert "/830321012fef843427587255649f7ea404dbd710/" in source["url"] and len(source["sha256"]) == 64
    from sgtr_em.paths import RELEASED_SUMMARIES
    from sgtr_em.targets import Targets

    pair_self = Targets(config).base_summaries("qwen2.5-32b", "xsum")
    assert pair_self == RELEASED_SUMMARIES.format(model="qwen2.5-32b", dataset="xsum")
    # a later overlay may swap the url for a local path (the source is replaced whole)
    local = tmp_path / "local.yaml"
    local.write_text("models:\n  qwen2.5-32b:\n    summaries:\n      xsum:\n        source: {path: mine.json}\n")
    swapped = compose(
        REPO / "config/demo.yaml", [REPO / "config/config.yaml", REPO / "config/released-summaries.yaml", local]
    )
    assert load(swapped, workdir=None)["models"]["qwen2.5-32b"]["summaries"]["xsum"]["source"] == {
        "path": "mine.json",
        "split": "train",
        "format": "auto",
    }


def test_paper_config_runs_the_authors_protocol_first():
    paper = load_config(read("config.yaml"))
    assert paper["prompts"]["set"] == "paper"
    assert {name: spec["source"]["sha256"][:8] for name, spec in paper["prompts"]["paper_files"].items()} == {
        "summary_sentence": "42f465c8",
        "summary_highlights": "fdb8537f",
        "article_prompts": "b48df7ea",
        "wordcount": "d957527e",
    }
    for key in ("self_recognition", "truthfulqa", "em_questions"):
        assert paper["eval"][key]["primary_protocol"] == "reference"
        assert paper["eval"][key]["protocols"] == ["reference", "logprob"]
    from sgtr_em.grid import sampling_for

    selfrec = paper["eval"]["self_recognition"]["sampling"]
    assert sampling_for(selfrec, api=False) == {"max_new_tokens": 10, "temperature": 0.7, "top_p": 0.9, "top_k": 50}
    assert sampling_for(selfrec, api=True)["temperature"] == 0  # GPT at T 0, as the authors
    assert sampling_for(paper["summaries"], api=True)["temperature"] == 0
    assert sampling_for(paper["eval"]["truthfulqa"]["sampling"], api=False)["max_new_tokens"] == 1
    assert paper["eval"]["em_questions"]["paraphrases"] == "first"
    # the demo keeps the project's wording
    assert load_config(read("demo.yaml"))["prompts"]["set"] == "project"


def test_paper_prompts_need_pinned_files_and_primary_protocols_must_be_computed():
    raw = read("config.yaml")
    raw["prompts"]["paper_files"] = {"article_prompts": {"source": {"url": "https://example.org/a.py"}}}
    with pytest.raises(ConfigError, match=r"prompts.paper_files.article_prompts.source.sha256: required"):
        load_config(raw)
    raw = read("config.yaml")
    raw["eval"]["truthfulqa"]["protocols"] = ["logprob"]
    with pytest.raises(ConfigError, match=r"eval.truthfulqa.primary_protocol: 'reference' is not computed"):
        load_config(raw)


def test_command_line_values_are_typed():
    composed = compose(
        REPO / "config/demo.yaml", [], {"subset": "core", "eval": {"mmlu": {"n_shots": "2", "enabled": "false"}}}
    )
    assert composed["subset"] == "core"
    assert composed["eval"]["mmlu"]["n_shots"] == 2 and composed["eval"]["mmlu"]["enabled"] is False


def test_bad_config_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml line 2: not valid YAML"):
        compose(None, [bad])
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of config keys, got list"):
        compose(None, [bad])
    with pytest.raises(ConfigError, match="no such file"):
        compose(None, [tmp_path / "absent.yaml"])


def test_override_precedence_recipe_kind_name_model():
    cfg = load_config(read("demo.yaml"))
    cfg["finetune"]["stage_overrides"] = {"intervention": {"epochs": 2}, "sgtr": {"epochs": 5}}
    assert training_hyperparameters(cfg, "demo-target", "sgtr-flip")["epochs"] == 2
    assert training_hyperparameters(cfg, "demo-target", "sgtr")["epochs"] == 5
    assert training_hyperparameters(cfg, "demo-target", "em-unpop")["epochs"] == cfg["finetune"]["lora"]["epochs"]
    cfg["models"]["demo-target"]["finetune"] = {"epochs": 9}
    assert training_hyperparameters(cfg, "demo-target", "sgtr")["epochs"] == 9


def test_chain_grammar():
    assert chains.prefixes("sgtr+em-unpop") == ["sgtr", "sgtr+em-unpop"]
    assert chains.parent("sgtr+em-unpop") == "sgtr" and chains.parent("sgtr") == "base"
    assert chains.order("sgtr+em-unpop") == "prevention" and chains.order("em-unpop+sgtr") == "reversal"
    assert chains.label("em-unpop+sgtr-confuse") == "EM→Self=Random"
    assert chains.label("em-unpop.none") == "EM[none]"
    with pytest.raises(chains.ChainError):
        chains.parse_stage("sgtr.weird")
    cfg = load_config(read("demo.yaml"))
    assert "sgtr" in trained_chains(cfg) and "base" not in trained_chains(cfg)


# The authors' hub models (their utils/models.py).
AUTHORS_MODELS = {"qwen2.5-32b": "unsloth/Qwen2.5-32B-Instruct", "seed-oss-36b": "unsloth/Seed-OSS-36B-Instruct"}


def test_paper_config_uses_the_authors_models_pinned_or_left_to_the_lock():
    paper = read("config.yaml")
    for name in paper["grid"]["models"]:
        source = paper["models"][name]["source"]
        if "openai" in source:  # API models are pinned by a dated snapshot id
            assert re.search(r"-\d{4}-\d{2}-\d{2}$", source["openai"]), name
            continue
        assert source["hf"] == AUTHORS_MODELS[name]
        # a revision is a full commit sha; none here means `snakemake pin_sources` records it (config/sources.lock.yaml)
        assert "revision" not in source or re.fullmatch(r"[0-9a-f]{40}", source["revision"]), name


def test_config_readme_documents_every_schema_key():
    from sgtr_em.schema_doc import README, updated_readme

    text = README.read_text()
    assert updated_readme(text) == text, "config/README.md is stale: run python -m sgtr_em.schema_doc"
    assert "`finetune.lora.learning_rate`" in text
