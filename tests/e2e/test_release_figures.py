"""The reviewer path end to end on the fixtures (the released results in the authors' formats under
tests/fixtures/release/, described in tests/unit/test_release.py): `release_figures` draws what they hold,
logs each skip, checks the claims and ends with their headline; the report holds it all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import copy_workflow, snakemake
from release_fixtures import FIGURES, FIXTURES

from sgtr_em.aggregate import read_summary
from sgtr_em.io import read_csv


def _workflow_with_fixtures(tmp_path: Path) -> Path:
    workdir = copy_workflow(tmp_path / "workflow")
    shutil.copytree(FIXTURES, workdir / "tests/fixtures/release")
    return workdir


def test_release_figures_draws_what_the_fixtures_hold_and_logs_each_skip(tmp_path):
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
    release = workdir / "results/release"
    for model, figures in (
        ("qwen2.5-32b", FIGURES),
        ("gpt-4.1", ("fig1_self_recognition", "fig2_truthfulqa", "fig3b_reversal")),
    ):
        for figure in figures:
            for ext in ("png", "pdf"):
                assert (release / f"figures/{model}/{figure}.{ext}").stat().st_size > 5000, (model, figure, ext)
    assert not (release / "figures/gpt-4.1/fig3a_prevention.png").exists()
    assert (release / "authors_figures/plot-bars-tqa-input-files.png").stat().st_size > 5000
    plan_log = (workdir / "logs/release/plan.log").read_text()
    assert "skip gpt-4.1/fig3a_prevention: no X→EM (prevention) condition of gpt-4.1" in plan_log
    assert "skip seed-oss-36b/fig1_self_recognition: the release holds no self-recognition result" in plan_log
    drawn = read_summary(release / "tables/qwen2.5-32b/truthfulqa_summary.csv", "reference", "misalignment")
    # figure order follows release.figure_chains
    assert [r["chain"] for r in drawn] == [
        "base",
        "em-unpop",
        "em-unpop.none",
        "sgtr",
        "sgtr+em-unpop",
        "em-unpop+sgtr",
    ]
    assert len(read_csv(release / "unmapped_files.csv")) == 6
    assert len(read_csv(release / "tables/truthfulqa_per_file.csv")) == 41
    # The demo's claims, checked on the released results of every model with a figure.
    claims = {r["claim_id"]: r for r in read_csv(release / "claims/qwen2.5-32b.csv")}
    assert claims["em-raises-truthfulqa"]["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert float(claims["em-raises-truthfulqa"]["paper_effect"]) == pytest.approx(0.226 - 0.148)
    assert claims["em-raises-em-judge"]["verdict"] == "not run"
    for model in ("qwen2.5-32b", "gpt-4.1", "seed-oss-36b"):
        assert (release / f"claims/{model}.pdf").stat().st_size > 5000, model
    assert not (workdir / "results/figures").exists()  # the demo grid did not run
    # The run ends with the claims' verdicts in one paragraph; the report holds the figures and claims.
    headline = result.stderr.rsplit("\n\n", 2)[-2]
    assert headline.startswith("The paper's claims on the authors' released results: gpt-4.1: "), result.stderr[-3000:]
    assert "qwen2.5-32b: " in headline and "results/release/claims/qwen2.5-32b.csv" in headline
    configs = ("--configfile", "config/demo.yaml", "config/release-demo.yaml")
    reported = snakemake(workdir, "release_figures", "--report", "results/release/report.html", *configs, timeout=300)
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert (release / "report.html").stat().st_size > 100_000
