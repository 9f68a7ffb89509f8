"""Training curves (loss per step of every trained stage, seeds overlaid, the learning rate beside it) and the
experiment trackers a training reports to (finetune.report_to)."""

from __future__ import annotations

import csv

import pytest
from conftest import load_config, pdf_font_types, read_config
from test_figures import _Snakemake, render_caption

from sgtr_em import targets
from sgtr_em.curves import curve_rows, draw_training_curves, figure_size
from sgtr_em.io import write_json
from sgtr_em.plot import DPI

CHAINS = {"em-unpop": 6, "sgtr": 4, "em-unpop+sgtr": 4}


def adapters(root, seeds=(0, 1)) -> list[str]:
    """Adapter folders with training records: a linear warmup-then-decay schedule, a falling loss per seed."""
    out = []
    for chain, steps in CHAINS.items():
        for seed in seeds:
            folder = root / "results/adapters/m" / chain / f"seed{seed}"
            rates = [1e-3 * min(1, (s + 1) / 2) * (steps - s) / steps for s in range(steps)]
            write_json(
                folder / "training_meta.json",
                {
                    "seed": seed,
                    "loss_per_step": [2.0 / (s + 1) + 0.1 * seed for s in range(steps)],
                    "learning_rate_per_step": rates,
                    "hyperparameters": {
                        "learning_rate": 1e-3,
                        "lr_scheduler": "linear",
                        "warmup_steps": 2,
                        "epochs": 1,
                    },
                },
            )
            out.append(str(folder))
    # An API model's fine-tuning stage has no training record: no curve.
    (root / "results/adapters/m/api/seed0").mkdir(parents=True)
    return [*out, str(root / "results/adapters/m/api/seed0")]


def test_training_curves_draw_every_stage_and_seed(tmp_path):
    import matplotlib.image as mpimg

    rows, recipes = curve_rows("m", adapters(tmp_path))
    assert list(recipes) == list(CHAINS)
    assert len(rows) == 2 * sum(CHAINS.values())
    png, pdf, table = tmp_path / "c.png", tmp_path / "c.pdf", tmp_path / "c.csv"
    draw_training_curves(rows, recipes, title="Training curves of m", png=png, pdf=pdf, csv=table)
    height, width = mpimg.imread(png).shape[:2]
    assert (width, height) == tuple(round(inches * DPI) for inches in figure_size(len(CHAINS)))
    assert "Type3" not in pdf_font_types(pdf)
    with table.open() as handle:
        written = list(csv.DictReader(handle))
    first = next(r for r in written if r["chain"] == "em-unpop+sgtr" and r["seed"] == "1" and r["step"] == "1")
    assert float(first["loss"]) == pytest.approx(2.1) and float(first["learning_rate"]) == pytest.approx(5e-4)
    assert first["condition"] == "EM→Self++"


def test_training_curves_without_records_fail_clearly(tmp_path):
    (tmp_path / "results/adapters/m/api/seed0").mkdir(parents=True)
    rows, recipes = curve_rows("m", [tmp_path / "results/adapters/m/api/seed0"])
    with pytest.raises(ValueError, match="no training record"):
        draw_training_curves(
            rows, recipes, title="t", png=tmp_path / "a.png", pdf=tmp_path / "a.pdf", csv=tmp_path / "a.csv"
        )


def test_every_local_target_model_has_training_curves():
    paper = targets.Targets(load_config(read_config("config.yaml")))
    assert paper.training_curve_models() == ["qwen2.5-32b", "seed-oss-36b"]  # not GPT-4.1's fine-tuning jobs
    demo = targets.Targets(load_config(read_config("demo.yaml")))
    assert demo.training_curve_files() == [
        f"results/figures/demo-target/training_curves.{ext}" for ext in ("png", "pdf", "csv")
    ]
    assert set(demo.training_curve_files()) <= set(demo.manifest_inputs())
    inputs = demo.training_curve_inputs(type("W", (), {"model": "demo-target"})())
    assert "results/adapters/demo-target/sgtr+em-unpop/seed1" in inputs and len(inputs) == 17 * 2


def test_the_training_curves_caption_renders():
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    html = render_caption(REPO / "report/training_curves.rst", _Snakemake(config, model="demo-target"))
    assert "demo-target" in html and "training_curves.csv" in html


# ------------------------------------------------------------------------------------------ report_to --


def test_report_to_names_the_trackers_transformers_knows():
    """The schema's tracker names are transformers' report_to names (plus none), so a valid config never
    fails at the Trainer."""
    import yaml
    from conftest import REPO
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    schema = yaml.safe_load((REPO / "config/schema.yaml").read_text())
    assert set(schema["definitions"]["tracker"]["enum"]) == {"none", *INTEGRATION_TO_CALLBACK}
    assert schema["properties"]["finetune"]["properties"]["report_to"]["default"] == "none"


def test_report_to_is_off_by_default_and_checked_before_training(monkeypatch, tmp_path):
    from conftest import REPO

    from sgtr_em.config import ConfigError, compose, load
    from sgtr_em.finetune import tracking_settings

    config = load(compose(REPO / "config/demo.yaml"), workdir=REPO)
    assert config["finetune"]["report_to"] == "none"
    assert tracking_settings("none", "run", tmp_path) == {"report_to": "none"}
    with pytest.raises(ConfigError, match="finetune.report_to"):
        load(compose(REPO / "config/demo.yaml", [], {"finetune": {"report_to": "tensorbord"}}), workdir=REPO)
    # A tracker whose package is missing stops the job before the model loads, naming the key.
    monkeypatch.setattr("transformers.integrations.get_available_reporting_integrations", lambda: [])
    with pytest.raises(ValueError, match="finetune.report_to: tensorboard is not installed"):
        tracking_settings("tensorboard", "run", tmp_path)
    monkeypatch.setattr("transformers.integrations.get_available_reporting_integrations", lambda: ["tensorboard"])
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    settings = tracking_settings(["tensorboard"], "demo/m/sgtr/seed0", tmp_path / "tb")
    assert settings == {"report_to": ["tensorboard"], "run_name": "demo/m/sgtr/seed0"}
    import os

    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "tb")


def test_the_trainer_is_configured_with_the_trackers(tmp_path):
    from test_models import HP

    from sgtr_em.train import sft_config

    args = sft_config({**HP, "report_to": ["tensorboard"], "run_name": "demo/m/sgtr/seed0"}, tmp_path, 0, 1)
    assert args.report_to == ["tensorboard"] and args.run_name == "demo/m/sgtr/seed0"
    assert sft_config(HP, tmp_path, 0, 1).report_to == []
