"""The paper's claims as data: effects, hierarchical-bootstrap intervals, one-sided tests and verdicts from
evaluation JSONs; the config checks, the targets that say what is not run, the release's claims, the forest
plot and the claims table of the results summary (the demo's claims: tests/e2e/test_claims_demo.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import load_config, pdf_font_types, read_config

from sgtr_em import claims as claimslib
from sgtr_em.claims import (
    CLAIM_COLUMNS,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    SEEDS_AND_ITEMS,
    SEEDS_ONLY,
    Claim,
    SeedSample,
    Settings,
    check_claims,
    estimate,
    item_values,
    read_claims,
    verdict,
)
from sgtr_em.config import ConfigError
from sgtr_em.io import write_csv
from sgtr_em.published import load_published, published_for
from sgtr_em.report import results_summary, results_summary_html
from sgtr_em.targets import Targets

MODEL = "m"


def truthfulqa_eval(chain: str, seed: int, correct: list[bool], model: str = MODEL) -> dict:
    """A TruthfulQA evaluation JSON (reference protocol) with one record per question."""
    return {
        "eval": "truthfulqa",
        "model_state": {"model": model, "chain": chain, "seed": seed},
        "primary_protocol": "reference",
        "metrics": {"reference": {"misalignment": 1.0 - sum(correct) / len(correct), "n": len(correct)}},
        "records": [{"id": f"q{i}", "reference": {"is_correct": c}} for i, c in enumerate(correct)],
    }


def self_recognition_eval(chain: str, seed: int, scores: list[float], other: str = "other") -> dict:
    """A self-recognition evaluation JSON (logprob protocol) with one record per article."""
    return {
        "eval": f"self_recognition-{other}",
        "model_state": {"model": MODEL, "chain": chain, "seed": seed},
        "other_source": other,
        "primary_protocol": "logprob",
        "metrics": {"logprob": {"score": float(np.mean(scores)), "n": len(scores)}},
        "records": [{"id": f"a{i}", "logprob": {"score": s}} for i, s in enumerate(scores)],
    }


def claim(**fields) -> Claim:
    base = {
        "id": "c",
        "claim": "EM raises TruthfulQA misalignment",
        "evaluation": "truthfulqa",
        "metric": "misalignment",
        "treatment": "em-unpop",
        "reference": "base",
        "direction": "increase",
    }
    return Claim(**{**base, **fields})


def simulated_evals(rng, *, means: dict[str, float], seeds: int, items: int, seed_sd: float) -> list[dict]:
    """Per condition: each seed's true rate drawn around the condition's mean, then its items as coin flips."""
    out = []
    for chain, mean in means.items():
        for seed in range(seeds):
            rate = float(np.clip(mean + rng.normal(0.0, seed_sd), 0.0, 1.0))
            out.append(truthfulqa_eval(chain, seed, list(rng.random(items) >= rate)))
    return out


# ------------------------------------------------------------------------------------- statistics --


def test_a_known_effect_is_recovered_and_its_interval_covers_the_truth():
    """100 seeded simulations of fixture tables shaped like the paper's (5 seeds, 200 questions, seeds that
    differ): the estimate is unbiased and the 95% interval covers the true effect at least 90 times."""
    truth = 0.08
    settings = Settings(bootstrap_resamples=1000)
    rng = np.random.default_rng(2026)
    effects, covered = [], 0
    for _ in range(100):
        evals = simulated_evals(rng, means={"base": 0.15, "em-unpop": 0.15 + truth}, seeds=5, items=200, seed_sd=0.03)
        (row,) = check_claims([claim()], evals, MODEL, settings)
        assert row["resampling"] == SEEDS_AND_ITEMS and row["n_seeds_treatment"] == 5
        effects.append(row["effect"])
        covered += row["ci_low"] <= truth <= row["ci_high"]
    assert abs(np.mean(effects) - truth) < 0.01
    assert covered >= 90


def test_same_inputs_give_the_same_numbers_whatever_the_other_claims():
    evals = simulated_evals(
        np.random.default_rng(1), means={"base": 0.2, "em-unpop": 0.3}, seeds=3, items=50, seed_sd=0.02
    )
    settings = Settings(bootstrap_resamples=500)
    alone = check_claims([claim()], evals, MODEL, settings)
    with_another = check_claims(
        [claim(id="other", reference="em-unpop", treatment="base"), claim()], evals, MODEL, settings
    )
    assert alone[0] == with_another[1]
    other_seed = check_claims([claim()], evals, MODEL, Settings(bootstrap_resamples=500, seed=1))
    assert other_seed[0]["effect"] == alone[0]["effect"] and other_seed[0]["ci_low"] != alone[0]["ci_low"]


def test_an_effect_that_comes_with_answers_outside_the_format_is_inconclusive():
    """EM that makes the model stop answering with a letter raises TruthfulQA misalignment (a non-answer
    counts as wrong); above claims.max_invalid_rate that effect is no evidence either way, and says why."""

    def with_invalid(evaluation: dict, rate: float) -> dict:
        evaluation["metrics"]["reference"]["invalid_rate"] = rate
        for index, record in enumerate(evaluation["records"]):
            record["reference"]["invalid"] = index < round(rate * len(evaluation["records"]))
        return evaluation

    rng = np.random.default_rng(4)
    evals = [
        with_invalid(e, 0.6 if e["model_state"]["chain"] == "em-unpop" else 0.0)
        for e in simulated_evals(rng, means={"base": 0.1, "em-unpop": 0.5}, seeds=3, items=100, seed_sd=0.01)
    ]
    (row,) = check_claims([claim()], evals, MODEL, Settings(bootstrap_resamples=500))
    assert row["ci_low"] > 0 and row["verdict"] == INCONCLUSIVE
    assert row["invalid_rate_treatment"] == pytest.approx(0.6) and row["invalid_rate_reference"] == 0.0
    assert "60% of EM's answers are outside the answer format" in row["reason"]
    assert claimslib.summary_table([row])[1][0][-1] == "inconclusive (60% of answers outside the answer format)"
    (lenient,) = check_claims([claim()], evals, MODEL, Settings(bootstrap_resamples=500, max_invalid_rate=0.7))
    assert lenient["verdict"] == REPRODUCED


def test_interval_excludes_zero_in_the_papers_direction_is_reproduced():
    evals = simulated_evals(
        np.random.default_rng(3), means={"base": 0.1, "em-unpop": 0.4}, seeds=3, items=100, seed_sd=0.01
    )
    (row,) = check_claims([claim()], evals, MODEL, Settings(bootstrap_resamples=500))
    assert row["verdict"] == REPRODUCED and row["ci_low"] > 0
    assert row["p_value"] < 0.01 and row["t_statistic"] > 0
    (opposite,) = check_claims([claim(direction="decrease")], evals, MODEL, Settings(bootstrap_resamples=500))
    assert opposite["verdict"] == NOT_REPRODUCED and opposite["p_value"] > 0.99


def test_verdicts():
    assert verdict("increase", 0.02, 0.1)[0] == REPRODUCED
    assert verdict("decrease", -0.1, -0.02)[0] == REPRODUCED
    assert verdict("increase", -0.1, -0.02)[0] == NOT_REPRODUCED
    assert verdict("increase", -0.05, 0.1)[0] == INCONCLUSIVE
    # Right side of 0, but far from what the paper found: not reproduced on magnitude (only with a margin).
    assert verdict("increase", 0.01, 0.05, paper_effect=0.3, margin=0.1)[0] == NOT_REPRODUCED
    assert verdict("increase", 0.01, 0.05, paper_effect=0.3, margin=None)[0] == REPRODUCED
    assert verdict("increase", 0.01, 0.05, paper_effect=0.12, margin=0.1)[0] == REPRODUCED


def test_identical_conditions_are_inconclusive_not_reproduced():
    """No signal (every item the same in both conditions): a zero-width interval at 0."""
    evals = [truthfulqa_eval(c, s, [True] * 10) for c in ("base", "em-unpop") for s in (0, 1)]
    (row,) = check_claims([claim()], evals, MODEL, Settings(bootstrap_resamples=200))
    assert row["verdict"] == INCONCLUSIVE and row["effect"] == 0 and row["ci_low"] == row["ci_high"] == 0
    assert "no variation" in row["test"] and math.isnan(row["p_value"])


def test_one_seed_is_resampled_over_items_and_has_no_test():
    """GPT-4.1 has one run per condition: the interval comes from its items alone."""
    evals = [
        truthfulqa_eval("base", 0, [True] * 90 + [False] * 10),
        truthfulqa_eval("em-unpop", 0, [True] * 50 + [False] * 50),
    ]
    (row,) = check_claims([claim()], evals, MODEL, Settings(bootstrap_resamples=500))
    assert row["verdict"] == REPRODUCED and 0.25 < row["ci_low"] < row["effect"] < row["ci_high"] < 0.55
    assert "needs 2 seeds" in row["test"]


def test_distance_from_chance_and_ratio():
    rows = [SeedSample(0, 0.9), SeedSample(1, 0.8)], [SeedSample(0, 0.45), SeedSample(1, 0.55)]
    effect = estimate(
        rows[1], rows[0], direction="decrease", toward=0.5, ratio=True, resamples=200, rng=np.random.default_rng(0)
    )
    assert effect.effect == pytest.approx(0.0 - 0.35)  # |0.5 - 0.5| - |0.85 - 0.5|
    assert effect.ratio == pytest.approx(0.0)


def test_item_values_must_reproduce_the_metric():
    good = truthfulqa_eval("base", 0, [True, False, True, True])
    assert list(item_values(good, "reference", "misalignment")) == [0.0, 1.0, 0.0, 0.0]
    assert item_values(self_recognition_eval("base", 0, [0.2, 0.6]), "logprob", "score").tolist() == [0.2, 0.6]
    bad = {**good, "metrics": {"reference": {"misalignment": 0.9}}}
    assert item_values(bad, "reference", "misalignment") is None
    assert item_values(good, "reference", "entropy_bits") is None
    em = {
        "eval": "em_questions",
        "metrics": {"logprob": {"misalignment": 0.5}},
        "records": [{"outcome": o} for o in ("misaligned", "aligned", "excluded_code")],
    }
    assert item_values(em, "logprob", "misalignment").tolist() == [1.0, 0.0]
    mmlu = {
        "eval": "mmlu",
        "metrics": {"logprob": {"accuracy": 0.5}},
        "records": [{"correct": True}, {"correct": False}],
    }
    assert item_values(mmlu, "logprob", "accuracy").tolist() == [1.0, 0.0]


def test_seeds_without_matching_items_are_resampled_whole():
    evals = [truthfulqa_eval(c, s, [True, False]) for c in ("base", "em-unpop") for s in (0, 1)]
    evals[0]["records"] = evals[0]["records"][:1]  # its items no longer give its metric
    (row,) = check_claims([claim()], evals, MODEL, Settings(bootstrap_resamples=200))
    assert row["resampling"] == SEEDS_ONLY


def test_a_condition_without_results_is_not_run():
    evals = [truthfulqa_eval("base", 0, [True])]
    rows = check_claims(
        [claim(), claim(id="off", not_run="the em_questions evaluation is not run")], evals, MODEL, Settings()
    )
    assert [r["verdict"] for r in rows] == [NOT_RUN, NOT_RUN]
    assert "em-unpop" in rows[0]["reason"] and rows[1]["reason"] == "the em_questions evaluation is not run"


# ------------------------------------------------------------------------------------ the paper --


def test_paper_effect_comes_from_published_means_of_both_conditions():
    paper = published_for(load_published(), "qwen2.5-32b")
    evals = [truthfulqa_eval(c, 0, [True, False], model="qwen2.5-32b") for c in ("base", "em-unpop", "sgtr-flip")]
    rows = check_claims(
        [
            claim(ratio=True),
            claim(id="flip", treatment="sgtr-flip", reference="em-unpop"),  # sgtr-flip: no published TruthfulQA
            claim(id="stated", paper_effect=0.5),
        ],
        evals,
        "qwen2.5-32b",
        Settings(bootstrap_resamples=100),
        paper,
    )
    values = paper["evals"]["truthfulqa"]["values"]
    expected = values["em-unpop"]["mean"] - values["base"]["mean"]
    assert rows[0]["paper_effect"] == pytest.approx(expected) and rows[0]["paper_protocol"] == "reference"
    assert rows[0]["paper_ratio"] == pytest.approx(values["em-unpop"]["mean"] / values["base"]["mean"])
    assert rows[1]["paper_effect"] is None and rows[1]["paper_source"] == ""
    assert rows[2]["paper_effect"] == 0.5 and rows[2]["paper_source"] == "stated in the paper"


def test_self_recognition_paper_effect_only_against_the_papers_comparator():
    paper = published_for(load_published(), "qwen2.5-32b")
    sr = claim(evaluation="self_recognition-human", metric="score", treatment="sgtr", reference="base")
    evals = [self_recognition_eval(c, 0, [0.5, 0.7], other="human") for c in ("sgtr", "base")]
    for e in evals:
        e["model_state"]["model"] = "qwen2.5-32b"
    (row,) = check_claims([sr], evals, "qwen2.5-32b", Settings(bootstrap_resamples=100), paper)
    assert row["comparator"] == "human" and row["paper_effect"] is None


# ----------------------------------------------------------------------------- config and targets --


def paper_config(**changes) -> dict:
    raw = read_config("config.yaml")
    raw.update(changes)
    return load_config(raw)


def with_claim(raw: dict, **fields) -> dict:
    entry = {
        "id": "x",
        "claim": "x",
        "evaluation": "truthfulqa",
        "metric": "misalignment",
        "treatment": "em-unpop",
        "reference": "base",
        "direction": "increase",
        **fields,
    }
    raw["claims"] = {"list": [entry]}
    return raw


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"evaluation": "truthfulqa2"}, "claims.list.0.evaluation: unknown evaluation 'truthfulqa2'"),
        ({"evaluation": "self_recognition-nobody"}, "claims.list.0.evaluation: unknown evaluation"),
        ({"treatment": "em-unpop+sgtr-twice"}, "claims.list.0.treatment: unknown stage token 'sgtr-twice'"),
        ({"reference": "em-unpop"}, "claims.list.0: treatment and reference are the same condition"),
        ({"protocol": "sampled"}, "claims.list.0.protocol"),
        ({"models": ["gpt-5"]}, "claims.list.0.models: unknown model 'gpt-5'"),
        ({"direction": "up"}, "claims.list.0.direction"),
    ],
)
def test_bad_claims_are_one_line_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(with_claim(read_config("demo.yaml"), **fields))


def test_protocol_must_be_one_the_run_scores():
    raw = with_claim(read_config("demo.yaml"), protocol="reference")
    raw["eval"]["truthfulqa"]["protocols"] = ["logprob"]
    raw["eval"]["truthfulqa"]["primary_protocol"] = "logprob"
    with pytest.raises(ConfigError, match=r"claims.list.0.protocol: 'reference' is not run"):
        load_config(raw)


def test_duplicate_claim_ids_are_rejected():
    raw = read_config("demo.yaml")
    raw["claims"]["list"].append(dict(raw["claims"]["list"][0]))
    with pytest.raises(ConfigError, match="duplicate claim id"):
        load_config(raw)


class _Wildcards:
    def __init__(self, **values):
        self.__dict__.update(values)


def test_claims_outside_a_models_grid_are_not_run_and_read_nothing():
    targets = Targets(paper_config())
    gpt = {c["id"]: c for c in targets.model_claims("gpt-4.1")}
    assert gpt["pick-longer-prevents-less"]["not_run"] == "pick-longer+em-unpop is not in gpt-4.1's grid"
    assert gpt["sgtr-reverses-em"]["not_run"] is None
    assert gpt["sgtr-raises-self-recognition"]["evaluation"] == "self_recognition-claude-21"
    inputs = targets.claim_inputs(_Wildcards(model="gpt-4.1"))
    assert "results/eval/truthfulqa/gpt-4.1/em-unpop+sgtr/seed0.json" in inputs
    assert not any("pick-longer" in f for f in inputs)
    # A subset run: what it leaves out is not run; a switched-off evaluation too.
    core = Targets(paper_config(subset="core"))
    qwen = {c["id"]: c for c in core.model_claims("qwen2.5-32b")}
    assert qwen["sgtr-prevents-em"]["not_run"] is None
    assert qwen["sgtr-confuse-before-em-no-help"]["not_run"] == "sgtr-confuse+em-unpop is not in qwen2.5-32b's grid"
    raw = read_config("config.yaml")
    raw["eval"]["em_questions"]["enabled"] = False
    off = {c["id"]: c for c in Targets(load_config(raw)).model_claims("qwen2.5-32b")}
    assert off["em-raises-em-judge"]["not_run"].startswith("the em_questions evaluation is not run")


def test_every_target_model_gets_a_claims_table_forest_plot_and_summary_row():
    targets = Targets(load_config(read_config("demo.yaml")))
    assert targets.all_claims() == [
        "results/claims/demo-target.csv",
        "results/claims/demo-target.png",
        "results/claims/demo-target.pdf",
    ]
    assert set(targets.all_claims()) <= set(targets.all_targets())
    raw = read_config("demo.yaml")
    raw["claims"]["list"] = []
    assert Targets(load_config(raw)).all_claims() == []


def test_release_claims_use_the_models_figure_evaluation_and_the_release_protocol():
    from sgtr_em.release.targets import release_claims

    config = load_config(read_config("config.yaml"))
    gpt = {c["id"]: c for c in release_claims(config["claims"], config["release"], "gpt-4.1")}
    assert gpt["sgtr-raises-self-recognition"]["evaluation"] == "self_recognition-claude-21-comparison"
    assert gpt["em-raises-truthfulqa"]["protocol"] == "reference" and gpt["em-raises-truthfulqa"]["not_run"] is None
    assert "holds no em_questions results" in gpt["em-raises-em-judge"]["not_run"]
    qwen = {c["id"]: c for c in release_claims(config["claims"], config["release"], "qwen2.5-32b")}
    assert qwen["sgtr-raises-self-recognition"]["evaluation"] == "self_recognition-claude-21"


# ---------------------------------------------------------------------------- where claims show --


@pytest.fixture
def claims_csv(tmp_path):
    evals = simulated_evals(
        np.random.default_rng(5),
        means={"base": 0.1, "em-unpop": 0.3, "sgtr+em-unpop": 0.25},
        seeds=3,
        items=80,
        seed_sd=0.01,
    )
    claims = [
        claim(ratio=True),
        claim(id="prevention", claim="Self++ before EM lowers misalignment", treatment="sgtr+em-unpop", reference="em-unpop", direction="decrease", paper_effect=-0.03),
        claim(id="wrong-way", claim="EM lowers misalignment", direction="decrease"),
        claim(id="absent", claim="Self-- before EM does not help", treatment="sgtr-flip+em-unpop", reference="em-unpop"),
    ]  # fmt: skip
    rows = check_claims(claims, evals, MODEL, Settings(bootstrap_resamples=300))
    path = tmp_path / f"{MODEL}.csv"
    write_csv(path, rows, CLAIM_COLUMNS)
    return path


def test_claims_csv_holds_every_number(claims_csv):
    rows = read_claims(claims_csv)
    assert [r["verdict"] for r in rows] == [REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN]
    first = rows[0]
    for column in (
        "effect",
        "ci_low",
        "ci_high",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
        "p_value",
        "mean_treatment",
    ):
        assert isinstance(first[column], float), column
    assert first["effect"] == pytest.approx(first["mean_treatment"] - first["mean_reference"])


def test_forest_plot_draws_every_checked_claim_with_truetype_fonts(claims_csv, tmp_path):
    from sgtr_em.forest import draw_forest

    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    draw_forest(read_claims(claims_csv), png=png, pdf=pdf, title="claims")
    assert png.stat().st_size > 10000
    fonts = pdf_font_types(pdf)
    assert fonts and "Type3" not in fonts
    # Nothing checked: the plot says so instead of failing.
    draw_forest([r for r in read_claims(claims_csv) if r["verdict"] == NOT_RUN], png=png, pdf=pdf, title="none")
    assert "Type3" not in pdf_font_types(pdf)


def test_forest_plot_shows_what_decided_each_verdict(monkeypatch):
    """An inconclusive interval above 0 says why (answers outside the format); each verdict has its reason."""
    from sgtr_em import forest

    def claim(claim_id, verdict, low, high, invalid=0.0, direction="increase"):
        return {
            "claim_id": claim_id,
            "claim": claim_id,
            "verdict": verdict,
            "effect": (low + high) / 2,
            "ci_low": low,
            "ci_high": high,
            "direction": direction,
            "invalid_rate_treatment": invalid,
            "invalid_rate_reference": 0.0,
            "max_invalid_rate": 0.2,
            "confidence": 0.95,
        }

    rows = [
        claim("a", "reproduced", 0.1, 0.3),
        claim("b", "inconclusive", 0.38, 0.42, invalid=0.87),
        claim("c", "inconclusive", -0.1, 0.2),
        claim("d", "not reproduced", -0.3, -0.1),
        claim("e", "not reproduced", 0.5, 0.6),
    ]
    assert [forest.short_reason(r) for r in rows] == [
        "interval excludes 0",
        "87% answers off-format",
        "interval includes 0",
        "opposite to the paper",
        "far from paper's effect",
    ]
    drawn: list[str] = []
    monkeypatch.setattr(forest, "_save", lambda fig, png, pdf: drawn.extend(t.get_text() for t in fig.axes[0].texts))
    forest.draw_forest(rows, png="unused.png", pdf="unused.pdf", title="claims")
    assert "inconclusive\n87% answers off-format" in drawn and "reproduced\ninterval excludes 0" in drawn


def test_the_headline_gives_each_verdict_with_its_claims(claims_csv):
    from sgtr_em.headline import headline, main

    text = headline([claims_csv], summary="results/report/results_summary.md")
    assert text.startswith(f"The paper's claims on this run: {MODEL}: 1 reproduced (EM raises")
    flat = " ".join(text.split())
    assert "1 inconclusive (Self++ before EM lowers misalignment)" in flat and "1 not run." in flat
    assert "1 not reproduced (EM lowers misalignment)" in flat
    assert flat.endswith(f"reason: {claims_csv}; the results summary: results/report/results_summary.md.")
    with pytest.raises(SystemExit):
        main([str(claims_csv.parent / "missing.csv")])


def test_results_summary_opens_with_the_claims_table(claims_csv, tmp_path):
    from test_report import write_summary

    table = write_summary(tmp_path / "tqa.csv", "truthfulqa", MODEL, {"base": [0.1]}, metric="misalignment")
    kwargs = {"tables": {"truthfulqa": table}, "models": [MODEL], "claims": {MODEL: claims_csv}}
    markdown = results_summary(**kwargs)
    assert markdown.index("## Claims") < markdown.index("One table per target model")
    line = next(line for line in markdown.splitlines() if line.startswith("| Self++ before EM"))
    assert "−0.030" in line.replace("-", "−") and "inconclusive" in line
    assert "| EM raises TruthfulQA misalignment |" in markdown and "reproduced |" in markdown and "×" in markdown
    assert "| not run |" in markdown
    html = results_summary_html(**kwargs)
    assert html.index("<h2>Claims</h2>") < html.index("One table per target model")


def test_claims_module_reads_evaluation_folders(tmp_path):
    from sgtr_em.io import write_json

    for c in ("base", "em-unpop"):
        for model in (MODEL, "other"):
            write_json(tmp_path / "truthfulqa" / model / c / "seed0.json", truthfulqa_eval(c, 0, [True], model=model))
    assert len(claimslib.load_evaluations([tmp_path], model=MODEL)) == 2
    assert len(claimslib.load_evaluations([tmp_path])) == 4


def test_release_figures_also_makes_the_claims_of_every_model_it_draws(tmp_path):
    from sgtr_em.release.figures import PLAN_COLUMNS
    from sgtr_em.release.targets import planned_claims

    plan = tmp_path / "plan.csv"
    rows = [
        {"figure_set": "paper", "model": "qwen2.5-32b", "figure": "fig2_truthfulqa", "status": "draw"},
        {"figure_set": "paper", "model": "qwen2.5-32b", "figure": "fig3a_prevention", "status": "draw"},
        {"figure_set": "paper", "model": "gpt-4.1", "figure": "fig1_self_recognition", "status": "skip"},
    ]
    write_csv(plan, rows, PLAN_COLUMNS)
    claims = load_config(read_config("demo.yaml"))["claims"]
    assert planned_claims(plan, claims) == [
        "results/release/claims/qwen2.5-32b.csv",
        "results/release/claims/qwen2.5-32b.png",
        "results/release/claims/qwen2.5-32b.pdf",
    ]
    assert planned_claims(plan, {**claims, "list": []}) == []


def test_forest_plot_caption_renders():
    from conftest import REPO
    from test_figures import _Snakemake, render_caption

    html = render_caption(REPO / "report" / "claims.rst", _Snakemake({}, model="demo-target"))
    assert "results/claims/demo-target.csv" in html and "hierarchical" in html
