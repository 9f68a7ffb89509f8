"""The paper's claims on the finished demo: the tiny models reproduce the self-recognition claims and none of the
misalignment ones, and no figure of the run embeds a Type 3 font."""

from __future__ import annotations

from conftest import pdf_font_types

from sgtr_em.claims import INCONCLUSIVE, REPRODUCED, SEEDS_AND_ITEMS, read_claims


def test_demo_reproduces_the_self_recognition_claims_and_not_the_misalignment_ones(demo):
    """The tiny models learn Self++ and Self-- (reproduced, with intervals); EM on a hundred chats gives them no
    misalignment signal, so no misalignment claim may come out reproduced."""
    rows = {r["claim_id"]: r for r in read_claims(demo / "results/claims/demo-target.csv")}
    for claim_id in ("sgtr-raises-self-recognition", "sgtr-flip-lowers-self-recognition"):
        row = rows[claim_id]
        assert row["verdict"] == REPRODUCED, row
        assert row["ci_low"] < row["effect"] < row["ci_high"] and row["resampling"] == SEEDS_AND_ITEMS
    for claim_id in ("em-raises-truthfulqa", "em-raises-em-judge", "sgtr-prevents-em", "sgtr-reverses-em"):
        assert rows[claim_id]["verdict"] != REPRODUCED, rows[claim_id]
    # EM makes the tiny model stop answering with a letter: TruthfulQA's misalignment rises for that alone,
    # and the claim says so instead of counting it.
    em = rows["em-raises-truthfulqa"]
    if em["invalid_rate_treatment"] > em["max_invalid_rate"]:
        assert em["verdict"] == INCONCLUSIVE and "outside the answer format" in em["reason"], em
    summary = (demo / "results/report/results_summary.md").read_text()
    assert summary.index("## Claims") < summary.index("## demo-target")
    assert (demo / "results/claims/demo-target.png").stat().st_size > 10000


def test_no_figure_of_the_demo_embeds_a_type3_font(demo):
    pdfs = sorted((demo / "results").glob("**/*.pdf"))
    assert len(pdfs) >= 9
    for pdf in pdfs:
        fonts = pdf_font_types(pdf)
        assert fonts and "Type3" not in fonts, (pdf, fonts)
