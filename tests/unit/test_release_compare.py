"""Our run beside the authors' released results (target `release_compare`): each condition both hold, in the
release's protocol, with the difference; a model the release lacks says so; the one-GPU presets name their
released model."""

from __future__ import annotations

import pytest
from conftest import REPO
from test_release import AUTHORS, LAYOUT

from sgtr_em import chains
from sgtr_em.aggregate import SUMMARY_COLUMNS, summarise
from sgtr_em.config import compose, load
from sgtr_em.io import read_csv, write_csv
from sgtr_em.release.compare import compare_rows, write_comparison
from sgtr_em.release.importer import import_release, write_import


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    write_import(
        import_release(AUTHORS, **LAYOUT),
        eval_dir=out / "eval",
        tables_dir=out / "tables",
        unmapped_report=out / "unmapped.csv",
    )
    return [out / "tables/truthfulqa_per_condition.csv", out / "tables/self_recognition_per_condition.csv"]


def our_summary(path, eval_name, model, values):
    rows = [
        {
            "eval": eval_name,
            "model": model,
            "chain": chain,
            "condition": chains.label(chain),
            "order": chains.order(chain),
            "comparator": "",
            "seed": seed,
            "protocol": protocol,
            "metric": "misalignment",
            "subgroup": "",
            "value": value,
        }
        for chain, per_seed in values.items()
        for seed, value in enumerate(per_seed)
        for protocol in ("reference", "logprob")
    ]
    write_csv(path, summarise(rows), SUMMARY_COLUMNS)
    return path


def test_our_run_beside_the_release(released, tmp_path):
    ours = our_summary(
        tmp_path / "truthfulqa_summary.csv",
        "truthfulqa",
        "qwen2.5-32b",
        {"base": [0.15, 0.17], "em-unpop": [0.3, 0.32], "wordcount": [0.1, 0.1]},
    )
    rows = compare_rows([ours], released, ["qwen2.5-32b"], "reference")
    by_chain = {r["chain"]: r for r in rows}
    assert set(by_chain) == {"base", "em-unpop"}  # wordcount: not in the release
    released_em = next(
        r
        for r in read_csv(released[0])
        if r["model"] == "qwen2.5-32b" and r["chain"] == "em-unpop" and r["metric"] == "misalignment"
        if r["protocol"] == "reference" and not r["subgroup"]
    )
    em = by_chain["em-unpop"]
    assert em["ours_mean"] == pytest.approx(0.31) and em["ours_n"] == 2
    assert em["released_mean"] == pytest.approx(float(released_em["mean"])) and em["released_n"] == int(
        released_em["n"]
    )
    assert em["difference"] == pytest.approx(0.31 - float(released_em["mean"]))
    markdown = tmp_path / "compare.md"
    write_comparison(
        [ours],
        released,
        models=["qwen2.5-32b", "qwen2.5-7b"],
        protocol="reference",
        release_source="fixtures",
        csv_out=tmp_path / "compare.csv",
        markdown_out=markdown,
    )
    text = markdown.read_text()
    assert "| truthfulqa (misalignment) | EM (`em-unpop`) | 0.310 ± 0.014 (n=2) |" in text
    assert "## qwen2.5-7b\n\nThe release holds no condition of this model" in text


@pytest.mark.parametrize("size", ["0.5b", "7b", "14b"])
def test_each_preset_is_compared_with_the_authors_runs_of_its_model(size):
    config = load(compose(REPO / "config/config.yaml", [REPO / f"config/qwen2.5-{size}.yaml"]), workdir=None)
    model = f"qwen2.5-{size}"
    assert config["grid"]["models"] == [model] and config["run_name"] == model
    # the release's file names map onto the preset's model, and the release figures name it
    assert config["release"]["models"][f"qwen_{size}"] == model
    assert model in config["release"]["figures"]
