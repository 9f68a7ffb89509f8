"""Config schema and cross-reference checks: clear errors naming the key."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO

from sgtr_em import chains
from sgtr_em.config import ConfigError, trained_chains, training_hyperparameters, validate_config


def load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_demo_and_paper_configs_validate():
    demo = validate_config(load("demo.yaml"))
    paper = validate_config(load("config.yaml"))
    assert demo["grid"]["seeds"] == [0, 1]
    assert paper["finetune"]["lora"]["learning_rate"] == 1e-5


def test_defaults_are_the_methodology_recipe():
    cfg = load("demo.yaml")
    del cfg["finetune"]
    recipe = validate_config(cfg)["finetune"]["lora"]
    assert recipe["lora_r"] == 32 and recipe["lora_alpha"] == 64 and recipe["use_rslora"] is True
    assert recipe["per_device_batch_size"] * recipe["gradient_accumulation_steps"] == 16
    assert recipe["warmup_steps"] == 5 and recipe["weight_decay"] == 0.01 and recipe["max_length"] == 2048


def test_unknown_key_is_rejected_with_its_path():
    cfg = load("demo.yaml")
    cfg["finetune"]["lora"]["learnin_rate"] = 1.0
    with pytest.raises(ConfigError, match="finetune/lora"):
        validate_config(cfg)


def test_wrong_type_is_rejected():
    cfg = load("demo.yaml")
    cfg["grid"]["seeds"] = ["zero"]
    with pytest.raises(ConfigError, match="grid/seeds/0"):
        validate_config(cfg)


def test_unknown_stage_token_names_it():
    cfg = load("demo.yaml")
    cfg["grid"]["chains"].append("sgtr+em-insecure")
    with pytest.raises(ConfigError, match="em-insecure"):
        validate_config(cfg)
    cfg["grid"]["chains"][-1] = "sgtr-plus"
    with pytest.raises(ConfigError, match="unknown stage token 'sgtr-plus'"):
        validate_config(cfg)


def test_unknown_model_in_grid():
    cfg = load("demo.yaml")
    cfg["grid"]["models"] = ["qwen-99b"]
    with pytest.raises(ConfigError, match="qwen-99b"):
        validate_config(cfg)


def test_true_identity_must_be_an_alias_label_before_any_job_runs():
    cfg = load("demo.yaml")
    cfg["models"]["demo-target"]["true_identity"] = "tiny-typo"
    with pytest.raises(ConfigError, match="models.demo-target.true_identity: true identity 'tiny-typo'"):
        validate_config(cfg)
    cfg["eval"]["identity"]["enabled"] = False  # not checked when the eval is off
    validate_config(cfg)


def test_override_with_wrong_type_is_caught_after_merging():
    cfg = load("demo.yaml")
    cfg["finetune"]["stage_overrides"]["sgtr"] = {"epochs": "many"}
    with pytest.raises(ConfigError, match="sgtr"):
        validate_config(cfg)


def test_override_precedence_recipe_kind_name_model():
    cfg = validate_config(load("demo.yaml"))
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
    cfg = validate_config(load("demo.yaml"))
    assert "sgtr" in trained_chains(cfg) and "base" not in trained_chains(cfg)


def test_paper_config_pins_models_by_revision():
    paper = load("config.yaml")
    for name in paper["grid"]["models"]:
        source = paper["models"][name]["source"]
        if "openai" in source:  # API models are pinned by a dated snapshot id
            assert re.search(r"-\d{4}-\d{2}-\d{2}$", source["openai"]), name
            continue
        assert "hf" in source and len(source["revision"]) == 40, name


def test_config_readme_documents_every_schema_key():
    from sgtr_em.schema_doc import README, updated_readme

    text = README.read_text()
    assert updated_readme(text) == text, "config/README.md is stale: run python -m sgtr_em.schema_doc"
    assert "`finetune.lora.learning_rate`" in text
