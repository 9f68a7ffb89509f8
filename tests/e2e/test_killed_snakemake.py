"""A killed run (issue 16), through Snakemake: SIGKILLed with its jobs mid-training, the next run needs
`--unlock`, then the training resumes from its last checkpoint. A small workflow run to a training checkpoint
(about a minute on 2 cores): in the e2e tier with the other runs that take minutes."""

from __future__ import annotations

import subprocess

import yaml
from conftest import SNAKEMAKE, copy_workflow, snakemake, workflow_env


def test_a_killed_snakemake_needs_unlock_then_resumes_its_training_from_a_demo_checkpoint(tmp_path):
    """The demo checkpoints every 10 steps. Snakemake is SIGKILLed (with its jobs) once the Self++ training
    has a complete checkpoint: the next run is refused until `--unlock` (docs/reruns.md), then the training
    resumes from that checkpoint, its train_loss covers every step, and no temporary file of the killed
    jobs is left under results/."""
    import json
    import os
    import signal
    import time

    workdir = copy_workflow(tmp_path / "workflow")
    small = {
        "grid": {"models": ["demo-target"], "chains": ["base", "sgtr"], "seeds": [0]},
        "tiny_models": {"hidden_size": 32, "pretrain_epochs": 1},
        "datasets": {"articles": {"xsum": {"limit": 16}, "cnn": {"limit": 12}}, "truthfulqa": {"limit": 12}},
        "finetune": {"stage_overrides": {"sgtr": {"epochs": 40}}},
    }
    (workdir / "config/small.yaml").write_text(yaml.safe_dump(small))
    adapter = "results/adapters/demo-target/sgtr/seed0"
    work = workdir / "results/checkpoints/demo-target/sgtr/seed0"
    args = [SNAKEMAKE, "--cores", "2", adapter]
    args += ["--configfile", "config/demo.yaml", "config/small.yaml"]
    run = subprocess.Popen(
        args,
        cwd=workdir,
        env=workflow_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    try:
        while not list(work.glob("checkpoint-*/checkpoint_complete.json")):
            assert run.poll() is None, "the run ended before the training saved a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert not (workdir / adapter).exists()
    # What a kill in the middle of a write leaves beside its output.
    (workdir / adapter).parent.mkdir(parents=True, exist_ok=True)
    (workdir / adapter).parent.joinpath(".seed0.0badf00d.partial").mkdir()

    refused = snakemake(workdir, "--cores", "2", adapter, "--configfile", "config/demo.yaml", "config/small.yaml")
    assert refused.returncode != 0 and "cannot be locked" in refused.stderr
    unlocked = snakemake(workdir, "--unlock", "--configfile", "config/demo.yaml", "config/small.yaml")
    assert unlocked.returncode == 0, unlocked.stderr[-2000:]
    resumed = snakemake(
        workdir, "--cores", "2", "--rerun-incomplete", adapter, "--configfile", "config/demo.yaml", "config/small.yaml"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    meta = json.loads((workdir / adapter / "training_meta.json").read_text())
    assert meta["resumed_from_step"] >= 10 and meta["resumed_from_step"] % 10 == 0
    assert meta["steps_computed"] == meta["global_steps"] - meta["resumed_from_step"]
    assert meta["train_loss_steps"] == meta["global_steps"] == len(meta["loss_per_step"])
    assert not work.exists()
    leftovers = [p for p in (workdir / "results").rglob(".*") if p.name.endswith((".tmp", ".partial"))]
    assert leftovers == []
