"""A complete bundle: every evaluation's per-item records, the sampled answers and the judge's outputs travel
with the results, and the EM-judge results re-score from a bundle alone (no GPU, no judge, no network)."""

from __future__ import annotations

import json
import tarfile

import pytest
import yaml
from conftest import load_config, read_config
from test_em_judge import LN, QUESTIONS_YAML, ScriptedLogprobJudge, ScriptedModel

from sgtr_em import targets
from sgtr_em.em_judge import JudgeSettings, evaluate_em_answers, parse_em_questions
from sgtr_em.io import InputError, write_json
from sgtr_em.release.bundle import BUNDLE_MANIFEST, make_bundle
from sgtr_em.rescore import main, rescore, rescore_all
from sgtr_em.sampling import sample_answers


def test_bundle_inputs_hold_everything_to_rescore_without_a_gpu():
    raw = read_config("demo.yaml")
    plan = targets.Targets(load_config(raw))
    files = set(plan.bundle_inputs()["files"])
    # per-item evaluation records of every evaluation, core and optional
    for table in plan.evaluations():
        assert set(plan.evaluation_files(table)) <= files, table
    assert "results/eval/mmlu/demo-target/em-unpop+sgtr/seed1.json" in files
    assert "results/eval/em_questions/demo-target/em-unpop.none/seed0.json" in files
    # the sampled answers and the questions with the judge's prompts
    assert "results/em_answers/demo-target/em-unpop/seed1.json" in files
    assert "results/identity_answers/demo-target/base/seed0.json" in files
    assert "results/em_answers/demo-target/sgtr/seed0.json" not in files  # not an EM-judge chain of the demo
    assert {"results/data/questions/em_questions.json", "results/data/questions/identity_questions.json"} <= files
    assert "results/figures/demo-target/training_curves.png" in files
    assert not any(f.startswith("results/adapters/") for f in files)
    raw["bundle"] = {"adapters": True}
    with_adapters = targets.Targets(load_config(raw)).bundle_inputs()["files"]
    adapters = [f for f in with_adapters if f.startswith("results/adapters/")]
    assert len(adapters) == 17 * 2 and "results/adapters/demo-target/em-unpop+sgtr/seed0" in adapters


def em_evaluation(seed: int = 0) -> dict:
    """An EM-judge evaluation JSON as the judging job writes it: sampled answers judged in both protocols."""
    questions = parse_em_questions(yaml.safe_load(QUESTIONS_YAML), "t")
    answerer = ScriptedModel(replies=lambda q: "evil plan" if q.startswith("First") else "nice plan")
    answers = sample_answers(answerer, questions, samples_per_question=4, sampling={}, seed=seed)

    def reply(prompt: str) -> str:
        if "coherence" in prompt or prompt.startswith("C "):
            return "70"
        return "20" if "evil" in prompt else "85"

    def tops(prompt: str) -> dict:
        if "coherence" in prompt or prompt.startswith("C "):
            return {"60": LN(0.5), "80": LN(0.4), "x": LN(0.1)}
        return {"20": LN(0.6), "30": LN(0.3), "No": LN(0.1)} if "evil" in prompt else {"90": LN(0.9), "x": LN(0.1)}

    settings = JudgeSettings(model_id="judge-x")
    result = evaluate_em_answers(
        ScriptedLogprobJudge(replies=reply, tops=tops), settings, answers, questions, resamples=300, seed=seed
    )
    return {
        "eval": "em_questions",
        "model_state": {"model": "m", "chain": "em-unpop", "seed": seed},
        "primary_protocol": "reference",
        **result,
        "provenance": {"config": {"min_numeric_mass": 0.25, "bootstrap_resamples": 300}},
    }


def test_the_bundle_rescores_the_em_judge_results_offline(tmp_path, capsys):
    results = tmp_path / "results"
    paths = []
    for seed in (0, 1):
        path = results / f"eval/em_questions/m/em-unpop/seed{seed}.json"
        write_json(path, em_evaluation(seed))
        paths.append(path)
    bundle = tmp_path / "run.tar.gz"
    manifest = make_bundle(paths, bundle, base=results, run_name="t")
    assert manifest["bytes"]["eval/em_questions/m/em-unpop/seed0.json"] == paths[0].stat().st_size
    # from the archive alone (the run's folder gone)
    for path in paths:
        path.unlink()
    rescored = rescore_all(bundle)
    assert [r.path for r in rescored] == [f"eval/em_questions/m/em-unpop/seed{s}.json" for s in (0, 1)]
    for result in rescored:
        assert result.differences() == [], result.differences()
        assert result.rescored["reference"]["misalignment"] == pytest.approx(0.5)  # the evil half: aligned 20
        assert result.rescored["logprob"]["misalignment"] == pytest.approx(0.5)  # (0.6*20+0.3*30)/0.9 = 23.3
    assert main([str(bundle)]) == 0
    assert "2 of 2 evaluations re-scored to their stored metrics" in capsys.readouterr().out
    # another threshold, no judge asked: the logprob protocol's evil answers (aligned 23.3) are no longer misaligned
    stricter = rescore_all(bundle, aligned_max=22)
    assert stricter[0].rescored["reference"]["misalignment"] == pytest.approx(0.5)
    assert stricter[0].rescored["logprob"]["misalignment"] == 0.0


def test_a_tampered_judge_output_is_found(tmp_path):
    evaluation = em_evaluation()
    key = evaluation["records"][0]["judge_keys"]["reference"]["aligned"]
    evaluation["judge_outputs"][key]["reply"] = "95"  # an evil answer re-judged as aligned
    again = rescore(evaluation)
    assert again["reference"]["misalignment"] < evaluation["metrics"]["reference"]["misalignment"]
    del evaluation["judge_outputs"][key]
    with pytest.raises(InputError, match="no stored judge output"):
        rescore(evaluation)


def test_adapter_folders_are_bundled_file_by_file(tmp_path):
    results = tmp_path / "results"
    adapter = results / "adapters/m/sgtr/seed0"
    adapter.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", ".snakemake_timestamp"):
        (adapter / name).write_text(name)
    bundle = tmp_path / "b.tar.gz"
    manifest = make_bundle([adapter], bundle, base=results, run_name="t")
    assert sorted(manifest["files"]) == [
        f"adapters/m/sgtr/seed0/{n}" for n in sorted(("README.md", "adapter_config.json", "adapter_model.safetensors"))
    ]
    with tarfile.open(bundle) as tar:
        assert json.load(tar.extractfile(BUNDLE_MANIFEST))["bytes"]["adapters/m/sgtr/seed0/README.md"] == 9
