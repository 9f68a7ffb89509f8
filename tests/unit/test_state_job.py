"""A state's evaluation job: each finished step kept under a fingerprint, so a killed job resumes at the step it
had reached and loads the model only for what is left (sgtr_em.state_evals.run_state_job)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sgtr_em.checkpoints import StepCheckpoints
from sgtr_em.io import read_articles, write_json, write_jsonl

JOB = """
import logging, sys, time
from sgtr_em.backends.hf import HFChatModel
from sgtr_em.io import read_json
from sgtr_em.evaluated_state import EvaluatedState
from sgtr_em.state_evals import run_state_job

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
spec = read_json(sys.argv[1])
slow = sys.argv[2] == "slow"


class SlowTruthfulQA(HFChatModel):
    # a long step, so that the job can be killed while it runs
    def option_probs(self, conversations, options):
        if slow and options == ["A", "B"]:
            print("truthfulqa started", flush=True)
            time.sleep(120)
        return super().option_probs(conversations, options)


def load():
    print("model loaded", flush=True)
    return SlowTruthfulQA(spec["model"], batch_size=8)


state = EvaluatedState("eval_state", "demo-target", "base", 0, {"name": "demo-target"}, {"dtype": "auto"}, "test")
run_state_job(
    steps=spec["steps"], inputs=spec["inputs"], outputs=spec["outputs"], state=state,
    load_model=load, work_dir=spec["work_dir"], summary_seed=0,
)
print("job done", flush=True)
"""


@pytest.fixture(scope="module")
def job_inputs(tiny_model_dir, tmp_path_factory):
    from sgtr_em.prompts import PROJECT

    root = tmp_path_factory.mktemp("state_job_inputs")
    repo = Path(__file__).resolve().parents[2]
    articles = dict(list(read_articles(repo / "data/demo/articles_eval.jsonl").items())[:6])
    write_jsonl(root / "articles.jsonl", [{"id": k, "text": v} for k, v in articles.items()])
    write_jsonl(root / "other.jsonl", [{"id": k, "summary": v.split(".")[0]} for k, v in articles.items()])
    write_jsonl(
        root / "truthfulqa.jsonl",
        [{"id": f"q{i}", "question": f"Is claim {i} true?", "best": "No.", "incorrect": "Yes."} for i in range(5)],
    )
    write_json(root / "prompts.json", PROJECT.as_dict())
    (root / "job.py").write_text(JOB)
    return {
        "model": str(tiny_model_dir),
        "inputs": {
            "model": str(tiny_model_dir),
            "adapters": [],
            "prompts": str(root / "prompts.json"),
            "articles-cnn": str(root / "articles.jsonl"),
            "other_summaries-other": str(root / "other.jsonl"),
            "truthfulqa": str(root / "truthfulqa.jsonl"),
        },
        "script": root / "job.py",
    }


def job_spec(job_inputs, workdir: Path) -> Path:
    sampling = {"max_new_tokens": 8, "temperature": 0.7, "top_p": 0.9, "top_k": 50}
    steps = {
        "summaries-cnn": {"dataset": "cnn", "style": "highlights", "sampling": sampling},
        "self_recognition-other": {
            "dataset": "cnn",
            "self_source": "own",
            "protocols": ["reference", "logprob"],
            "primary_protocol": "reference",
            "sampling": {**sampling, "max_new_tokens": 4},
            "framing": "detection",
            "identity_system_prompt": None,
        },
        "truthfulqa": {
            "protocols": ["reference", "logprob"],
            "primary_protocol": "reference",
            "sampling": {**sampling, "max_new_tokens": 1},
        },
    }
    outputs = {
        step: str(workdir / "out" / f"{step}.{'jsonl' if step.startswith('summaries') else 'json'}") for step in steps
    }
    spec = {**job_inputs, "steps": steps, "outputs": outputs, "work_dir": str(workdir / "work")}
    spec.pop("script")
    write_json(workdir / "spec.json", spec)
    return workdir / "spec.json"


def run_job(job_inputs, spec: Path, slow: bool = False):
    return subprocess.Popen(
        [sys.executable, str(job_inputs["script"]), str(spec), "slow" if slow else "fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_a_job_killed_between_two_evaluations_resumes_without_redoing_the_finished_ones(job_inputs, tmp_path):
    """SIGKILLed while TruthfulQA runs (summaries and self-recognition done): the rerun takes both back from the
    work dir, computes TruthfulQA only, and every output equals an uninterrupted run's, byte for byte; the
    kept steps are gone once the job has succeeded."""
    killed = tmp_path / "killed"
    spec = job_spec(job_inputs, killed)
    process = run_job(job_inputs, spec, slow=True)
    deadline = time.monotonic() + 300
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "truthfulqa started" in line or time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert "truthfulqa started" in "".join(lines), "".join(lines)[-2000:]
    work = killed / "work"
    assert {p.name for p in work.iterdir()} == {
        "summaries-cnn",
        "summaries-cnn.done.json",
        "self_recognition-other",
        "self_recognition-other.done.json",
    }

    rerun = run_job(job_inputs, spec)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output[-3000:]
    assert "summaries-cnn: kept from an earlier attempt" in output
    assert "self_recognition-other: kept from an earlier attempt" in output
    assert output.count("model loaded") == 1 and "truthfulqa (" in output
    assert not work.exists()

    reference = tmp_path / "reference"
    once = run_job(job_inputs, job_spec(job_inputs, reference))
    output, _ = once.communicate(timeout=600)
    assert once.returncode == 0, output[-3000:]
    for path in sorted((reference / "out").iterdir()):
        # the self-recognition record names the summaries file it read, in its own folder
        resumed = (killed / "out" / path.name).read_text().replace(str(killed), str(reference))
        assert resumed == path.read_text(), path.name


def test_a_kept_step_is_not_taken_back_for_other_settings_inputs_or_earlier_steps(tmp_path):
    output = tmp_path / "out.json"
    output.write_text(json.dumps({"metrics": 1}))
    kept = StepCheckpoints(tmp_path / "work", {"inputs": "a"})
    kept.save("truthfulqa", output, {"n": 1}, {"summaries-cnn": "x"})
    output.unlink()
    assert not StepCheckpoints(tmp_path / "work", {"inputs": "b"}).restore(
        "truthfulqa", output, {"n": 1}, {"summaries-cnn": "x"}
    )
    assert not kept.restore("truthfulqa", output, {"n": 2}, {"summaries-cnn": "x"})
    assert not kept.restore("truthfulqa", output, {"n": 1}, {"summaries-cnn": "y"})
    assert not output.exists()
    assert kept.restore("truthfulqa", output, {"n": 1}, {"summaries-cnn": "x"})
    assert json.loads(output.read_text()) == {"metrics": 1}
    # a copy whose content changed after its record was written is not trusted
    (tmp_path / "work" / "truthfulqa").write_text("{}")
    output.unlink()
    assert not kept.restore("truthfulqa", output, {"n": 1}, {"summaries-cnn": "x"})


def test_a_state_evaluated_at_three_batch_sizes_writes_the_same_outputs(job_inputs, tmp_path):
    """Batch size is no rerun trigger because it changes nothing: the same state's summaries, self-recognition
    and TruthfulQA outputs at batch sizes 1, 3 and 16 are byte-identical, apart from the provenance record (its
    clock times)."""
    from sgtr_em.backends.hf import HFChatModel
    from sgtr_em.evaluated_state import EvaluatedState
    from sgtr_em.io import read_json
    from sgtr_em.state_evals import run_state_job

    spec = read_json(job_spec(job_inputs, tmp_path))
    state = EvaluatedState("eval_state", "demo-target", "base", 0, {"name": "demo-target"}, {"dtype": "auto"}, "test")
    written: dict[int, dict[str, bytes]] = {}
    for batch_size in (1, 3, 16):
        # the same output paths each time (the self-recognition record names the summaries file it read)
        outputs = spec["outputs"]
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
        run_state_job(
            steps=spec["steps"],
            inputs=spec["inputs"],
            outputs=outputs,
            state=state,
            load_model=lambda b=batch_size: HFChatModel(spec["model"], batch_size=b),
            work_dir=tmp_path / f"work-{batch_size}",
            summary_seed=0,
            batch_sizes=dict.fromkeys(spec["steps"], batch_size),
        )
        written[batch_size] = {}
        for step, path in outputs.items():
            text = Path(path).read_text()
            if path.endswith(".json"):
                record = json.loads(text)
                record.pop("provenance")
                text = json.dumps(record, sort_keys=True)
            written[batch_size][step] = text.encode()
    assert written[1] == written[3] == written[16]
    assert set(written[1]) == {"summaries-cnn", "self_recognition-other", "truthfulqa"}
