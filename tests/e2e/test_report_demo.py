"""The HTML report of the finished demo: every figure and table with its caption, and the results summary."""

from __future__ import annotations


def test_demo_report_has_every_figure_and_table_with_captions(demo):
    from conftest import snakemake

    result = snakemake(demo, "--report", "report.html", "--configfile", "config/demo.yaml", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (demo / "report.html").read_text()
    for name in (
        "fig1_self_recognition",
        "fig2_truthfulqa",
        "fig3a_prevention",
        "fig3b_reversal",
        "training_curves.png",
        "truthfulqa_summary.csv",
        "results_summary.html",
    ):
        assert name in html, name
    assert "Training curves: loss per step" in html
    assert "reproduces paper Fig. 1" in html and "Prevention (reproduces paper Fig. 3a)" in html
    assert (demo / "results/report/results_summary.md").read_text().startswith("# Results summary")
