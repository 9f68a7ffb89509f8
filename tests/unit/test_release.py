"""Reviewer path: import of released results in the authors' formats, tables, bundles, `release_figures` (the
release rules through Snakemake: tests/workflow/test_release_rules.py and tests/e2e/test_release_figures.py).

The fixture files under tests/fixtures/release/authors/ were written for this project (invented questions,
answers and article ids) under the real release's names and layout: the earliest runs' spellings beside the
pipeline's (`qwen_32B_em`, bare `em_<seed>` beside `em_unpop_<seed>`), seedless files beside their seeded
siblings, a `comparison/` subfolder, names the grammar cannot map, and plotting scripts listing result files.
Every expected number below is worked out by hand from those files (4 rows or articles each).
"""

from __future__ import annotations

import http.server
import math
import re
import shutil
import tarfile
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml
from conftest import REPO, load_config
from release_fixtures import FIGURES, FIXTURES

from sgtr_em.aggregate import read_summary, tidy_rows
from sgtr_em.io import read_csv, read_json, sha256_file, write_csv
from sgtr_em.release import targets
from sgtr_em.release.authors import read_plot_scripts, resolve_listed_paths
from sgtr_em.release.bundle import fetch_release, make_bundle
from sgtr_em.release.figures import (
    PLAN_COLUMNS,
    draw_authors_figure,
    model_settings,
    plan_authors_figures,
    plan_figures,
)
from sgtr_em.release.importer import import_release, write_import
from sgtr_em.sources import SourceError

AUTHORS = FIXTURES / "authors"
DEFAULTS = load_config(yaml.safe_load((REPO / "config/demo.yaml").read_text()))["release"]
LAYOUT = targets.import_layout(DEFAULTS)
TQA = "data/eval/truthfulqa"
SR = "data/eval/sgtr"


@pytest.fixture(scope="module")
def imported():
    return import_release(AUTHORS, **LAYOUT)


@pytest.fixture(scope="module")
def written(imported, tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    write_import(
        imported,
        eval_dir=out / "eval",
        tables_dir=out / "tables",
        unmapped_report=out / "unmapped_files.csv",
        duplicates_report=out / "duplicates.csv",
        authors_lists=out / "authors_lists.json",
    )
    return out


def _rows(rows, prefix):
    return {r["file"].removeprefix(prefix): r for r in rows}


# ------------------------------------------------------------------------------------ per-file tables --


def test_every_released_result_file_is_re_scored_mapped_or_not(imported):
    result_files = sorted(p.name for p in (AUTHORS / TQA).glob("results_*.csv"))
    assert sorted(r["file"].removeprefix(f"{TQA}/") for r in imported.truthfulqa_rows) == result_files
    assert len(result_files) == 41
    rows = _rows(imported.truthfulqa_rows, f"{TQA}/")
    fields = ("model", "chain", "seed", "n", "n_correct", "n_invalid", "misalignment", "status")
    expected = {
        "results_qwen_32B_em.csv": ("qwen2.5-32b", "em-unpop", 0, 4, 1, 0, 0.75, "alternative"),
        "results_hf_qwen_32b_em_2.csv": ("qwen2.5-32b", "em-unpop", 2, 4, 1, 0, 0.75, "alternative"),
        "results_hf_qwen_32b_em_unpop_4.csv": ("qwen2.5-32b", "em-unpop", 4, 4, 2, 1, 0.5, "imported"),
        "results_hf_qwen_32b_em_nosys.csv": ("qwen2.5-32b", "em-unpop.none", 0, 4, 3, 0, 0.25, "imported"),
        "results_hf_seed_36b_em.csv": ("seed-oss-36b", "em-unpop", 0, 4, 2, 2, 0.5, "imported"),
        "results_hf_seed_36b_em_unpop_1.csv": ("seed-oss-36b", "em-unpop", 1, 4, 4, 0, 0.0, "alternative"),
        "results_gpt41_em.csv": ("gpt-4.1", "em-unpop", 0, 4, 1, 1, 0.75, "imported"),
        "results_hf_qwen_coder_32b_sgtr_0_qwensys.csv": (
            "qwen2.5-coder-32b",
            "sgtr.identity",
            0,
            4,
            3,
            0,
            0.25,
            "imported",
        ),
        # names the grammar cannot map keep their numbers
        "results_hf_qwen_32b_sgtr_rl_100.csv": (None, None, None, 4, 3, 0, 0.25, "unmapped"),
        "results_hf_seed_36b_em_withsys_0.csv": (None, None, None, 4, 1, 0, 0.75, "unmapped"),
    }
    for file, values in expected.items():
        assert tuple(rows[file].get(k) for k in fields) == values, file
    assert "reinforcement learning" in rows["results_hf_qwen_32b_sgtr_rl_100.csv"]["note"]
    statuses = [r["status"] for r in imported.truthfulqa_rows]
    assert (statuses.count("imported"), statuses.count("alternative"), statuses.count("unmapped")) == (28, 10, 3)


def test_self_recognition_per_file_numbers_ignore_stray_keys(imported):
    rows = _rows(imported.self_recognition_rows, f"{SR}/")
    assert len(rows) == 17  # every .json result file; the suffix-less copy is reported instead
    fields = ("eval", "chain", "seed", "self_source", "other_source", "n_articles", "n_self", "n_invalid", "score")
    expected = {
        "cnn_judge_hf_qwen_32b_between_hf_qwen_32b_claude-21.json": (
            "self_recognition-claude-21",
            "base",
            0,
            "hf_qwen_32b",
            "claude-21",
            4,
            3,
            0,
            0.75,
        ),
        "cnn_judge_hf_qwen_32b_em_1_between_hf_qwen_32b_em_1_claude-21.json": (
            "self_recognition-claude-21",
            "em-unpop",
            1,
            "hf_qwen_32b_em_1",
            "claude-21",
            4,
            1,
            1,
            0.25,
        ),
        # the example: no seed, and a sibling has _0: a run of its own, kept with its numbers
        "cnn_judge_hf_qwen_32b_sgtr_between_hf_qwen_32b_claude-21.json": (
            "self_recognition-claude-21-base-self",
            "sgtr",
            "",
            "hf_qwen_32b",
            "claude-21",
            4,
            4,
            0,
            1.0,
        ),
        "xsum_judge_hf_olmo_7b_between_hf_olmo_7b_claude-21.json": (
            "self_recognition-claude-21-xsum",
            "base",
            0,
            "hf_olmo_7b",
            "claude-21",
            4,
            1,
            0,
            0.25,
        ),
        "comparison/cnn_judge_gpt41_em_between_gpt41_em_claude-21.json": (
            "self_recognition-claude-21-comparison",
            "em-unpop",
            0,
            "gpt41_em",
            "claude-21",
            4,
            2,
            0,
            0.5,
        ),
        "cnn_judge_hf_qwen_32b_sgtr_rl_200_between_hf_qwen_32b_claude-21.json": (
            None,
            None,
            None,
            "hf_qwen_32b",
            "claude-21",
            4,
            2,
            1,
            0.5,
        ),
    }
    for file, values in expected.items():
        assert tuple(rows[file].get(k) for k in fields) == values, file
    assert rows["cnn_judge_hf_qwen_32b_between_hf_qwen_32b_claude-21.json"]["n_stray_keys"] == 2
    base = imported.evals["self_recognition-claude-21/qwen2.5-32b/base/seed0.json"]
    assert base["n_stray_keys"] == 2 and set(base["release"]["stray_keys"]) == {"10001", "_meta"}
    em = imported.evals["self_recognition-claude-21/qwen2.5-32b/em-unpop/seed1.json"]
    assert em["metrics"]["reference"] == {"score": 0.25, "invalid_rate": 0.25, "n": 4}


def test_every_file_is_in_a_per_file_table_or_the_unmapped_report_with_its_reason(imported, written):
    reported = {r["file"]: r["reason"] for r in read_csv(written / "unmapped_files.csv")}
    assert {f: reason.split(": ", 1)[1][:40] for f, reason in reported.items()} == {
        f"{TQA}/TruthfulQA.csv": "not a results_<model>[_<chain>][_<seed>]",
        f"{TQA}/results_hf_oss_20b_em_id.csv": "stage word 'id': `em_id`: no script, con",
        f"{TQA}/results_hf_qwen_32b_sgtr_rl_100.csv": "stage words 'sgtr_rl_100': Self++ traine",
        f"{TQA}/results_hf_seed_36b_em_withsys_0.csv": "stage word 'withsys': EM trained on chat",
        f"{SR}/cnn_judge_hf_qwen_32b_sgtr_rl_200_between_hf_qwen_32b_claude-21.json": "stage words 'sgtr_rl_200': Self++ traine",
        f"{SR}/comparison/cnn_judge_gpt41_between_gpt41_claude-21": "not a <ds>_judge_<judge>_between_<src1>_",
    }
    assert reported[f"{TQA}/TruthfulQA.csv"].endswith(
        "the TruthfulQA question set (what scripts/eval/truthfulqa.py reads), not a result file"
    )
    released = {p.relative_to(AUTHORS).as_posix() for d in (TQA, SR) for p in (AUTHORS / d).rglob("*") if p.is_file()}
    per_file = {r["file"] for r in imported.truthfulqa_rows + imported.self_recognition_rows}
    assert per_file | set(reported) == released
    unmapped_rows = {
        r["file"] for r in imported.truthfulqa_rows + imported.self_recognition_rows if r["status"] == "unmapped"
    }
    assert unmapped_rows <= set(reported)


def test_per_file_tables_agree_with_an_independent_re_scoring(written):
    """pandas and json straight from the files, none of this package's readers or the name grammar."""
    import json

    import pandas as pd

    tqa = pd.read_csv(written / "tables/truthfulqa_per_file.csv").set_index("file")
    for path in sorted((AUTHORS / TQA).glob("results_*.csv")):
        frame = pd.read_csv(path)
        row = tqa.loc[path.relative_to(AUTHORS).as_posix()]
        assert row["misalignment"] == pytest.approx(1 - frame["is_correct"].mean())
        assert row["n_invalid"] == (~frame["model_answer"].isin(["A", "B"])).sum()
    sr = pd.read_csv(written / "tables/self_recognition_per_file.csv").set_index("file")
    for path in sorted((AUTHORS / SR).rglob("*.json")):
        dataset, rest = path.name.split("_judge_")
        article = re.compile(DEFAULTS["article_id_patterns"][dataset])
        replies = pd.Series([v for k, v in json.loads(path.read_text()).items() if article.match(k)])
        judge = rest.split("_between_")[0]
        own = [v for v in replies.unique() if judge == v or judge.startswith(v + "_")]
        row = sr.loc[path.relative_to(AUTHORS).as_posix()]
        assert (row["score"], row["n_articles"]) == (pytest.approx((replies == own[0]).mean()), len(replies))
    assert len(tqa) == 41 and len(sr) == 17


def test_model_without_a_name_is_reported_with_the_authors_model_id():
    aliases = {k: v for k, v in LAYOUT["model_aliases"].items() if k != "olmo_7b_instruct"}
    result = import_release(AUTHORS, **{**LAYOUT, "model_aliases": aliases})
    reasons = {r["file"]: r["reason"] for r in result.unmapped}
    assert reasons[f"{TQA}/results_hf_olmo_7b_instruct.csv"].endswith(
        "the authors' utils/models.py loads hf_olmo_7b_instruct as unsloth/Olmo-3-7B-Instruct: "
        "add `olmo_7b_instruct: <our name>`"
    )
    # the longest known spelling wins, not the base model's shorter one
    assert (
        "hf_olmo_7b_instruct as"
        in reasons[f"{SR}/xsum_judge_hf_olmo_7b_instruct_between_hf_olmo_7b_instruct_claude-21.json"]
    )


def test_a_broken_result_file_is_reported_not_fatal(tmp_path):
    for folder in (TQA, SR):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / TQA / "results_gpt41.csv").write_text("question,model_answer\nq,A\n")
    (tmp_path / TQA / "results_gpt41_em.csv").write_bytes(b"\xff\xfe not text")
    (tmp_path / SR / "cnn_judge_gpt41_between_gpt41_claude-21.json").write_text("{")
    result = import_release(tmp_path, **LAYOUT)
    reasons = {r["file"]: r["reason"] for r in result.unmapped}
    assert "missing columns correct_answer, incorrect_answer, is_correct" in reasons[f"{TQA}/results_gpt41.csv"]
    assert "utf-8" in reasons[f"{TQA}/results_gpt41_em.csv"]
    assert "not valid JSON" in reasons[f"{SR}/cnn_judge_gpt41_between_gpt41_claude-21.json"]
    assert result.evals == {} and result.truthfulqa_rows == []


# -------------------------------------------------------------------- one series per condition --


def test_listed_paths_resolve_to_released_files_by_name():
    figures = read_plot_scripts(AUTHORS, ["scripts/eval/plot_*.py"])
    released = [p.relative_to(AUTHORS).as_posix() for p in (AUTHORS / "data").rglob("*") if p.is_file()]
    resolved = resolve_listed_paths(figures, released)
    listed = f"{SR}/comparison/cnn_judge_hf_qwen_32b_between_hf_qwen_32b_claude-21.json"
    assert resolved[listed] == f"{SR}/cnn_judge_hf_qwen_32b_between_hf_qwen_32b_claude-21.json"
    assert resolved[f"{TQA}/results_hf_seed_36b.csv"] == f"{TQA}/results_hf_seed_36b.csv"
    assert resolved[f"{TQA}/results_hf_seed_36b_em_sgtr_0.csv"] is None


def test_one_series_per_condition_and_the_duplicates_report_says_why(imported, written):
    report = {(r["eval"], r["model"], r["chain"], r["series"]): r for r in read_csv(written / "duplicates.csv")}
    qwen_em = {k[3]: r for k, r in report.items() if k[:3] == ("truthfulqa", "qwen2.5-32b", "em-unpop")}
    assert {s: r["used"] for s, r in qwen_em.items()} == {
        "hf_qwen_32b_em_unpop": "yes",  # as many seeds as bare `em`, spelled as the pipeline scripts write runs
        "hf_qwen_32b_em": "no",
        "qwen_32B_em": "no",  # drawn by the authors' plot_bars.py, but one run against five seeds
    }
    assert "spelled as the authors' pipeline scripts write runs" in qwen_em["hf_qwen_32b_em_unpop"]["reason"]
    assert "scripts/eval/plot_bars.py: tqa_input_files['Fixture EM']" in qwen_em["qwen_32B_em"]["authors_lists"]
    seed_em = report[("truthfulqa", "seed-oss-36b", "em-unpop", "hf_seed_36b_em")]
    assert seed_em["used"] == "yes" and "the authors' plotting scripts draw it" in seed_em["reason"]
    assert report[("truthfulqa", "qwen2.5-32b", "base", "qwen_32B")]["used"] == "yes"  # listed, equal otherwise
    seedless = report[("self_recognition-claude-21-base-self", "qwen2.5-32b", "sgtr", "hf_qwen_32b_sgtr (seedless)")]
    assert seedless["used"] == "no" and "seedless run beside an explicit seed 0" in seedless["reason"]
    # the chosen series' numbers are the evaluation JSONs
    seed_values = [imported.evals[f"truthfulqa/seed-oss-36b/em-unpop/seed{s}.json"] for s in range(3)]
    assert [e["release"]["file"].rsplit("/", 1)[1] for e in seed_values] == [
        "results_hf_seed_36b_em.csv",
        "results_hf_seed_36b_em_1.csv",
        "results_hf_seed_36b_em_2.csv",
    ]
    assert imported.evals["truthfulqa/qwen2.5-32b/base/seed0.json"]["release"]["spelling"] == "qwen_32B"


def test_eval_jsons_are_ours_and_marked_reference(imported, written):
    result = read_json(written / "eval/truthfulqa/qwen2.5-32b/em-unpop/seed4.json")
    assert result["protocol"] == result["primary_protocol"] == "reference"
    assert result["model_state"] == {"model": "qwen2.5-32b", "chain": "em-unpop", "seed": 4}
    assert result["metrics"] == {"reference": {"misalignment": 0.5, "invalid_rate": 0.25, "n": 4}}
    assert [r["reference"]["choice"] for r in result["records"]] == ["A", "B", None, "B"]
    assert {row["metric"] for row in tidy_rows(result)} == {"misalignment", "invalid_rate"}
    assert len([read_json(p) for p in (written / "eval").rglob("*.json")]) == len(imported.evals) == 41


def test_per_condition_tables_are_mean_sample_sd_and_n_over_seeds(written):
    tqa = {
        (r["model"], r["chain"]): r
        for r in read_summary(written / "tables/truthfulqa_per_condition.csv", "reference", "misalignment")
    }
    em = tqa[("qwen2.5-32b", "em-unpop")]  # em_unpop_0..4: 0.25, 0.5, 0.25, 0.25, 0.5
    assert em["n"] == 5 and em["mean"] == pytest.approx(0.35) and em["sd"] == pytest.approx(math.sqrt(0.075 / 4))
    sgtr = tqa[("qwen2.5-32b", "sgtr")]  # 0.0, 0.25
    assert (sgtr["n"], sgtr["mean"], sgtr["sd"]) == (2, pytest.approx(0.125), pytest.approx(0.125 * math.sqrt(2)))
    seed_em = tqa[("seed-oss-36b", "em-unpop")]  # the listed series: 0.5 (seedless = seed 0), 0.75, 0.5
    assert seed_em["n"] == 3 and seed_em["mean"] == pytest.approx(1.75 / 3)
    gpt_em = tqa[("gpt-4.1", "em-unpop")]
    assert gpt_em["n"] == 1 and gpt_em["mean"] == 0.75 and math.isnan(gpt_em["sd"])
    sr = {
        (r["eval"], r["model"], r["chain"]): r
        for r in read_summary(written / "tables/self_recognition_per_condition.csv", "reference", "score")
    }
    assert (
        sr[("self_recognition-claude-21", "qwen2.5-32b", "sgtr")]["n"],
        sr[("self_recognition-claude-21", "qwen2.5-32b", "sgtr")]["mean"],
    ) == (2, 0.875)
    assert sr[("self_recognition-claude-21", "qwen2.5-32b", "em-unpop")]["mean"] == pytest.approx(0.375)  # 0.5, 0.25
    assert sr[("self_recognition-claude-21-base-self", "qwen2.5-32b", "sgtr")]["mean"] == 0.75
    assert sr[("self_recognition-claude-21-comparison", "gpt-4.1", "em-unpop+sgtr")]["mean"] == 1.0
    # the same judge on two article sets: two evaluations, not a collision
    assert sr[("self_recognition-claude-21", "olmo-3-7b-instruct", "base")]["mean"] == 0.5
    assert sr[("self_recognition-claude-21-xsum", "olmo-3-7b-instruct", "base")]["mean"] == 0.75


def test_truthfulqa_grid_has_one_column_per_seed(written):
    grid = {(r["model"], r["chain"]): r for r in read_csv(written / "tables/truthfulqa_grid.csv")}
    em = grid[("qwen2.5-32b", "em-unpop")]
    assert [em[f"seed{s}"] for s in range(5)] == ["0.25", "0.5", "0.25", "0.25", "0.5"] and em["n"] == "5"
    assert grid[("gpt-4.1", "base")]["seed1"] == ""


# ------------------------------------------------------------------------------------- figure plan --


def _plan(written, release=DEFAULTS):
    plan = plan_figures(
        release,
        FIGURES,
        read_csv(written / "tables/truthfulqa_per_condition.csv"),
        read_csv(written / "tables/self_recognition_per_condition.csv"),
        "reference",
    )
    return {(r["model"], r["figure"]): r for r in plan}


def test_figure_plan_draws_what_the_release_holds_and_says_why_it_skips(written):
    release = {
        **DEFAULTS,
        "figures": {"gpt-4.1": {"self_recognition": "self_recognition-claude-21-comparison"}, "qwen2.5-32b": {}},
    }
    plan = _plan(written, release)
    drawn = {key for key, row in plan.items() if row["status"] == "draw"}
    assert {(m, f) for m, f in drawn if m in ("gpt-4.1", "qwen2.5-32b")} == {
        ("gpt-4.1", "fig1_self_recognition"),
        ("gpt-4.1", "fig2_truthfulqa"),
        ("gpt-4.1", "fig3b_reversal"),
        *(("qwen2.5-32b", f) for f in FIGURES),
    }
    assert plan[("gpt-4.1", "fig3a_prevention")]["reason"] == (
        "no X→EM (prevention) condition of gpt-4.1 among its figure conditions with TruthfulQA results"
    )
    # every model the release holds gets its figures tried, configured or not
    assert plan[("seed-oss-36b", "fig1_self_recognition")]["reason"] == (
        "the release holds no self-recognition result of seed-oss-36b"
    )
    assert plan[("seed-oss-36b", "fig3a_prevention")]["status"] == "draw"
    assert plan[("olmo-3-7b", "fig1_self_recognition")]["reason"] == (
        "the release holds no self_recognition-claude-21 result of olmo-3-7b (it holds self_recognition-claude-21-xsum; set release.figures)"
    )
    assert plan[("qwen2.5-coder-32b", "fig2_truthfulqa")]["reason"] == (
        "none of qwen2.5-coder-32b's 2 TruthfulQA conditions is among its figure conditions"
    )
    # a model's own settings
    coder = {**release, "figures": {"qwen2.5-coder-32b": {"chains": ["sgtr.identity", "em-insecure+sgtr.identity"]}}}
    coder_plan = _plan(written, coder)
    assert coder_plan[("qwen2.5-coder-32b", "fig3b_reversal")]["status"] == "draw"
    assert model_settings(coder, "qwen2.5-coder-32b")["self_recognition"] == "self_recognition-claude-21"
    absent = _plan(written, {**release, "figures": {"gpt-4o": {}}})
    assert absent[("gpt-4o", "fig2_truthfulqa")]["reason"] == "the release holds no result file mapped to gpt-4o"


def test_authors_lists_are_planned_and_redrawn_from_the_per_file_numbers(written, tmp_path):
    plan = plan_authors_figures(
        read_json(written / "authors_lists.json"),
        written / "tables/truthfulqa_per_file.csv",
        written / "tables/self_recognition_per_file.csv",
    )
    by_name = {r["figure"]: r for r in plan}
    assert {name: r["status"] for name, r in by_name.items()} == dict.fromkeys(
        [
            "plot-bars-sr-input-files",
            "plot-bars-tqa-input-files",
            "plot-sr-results-input-files",
            "plot-tqa-results-input-files",
        ],
        "draw",
    )
    assert by_name["plot-tqa-results-input-files"]["reason"] == (
        "bar 'Fixture Seed EM then Self++' left out (not released: data/eval/truthfulqa/results_hf_seed_36b_em_sgtr_0.csv)"
    )
    rows = draw_authors_figure(
        "plot-tqa-results-input-files",
        authors_lists=written / "authors_lists.json",
        truthfulqa_per_file=written / "tables/truthfulqa_per_file.csv",
        self_recognition_per_file=written / "tables/self_recognition_per_file.csv",
        protocol="reference",
        png=tmp_path / "a.png",
        pdf=tmp_path / "a.pdf",
    )
    assert [(r["condition"], r["n"], r["order"]) for r in rows] == [
        ("Fixture Seed base", 1, "base"),
        ("Fixture Seed EM", 3, "em"),
    ]
    assert rows[1]["values"] == [0.5, 0.75, 0.5]
    assert (tmp_path / "a.png").stat().st_size > 5000 and (tmp_path / "a.pdf").stat().st_size > 1000


def test_release_figures_target_list_comes_from_the_plan(tmp_path):
    plan = tmp_path / "plan.csv"
    rows = [
        {"figure_set": "paper", "model": "qwen2.5-32b", "figure": "fig2_truthfulqa", "status": "draw", "reason": ""},
        {"figure_set": "paper", "model": "gpt-4.1", "figure": "fig1_self_recognition", "status": "skip", "reason": "x"},
        {"figure_set": "authors", "model": "", "figure": "plot-bars-tqa-input-files", "status": "draw", "reason": ""},
    ]
    write_csv(plan, rows, PLAN_COLUMNS)
    assert targets.planned_figures(plan) == [
        "results/release/figures/qwen2.5-32b/fig2_truthfulqa.png",
        "results/release/figures/qwen2.5-32b/fig2_truthfulqa.pdf",
        "results/release/authors_figures/plot-bars-tqa-input-files.png",
        "results/release/authors_figures/plot-bars-tqa-input-files.pdf",
    ]
    wildcards = type("Wildcards", (), {"model": "gpt-4.1"})()
    release = {**DEFAULTS, "figures": {"gpt-4.1": {"self_recognition": "self_recognition-claude-21-comparison"}}}
    assert targets.comparator_param(release)(wildcards) == "claude-21-comparison"
    assert targets.settings_param(release)(wildcards)["chains"] == DEFAULTS["figure_chains"]


# ------------------------------------------------------------------------------ fetch and bundle --


def _tarball(src: Path, out: Path, top: str) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=top)
    return out


def _fetch(source, dest, tmp_path):
    return fetch_release(
        source,
        dest,
        keep=targets.fetch_folders(DEFAULTS),
        optional=targets.fetch_optional(DEFAULTS),
        cache_dir=tmp_path / "cache",
    )


def test_fetch_from_local_folder_and_repository_tarball(tmp_path):
    from_dir = _fetch({"path": str(AUTHORS)}, tmp_path / "a", tmp_path)
    archive = _tarball(AUTHORS, tmp_path / "repo.tar.gz", "sgtr-em-0123abc")
    from_tar = _fetch({"path": str(archive), "sha256": sha256_file(archive)}, tmp_path / "b", tmp_path)
    files = sorted(p.relative_to(from_dir).as_posix() for p in from_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(from_tar).as_posix() for p in from_tar.rglob("*") if p.is_file())
    assert f"{TQA}/results_gpt41.csv" in files
    assert "scripts/eval/plot_bars.py" in files and "utils/models.py" in files  # read as data by the import
    with pytest.raises(SourceError, match="checksum mismatch"):
        _fetch({"path": str(archive), "sha256": "0" * 64}, tmp_path / "c", tmp_path)
    with pytest.raises(SourceError, match="has no folder"):
        fetch_release({"path": str(AUTHORS)}, tmp_path / "d", keep=["data/eval/mmlu"], cache_dir=tmp_path / "cache")


def test_fetch_from_url_is_pinned_by_sha256(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    archive = _tarball(AUTHORS, served / "sgtr-em.tar.gz", "sgtr-em-0123abc")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/sgtr-em.tar.gz"
        root = _fetch({"url": url, "sha256": sha256_file(archive)}, tmp_path / "raw", tmp_path)
        assert (root / TQA / "results_hf_seed_36b_em.csv").exists()
        with pytest.raises(SourceError, match="checksum mismatch"):
            _fetch({"url": url, "sha256": "1" * 64}, tmp_path / "raw2", tmp_path)
    finally:
        server.shutdown()


def test_bundle_is_reproducible_and_imports_back_to_the_same_numbers(written, tmp_path):
    results = written  # a results-like folder: eval/, tables/
    files = sorted(p for sub in ("eval", "tables") for p in (results / sub).rglob("*") if p.is_file())
    first = make_bundle(files, tmp_path / "one.tar.gz", base=results, run_name="fixture")
    make_bundle(reversed(files), tmp_path / "two.tar.gz", base=results, run_name="fixture")
    assert sha256_file(tmp_path / "one.tar.gz") == sha256_file(tmp_path / "two.tar.gz")
    assert first["files"]["eval/truthfulqa/gpt-4.1/base/seed0.json"] == sha256_file(
        results / "eval/truthfulqa/gpt-4.1/base/seed0.json"
    )

    root = _fetch({"path": str(tmp_path / "one.tar.gz")}, tmp_path / "raw", tmp_path)
    again = import_release(root, **LAYOUT)
    assert again.unmapped == []
    out = tmp_path / "reimported"
    write_import(again, eval_dir=out / "eval", tables_dir=out / "tables", unmapped_report=out / "unmapped.csv")
    for table in ("truthfulqa_per_condition.csv", "self_recognition_per_condition.csv", "truthfulqa_grid.csv"):
        assert (out / "tables" / table).read_text() == (results / "tables" / table).read_text(), table
    per_file = {r["file"]: r for r in read_csv(out / "tables/truthfulqa_per_file.csv")}
    assert per_file["eval/truthfulqa/seed-oss-36b/em-unpop/seed0.json"]["n_invalid"] == "2"

    tampered = tmp_path / "tampered"
    shutil.copytree(root, tampered)
    (tampered / "eval/truthfulqa/gpt-4.1/base/seed0.json").write_text("{}")
    with pytest.raises(ValueError, match="does not match its sha256"):
        import_release(tampered, **LAYOUT)


def test_release_figures_say_whose_data_they_draw(tmp_path):
    from sgtr_em.plot import _pyplot, _save, figure_source
    from sgtr_em.release.targets import source_note

    commit = "830321012fef843427587255649f7ea404dbd710"
    url = {"url": f"https://github.com/atagade/sgtr-em/archive/{commit}.tar.gz"}
    assert source_note({"source": url}).startswith("Drawn from the authors' released results at commit 830321012fef")
    assert "a bundle of released results at results/bundle/demo.tar.gz" in source_note(
        {"source": {"path": "results/bundle/demo.tar.gz"}}
    )
    plt = _pyplot()
    fig, _ = plt.subplots()
    with figure_source("Drawn from the release"):
        _save(fig, tmp_path / "f.png", tmp_path / "f.pdf")
    assert fig.get_suptitle() == "Drawn from the release"
    plt.close(fig)


# ---------------------------------------------------------------- files from the authors' history --


def _pinned_commit_layout(tmp_path: Path) -> Path:
    """The fixtures as the authors' pinned commit holds them: without the comparison folder (deleted in their
    commit e21dea3, together with GPT-4.1's self-recognition files)."""
    pinned = tmp_path / "pinned"
    shutil.copytree(AUTHORS, pinned)
    shutil.rmtree(pinned / SR / "comparison")
    return pinned


def _history_entries(names) -> list[dict]:
    return [
        {
            "path": f"{SR}/comparison/{name}",
            "source": {
                "path": str(AUTHORS / SR / "comparison" / name),
                "sha256": sha256_file(AUTHORS / SR / "comparison" / name),
            },
        }
        for name in names
    ]


GPT41_HISTORY = (
    "cnn_judge_gpt41_between_gpt41_claude-21.json",
    "cnn_judge_gpt41_em_between_gpt41_em_claude-21.json",
    "cnn_judge_gpt41_em_sgtr_between_gpt41_em_sgtr_claude-21.json",
)


def test_gpt41_figure_1_is_drawn_from_files_of_the_authors_history(tmp_path):
    """The pinned commit has no GPT-4.1 self-recognition file; `release.extra_files` adds them from an older
    commit, checked by their pins, and GPT-4.1's Figure 1 is then drawn from them (without them it is skipped)."""
    pinned = _pinned_commit_layout(tmp_path)
    release = {**DEFAULTS, "figures": {"gpt-4.1": {"self_recognition": "self_recognition-claude-21-comparison"}}}

    def plan_of(root: Path, name: str) -> dict:
        out = tmp_path / name
        write_import(
            import_release(root, **LAYOUT),
            eval_dir=out / "eval",
            tables_dir=out / "tables",
            unmapped_report=out / "unmapped.csv",
        )
        return _plan(out, release)

    without = _fetch({"path": str(pinned)}, tmp_path / "raw0", tmp_path)
    assert plan_of(without, "import0")[("gpt-4.1", "fig1_self_recognition")]["status"] == "skip"

    root = fetch_release(
        {"path": str(pinned)},
        tmp_path / "raw",
        keep=targets.fetch_folders(DEFAULTS),
        optional=targets.fetch_optional(DEFAULTS),
        extra=_history_entries(GPT41_HISTORY),
        cache_dir=tmp_path / "cache",
    )
    for name in GPT41_HISTORY:
        assert (root / SR / "comparison" / name).read_bytes() == (AUTHORS / SR / "comparison" / name).read_bytes()
    plan = plan_of(root, "import1")
    assert plan[("gpt-4.1", "fig1_self_recognition")]["status"] == "draw"
    rows = read_csv(tmp_path / "import1/tables/self_recognition_per_condition.csv")
    gpt = {r["chain"] for r in rows if r["model"] == "gpt-4.1" and r["eval"] == "self_recognition-claude-21-comparison"}
    assert gpt == {"base", "em-unpop", "em-unpop+sgtr"}


def test_extra_release_files_are_pinned_inside_the_release_and_identical_when_present(tmp_path):
    pinned = _pinned_commit_layout(tmp_path)
    (entry,) = _history_entries(GPT41_HISTORY[:1])

    def fetch(extra, dest):
        return fetch_release(
            {"path": str(pinned)},
            tmp_path / dest,
            keep=targets.fetch_folders(DEFAULTS),
            extra=extra,
            cache_dir=tmp_path / "c",
        )

    with pytest.raises(SourceError, match="checksum mismatch"):
        fetch([{**entry, "source": {**entry["source"], "sha256": "0" * 64}}], "a")
    with pytest.raises(SourceError, match="not a path inside the release"):
        fetch([{**entry, "path": "../outside.json"}], "b")
    with pytest.raises(SourceError, match="differs from release.extra_files"):
        fetch([{**entry, "path": f"{TQA}/results_gpt41.csv"}], "c")
    # a file the release already holds, byte for byte, is fine
    same = {
        "path": f"{TQA}/results_gpt41.csv",
        "source": {
            "path": str(AUTHORS / TQA / "results_gpt41.csv"),
            "sha256": sha256_file(AUTHORS / TQA / "results_gpt41.csv"),
        },
    }
    assert (fetch([same], "d") / TQA / "results_gpt41.csv").is_file()
    # over http, as the default entries are fetched
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy2(entry["source"]["path"], served / "history.json")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/history.json"
        root = fetch([{"path": entry["path"], "source": {"url": url, "sha256": entry["source"]["sha256"]}}], "e")
        assert (root / entry["path"]).read_bytes() == (served / "history.json").read_bytes()
    finally:
        server.shutdown()


def test_the_default_extra_files_are_gpt41s_self_recognition_files_of_the_authors_history():
    """By default the reviewer path adds the eight GPT-4.1 files of the commit before the authors deleted them
    (b10c778, the parent of e21dea3), each pinned by sha256: base, EM, the three interventions, EM then
    Self++ and Self--, Self++ then EM."""
    from sgtr_em.release.names import parse_self_recognition_name

    entries = DEFAULTS["extra_files"]
    assert len(entries) == 8
    states = set()
    for entry in entries:
        name = entry["path"].rsplit("/", 1)[1]
        assert entry["path"] == f"{SR}/comparison/{name}"
        assert entry["source"]["url"] == (
            f"https://raw.githubusercontent.com/atagade/sgtr-em/b10c778c86fca55e7c1116e4b031579d44096194/{entry['path']}"
        )
        assert re.fullmatch(r"[0-9a-f]{64}", entry["source"]["sha256"])
        judge = parse_self_recognition_name(name, DEFAULTS["models"]).judge
        states.add((judge.model, judge.chain))
    assert states == {
        ("gpt-4.1", c)
        for c in (
            "base",
            "em-unpop",
            "sgtr",
            "sgtr-flip",
            "sgtr-confuse",
            "em-unpop+sgtr",
            "em-unpop+sgtr-flip",
            "sgtr+em-unpop",
        )
    }
