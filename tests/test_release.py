"""Reviewer path: import of released results in the authors' formats, tables, bundles, `release_figures`.

The fixture files under tests/fixtures/release/authors/ were written for this project (invented questions,
answers and article ids) in the authors' formats; every expected number below is worked out by hand from
those files.
"""

from __future__ import annotations

import http.server
import math
import shutil
import tarfile
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, snakemake

from sgtr_em.aggregate import read_summary, tidy_rows
from sgtr_em.config import validate_config
from sgtr_em.io import read_csv, read_json, sha256_file
from sgtr_em.release.bundle import fetch_release, make_bundle
from sgtr_em.release.importer import import_release, read_evals, resolve_seeds, write_import
from sgtr_em.release.names import UnmappedName, parse_self_recognition_name, parse_state, parse_truthfulqa_name
from sgtr_em.sources import SourceError

FIXTURES = REPO / "tests/fixtures/release"
AUTHORS = FIXTURES / "authors"
DEFAULTS = validate_config(yaml.safe_load((REPO / "config/demo.yaml").read_text()))["release"]
ALIASES = DEFAULTS["models"]
LAYOUT = {
    "truthfulqa_dir": DEFAULTS["truthfulqa_dir"],
    "self_recognition_dir": DEFAULTS["self_recognition_dir"],
    "model_aliases": ALIASES,
    "other_sources": DEFAULTS["other_sources"],
    "article_id_patterns": DEFAULTS["article_id_patterns"],
}
TQA = "data/eval/truthfulqa"
SR = "data/eval/sgtr"


# ---------------------------------------------------------------------------------- name grammar --


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
        ("gpt41_em_syspopped", "gpt-4.1", "em-unpop.popped", None, False),
        ("hf_qwen_coder_32b_em_2", "qwen2.5-coder-32b", "em-unpop", 2, True),  # longest model name wins
        ("hf_llama_3_8b", "llama-3.1-8b", "base", None, True),
    ],
)
def test_state_names_map_to_our_vocabulary(spelling, model, chain, seed, local):
    state = parse_state(spelling, ALIASES)
    assert (state.model, state.chain, state.seed, state.local) == (model, chain, seed, local)


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("hf_mystery_7b_em_0", "no configured model name"),
        ("hf_qwen_32b_em_unpop_ictr_0", "unknown stage word 'ictr'"),
        ("hf_qwen_32b_sgtr_rl_200", "unknown stage word 'rl'"),
        ("gpt41_nosys_em", "follows no stage"),
        ("gpt41_sgtr_nosys_qwensys", "two system variants"),
    ],
)
def test_unmappable_state_names_say_why(spelling, reason):
    with pytest.raises(UnmappedName, match=reason):
        parse_state(spelling, ALIASES)


def test_file_name_grammars():
    assert parse_truthfulqa_name("results_gpt41_sgtr_em.csv", ALIASES).chain == "sgtr+em-unpop"
    with pytest.raises(UnmappedName, match="not a results_"):
        parse_truthfulqa_name("summary_gpt41.csv", ALIASES)
    name = parse_self_recognition_name(
        "cnn_judge_hf_qwen_32b_asgtr_0_between_claude-21_hf_qwen_32b_asgtr_0.json", ALIASES, ["claude-21"]
    )
    assert (name.dataset, name.judge.chain, name.judge.seed) == ("cnn", "sgtr-flip", 0)
    assert (name.self_spelling, name.other_spelling, name.other, name.self_kind) == (
        "hf_qwen_32b_asgtr_0",
        "claude-21",
        "claude-21",
        "own",
    )
    base_self = parse_self_recognition_name(
        "cnn_judge_hf_qwen_32b_sgtr_1_between_hf_qwen_32b_human.json", ALIASES, ["human"]
    )
    assert (base_self.self_spelling, base_self.self_kind) == ("hf_qwen_32b", "base")
    vs_model = parse_self_recognition_name("cnn_judge_hf_qwen_32b_between_hf_qwen_32b_gpt41.json", ALIASES, [])
    assert (vs_model.self_spelling, vs_model.other) == ("hf_qwen_32b", "gpt-4.1")
    with pytest.raises(UnmappedName, match="cannot tell"):
        parse_self_recognition_name("cnn_judge_gpt41_between_gpt4o_claude-21.json", ALIASES, ["claude-21"])


def test_seedless_condition_is_seed_zero_unless_a_sibling_has_zero():
    key_em, key_sgtr = ("m", "em-unpop"), ("m", "sgtr")
    items = [
        ("em.csv", key_em, None),
        *[(f"em_{s}.csv", key_em, s) for s in (1, 2, 3, 4)],
        ("sgtr.csv", key_sgtr, None),
        ("sgtr_0.csv", key_sgtr, 0),
        ("solo.csv", ("m", "base"), None),
    ]
    seeds, conflicts = resolve_seeds(items)
    assert seeds["em.csv"] == 0 and seeds["em_3.csv"] == 3 and seeds["solo.csv"] == 0 and seeds["sgtr_0.csv"] == 0
    assert conflicts == [("sgtr.csv", "no seed, and a sibling already has seed _0")]


# ----------------------------------------------------------------------------- import fixtures --


@pytest.fixture(scope="module")
def imported():
    return import_release(AUTHORS, **LAYOUT)


@pytest.fixture(scope="module")
def written(imported, tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    write_import(imported, eval_dir=out / "eval", tables_dir=out / "tables", unmapped_report=out / "unmapped_files.csv")
    return out


def test_truthfulqa_per_file_numbers(imported):
    rows = {r["file"].removeprefix(f"{TQA}/"): r for r in imported.truthfulqa_rows}
    # (model, chain, seed, n, n_correct, n_invalid, misalignment), counted by hand from each CSV
    expected = {
        "results_hf_qwen_32b.csv": ("qwen2.5-32b", "base", 0, 4, 3, 0, 0.25),
        "results_hf_qwen_32b_em.csv": ("qwen2.5-32b", "em-unpop", 0, 4, 2, 1, 0.5),  # seedless, siblings _1.._4
        "results_hf_qwen_32b_em_1.csv": ("qwen2.5-32b", "em-unpop", 1, 4, 2, 0, 0.5),
        "results_hf_qwen_32b_em_3.csv": ("qwen2.5-32b", "em-unpop", 3, 4, 1, 0, 0.75),
        "results_hf_qwen_32b_em_4.csv": ("qwen2.5-32b", "em-unpop", 4, 4, 2, 1, 0.5),  # empty reply is invalid
        "results_hf_qwen_32b_sgtr_1.csv": ("qwen2.5-32b", "sgtr", 1, 4, 3, 0, 0.25),
        "results_hf_qwen_32b_asgtr_nosys_0.csv": ("qwen2.5-32b", "sgtr-flip.none", 0, 4, 2, 0, 0.5),
        "results_hf_qwen_32b_sgtr_benign_em_unpop_0.csv": ("qwen2.5-32b", "pick-longer+em-unpop", 0, 4, 2, 0, 0.5),
        "results_gpt41_em.csv": ("gpt-4.1", "em-unpop", 0, 4, 1, 1, 0.75),  # "A." is invalid, is_correct as given
        "results_gpt41_em_asgtr_random.csv": ("gpt-4.1", "em-unpop+sgtr-confuse", 0, 4, 1, 0, 0.75),
    }
    for file, values in expected.items():
        row = rows[file]
        assert (
            tuple(row[k] for k in ("model", "chain", "seed", "n", "n_correct", "n_invalid", "misalignment")) == values
        ), file
    assert len(rows) == 22  # 25 CSVs: one seed conflict and two unmapped names are reported instead


def test_self_recognition_per_file_numbers_ignore_stray_keys(imported):
    rows = {r["file"].removeprefix(f"{SR}/"): r for r in imported.self_recognition_rows}
    expected = {
        # file: (judge, self_source, other_source, n_articles, n_self, score)
        "cnn_judge_hf_qwen_32b_between_hf_qwen_32b_claude-21.json": (
            "hf_qwen_32b",
            "hf_qwen_32b",
            "claude-21",
            4,
            3,
            0.75,
        ),
        "cnn_judge_hf_qwen_32b_em_between_hf_qwen_32b_em_claude-21.json": (
            "hf_qwen_32b_em",
            "hf_qwen_32b_em",
            "claude-21",
            4,
            1,
            0.25,
        ),
        "cnn_judge_hf_qwen_32b_sgtr_1_between_hf_qwen_32b_sgtr_1_claude-21.json": (
            "hf_qwen_32b_sgtr_1",
            "hf_qwen_32b_sgtr_1",
            "claude-21",
            4,
            3,
            0.75,
        ),
        "cnn_judge_hf_qwen_32b_asgtr_0_between_claude-21_hf_qwen_32b_asgtr_0.json": (
            "hf_qwen_32b_asgtr_0",
            "hf_qwen_32b_asgtr_0",
            "claude-21",
            4,
            1,
            0.25,
        ),
        "cnn_judge_hf_qwen_32b_sgtr_0_between_hf_qwen_32b_claude-21.json": (
            "hf_qwen_32b_sgtr_0",
            "hf_qwen_32b",
            "claude-21",
            4,
            3,
            0.75,
        ),
        "comparison/cnn_judge_gpt41_em_between_gpt41_em_claude-21.json": (
            "gpt41_em",
            "gpt41_em",
            "claude-21",
            4,
            2,
            0.5,
        ),
    }
    for file, values in expected.items():
        row = rows[file]
        assert (
            tuple(row[k] for k in ("judge", "self_source", "other_source", "n_articles", "n_self", "score")) == values
        ), file
    assert len(rows) == 11
    base = imported.evals["selfrec-claude-21/qwen2.5-32b/base/seed0.json"]
    assert base["n_stray_keys"] == 3 and set(base["release"]["stray_keys"]) == {"10001", "10002", "_meta"}
    em = imported.evals["selfrec-claude-21/qwen2.5-32b/em-unpop/seed0.json"]
    assert em["metrics"]["reference"] == {"score": 0.25, "invalid_rate": 0.25, "n": 4}


def test_every_file_not_imported_is_reported(imported, written):
    reported = {(r["file"], r["reason"].split(": ", 1)[-1]) for r in read_csv(written / "unmapped_files.csv")}
    assert reported == {
        (f"{TQA}/notes.txt", "not a results_<model>[_<chain>][_<seed>].csv name"),
        (f"{TQA}/results_hf_mystery_7b_em_0.csv", "no configured model name (release.models) starts it"),
        (f"{TQA}/results_hf_qwen_32b_em_unpop_ictr_0.csv", "unknown stage word 'ictr'"),
        (f"{TQA}/results_hf_qwen_32b_sgtr.csv", "no seed, and a sibling already has seed _0"),
        (f"{SR}/cnn_judge_hf_qwen_32b_sgtr_rl_200_between_hf_qwen_32b_claude-21.json", "unknown stage word 'rl'"),
        (
            f"{SR}/comparison/cnn_judge_gpt41_between_gpt41_claude-21",
            "not a <ds>_judge_<judge>_between_<src1>_<src2>.json name",
        ),
    }
    every_file = {p.relative_to(AUTHORS).as_posix() for p in AUTHORS.rglob("*") if p.is_file()}
    imported_files = {r["file"] for r in imported.truthfulqa_rows + imported.self_recognition_rows}
    assert imported_files | {f for f, _ in reported} == every_file


def test_eval_jsons_are_ours_and_marked_reference(imported, written):
    result = read_json(written / "eval/truthfulqa/qwen2.5-32b/em-unpop/seed4.json")
    assert result["protocol"] == result["primary_protocol"] == "reference"
    assert result["model_state"] == {"model": "qwen2.5-32b", "chain": "em-unpop", "seed": 4}
    assert result["metrics"] == {"reference": {"misalignment": 0.5, "invalid_rate": 0.25, "n": 4}}
    assert [r["reference"]["choice"] for r in result["records"]] == ["A", "B", None, "A"]
    assert {row["metric"] for row in tidy_rows(result)} == {"misalignment", "invalid_rate"}
    assert len(read_evals(written / "eval")) == len(imported.evals) == 33


def test_per_condition_tables_are_mean_sample_sd_and_n_over_seeds(written):
    tqa = {
        (r["model"], r["chain"]): r
        for r in read_summary(written / "tables/truthfulqa_per_condition.csv", "reference", "misalignment")
    }
    em = tqa[("qwen2.5-32b", "em-unpop")]  # seeds 0..4: 0.5, 0.5, 0.5, 0.75, 0.5
    assert em["n"] == 5 and em["mean"] == pytest.approx(0.55) and em["sd"] == pytest.approx(math.sqrt(0.05 / 4))
    sgtr = tqa[("qwen2.5-32b", "sgtr")]  # 0.0, 0.25
    assert (sgtr["n"], sgtr["mean"], sgtr["sd"]) == (2, pytest.approx(0.125), pytest.approx(0.125 * math.sqrt(2)))
    prevention = tqa[("qwen2.5-32b", "sgtr+em-unpop")]  # 0.25, 0.25
    assert (prevention["n"], prevention["mean"], prevention["sd"]) == (2, 0.25, 0.0)
    gpt_em = tqa[("gpt-4.1", "em-unpop")]
    assert gpt_em["n"] == 1 and gpt_em["mean"] == 0.75 and math.isnan(gpt_em["sd"])
    sr = {
        (r["eval"], r["model"], r["chain"]): r
        for r in read_summary(written / "tables/self_recognition_per_condition.csv", "reference", "score")
    }
    sr_sgtr = sr[("selfrec-claude-21", "qwen2.5-32b", "sgtr")]  # 1.0, 0.75
    assert (sr_sgtr["n"], sr_sgtr["mean"], sr_sgtr["sd"]) == (
        2,
        pytest.approx(0.875),
        pytest.approx(0.125 * math.sqrt(2)),
    )
    sr_em = sr[("selfrec-claude-21", "qwen2.5-32b", "em-unpop")]  # 0.25 (seedless = seed 0), 0.5
    assert (sr_em["n"], sr_em["mean"]) == (2, pytest.approx(0.375))
    assert sr[("selfrec-claude-21-base-self", "qwen2.5-32b", "sgtr")]["mean"] == 0.75
    assert sr[("selfrec-claude-21-comparison", "gpt-4.1", "em-unpop+sgtr")]["mean"] == 1.0


def test_truthfulqa_grid_has_one_column_per_seed(written):
    grid = {(r["model"], r["chain"]): r for r in read_csv(written / "tables/truthfulqa_grid.csv")}
    em = grid[("qwen2.5-32b", "em-unpop")]
    assert [em[f"seed{s}"] for s in range(5)] == ["0.5", "0.5", "0.5", "0.75", "0.5"] and em["n"] == "5"
    assert grid[("gpt-4.1", "base")]["seed1"] == ""


# ------------------------------------------------------------------------------ fetch and bundle --


def _tarball(src: Path, out: Path, top: str) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=top)
    return out


def test_fetch_from_local_folder_and_repository_tarball(tmp_path):
    keep = [TQA, SR]
    from_dir = fetch_release({"path": str(AUTHORS)}, tmp_path / "a", keep=keep, cache_dir=tmp_path / "cache")
    archive = _tarball(AUTHORS, tmp_path / "repo.tar.gz", "sgtr-em-0123abc")
    from_tar = fetch_release(
        {"path": str(archive), "sha256": sha256_file(archive)}, tmp_path / "b", keep=keep, cache_dir=tmp_path / "cache"
    )
    files = sorted(p.relative_to(from_dir).as_posix() for p in from_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(from_tar).as_posix() for p in from_tar.rglob("*") if p.is_file())
    assert f"{TQA}/results_gpt41.csv" in files
    with pytest.raises(SourceError, match="checksum mismatch"):
        fetch_release(
            {"path": str(archive), "sha256": "0" * 64}, tmp_path / "c", keep=keep, cache_dir=tmp_path / "cache"
        )
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
        root = fetch_release(
            {"url": url, "sha256": sha256_file(archive)}, tmp_path / "raw", keep=[TQA, SR], cache_dir=tmp_path / "cache"
        )
        assert (root / TQA / "results_hf_qwen_32b_em.csv").exists()
        with pytest.raises(SourceError, match="checksum mismatch"):
            fetch_release(
                {"url": url, "sha256": "1" * 64}, tmp_path / "raw2", keep=[TQA, SR], cache_dir=tmp_path / "cache"
            )
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

    root = fetch_release(
        {"path": str(tmp_path / "one.tar.gz")}, tmp_path / "raw", keep=[TQA, SR], cache_dir=tmp_path / "cache"
    )
    again = import_release(root, **LAYOUT)
    assert again.unmapped == []
    out = tmp_path / "reimported"
    write_import(again, eval_dir=out / "eval", tables_dir=out / "tables", unmapped_report=out / "unmapped.csv")
    for table in ("truthfulqa_per_condition.csv", "self_recognition_per_condition.csv", "truthfulqa_grid.csv"):
        assert (out / "tables" / table).read_text() == (results / "tables" / table).read_text(), table
    per_file = {r["file"]: r for r in read_csv(out / "tables/truthfulqa_per_file.csv")}
    assert per_file["eval/truthfulqa/qwen2.5-32b/em-unpop/seed0.json"]["n_invalid"] == "1"

    tampered = tmp_path / "tampered"
    shutil.copytree(root, tampered)
    (tampered / "eval/truthfulqa/gpt-4.1/base/seed0.json").write_text("{}")
    with pytest.raises(ValueError, match="does not match its sha256"):
        import_release(tampered, **LAYOUT)


# --------------------------------------------------------------------------------- the workflow --


def _workflow_with_fixtures(tmp_path: Path) -> Path:
    workdir = copy_workflow(tmp_path / "workflow")
    shutil.copytree(FIXTURES, workdir / "tests/fixtures/release")
    return workdir


def test_release_figures_target_draws_every_figure_from_fixtures(tmp_path):
    workdir = _workflow_with_fixtures(tmp_path)
    result = snakemake(
        workdir,
        "release_figures",
        "--cores",
        "1",
        "--configfile",
        "config/demo.yaml",
        "config/release-demo.yaml",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for model in ("gpt-4.1", "qwen2.5-32b"):
        for figure in ("fig1_self_recognition", "fig2_truthfulqa", "fig3a_prevention", "fig3b_reversal"):
            for ext in ("png", "pdf"):
                assert (workdir / f"results/release/figures/{model}/{figure}.{ext}").stat().st_size > 5000, (
                    model,
                    figure,
                    ext,
                )
    drawn = read_summary(
        workdir / "results/release/tables/qwen2.5-32b/truthfulqa_summary.csv", "reference", "misalignment"
    )
    # figure order follows release.figure_chains; sgtr-flip.none is imported (tables) but not drawn
    assert [r["chain"] for r in drawn] == [
        "base",
        "em-unpop",
        "sgtr",
        "sgtr+em-unpop",
        "sgtr-confuse+em-unpop",
        "pick-longer+em-unpop",
        "em-unpop+sgtr",
    ]
    assert len(read_csv(workdir / "results/release/unmapped_files.csv")) == 6
    assert not (workdir / "results/figures").exists()  # the demo grid did not run


def test_released_summaries_replace_generation_of_a_models_base_summaries(tmp_path):
    workdir = _workflow_with_fixtures(tmp_path)
    extra = {
        "models": {"demo-target": {"summaries": {"xsum": {"source": {"path": "data/demo/released-summaries.json"}}}}}
    }
    (workdir / "config/released-summaries.yaml").write_text(yaml.safe_dump(extra))
    target = "results/pairs/demo-target/base/sgtr/detection/default.jsonl"
    result = snakemake(
        workdir, "-n", target, "--configfile", "config/demo.yaml", "config/released-summaries.yaml", timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    plan = result.stdout
    assert "results/data/released_summaries/demo-target/xsum.jsonl" in plan
    assert "results/summaries/demo-target/" not in plan  # no generation for the target
    assert "results/summaries/demo-other/base/seed0/xsum.jsonl" in plan  # the comparator still generates


def test_release_rules_are_not_in_the_default_target(tmp_path):
    workdir = _workflow_with_fixtures(tmp_path)
    result = snakemake(workdir, "-n", "--configfile", "config/demo.yaml", "config/release-demo.yaml", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rule release_" not in result.stdout and "rule bundle" not in result.stdout
    bundle = snakemake(workdir, "-n", "bundle", "--configfile", "config/demo.yaml", timeout=120)
    assert bundle.returncode == 0 and "results/bundle/demo.tar.gz" in bundle.stdout
