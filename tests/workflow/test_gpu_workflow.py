"""GPU readiness (issue 19) through Snakemake on this CPU machine: a model job that asks for a GPU stops in
seconds with the message, a profile whose GPU limit is below a job's request stops it, and two concurrent
model jobs under profiles/local with two fake GPUs get different CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import re
import time
from pathlib import Path

import torch
import yaml
from conftest import copy_workflow, snakemake

# The comparator model's summaries: a generate_summaries job each (a grid state's come from its evaluation job).
SUMMARIES = "results/summaries/demo-other/base/seed0/{dataset}.jsonl"
SUMMARY_LOG = "logs/summaries/demo-other/base/seed0/{dataset}.log"


def gpu_workflow(tmp_path: Path, tiny_model_dir: Path, gpu: int) -> tuple[Path, str]:
    """A copy of the workflow and a full config file: the demo with both models read from a built tiny
    model (no build jobs) and asking for `gpu` GPUs per job."""
    workdir = copy_workflow(tmp_path / "workflow")
    config = yaml.safe_load((workdir / "config/demo.yaml").read_text())
    for settings in config["models"].values():
        settings["source"] = {"path": str(tiny_model_dir)}
        settings["resources"]["gpu"] = gpu
    (workdir / "config/gpu.yaml").write_text(yaml.safe_dump(config))
    return workdir, "config/gpu.yaml"


def test_gpu_jobs_on_a_cpu_machine_fail_in_seconds_naming_the_job(tmp_path, tiny_model_dir):
    workdir, config = gpu_workflow(tmp_path, tiny_model_dir, gpu=1)
    target = SUMMARIES.format(dataset="cnn")
    started = time.monotonic()
    result = snakemake(
        workdir, "results/gpu_check.txt", target, "--cores", "2", "--keep-going", "--configfile", config, timeout=600
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert not (workdir / target).exists() and not (workdir / "results/gpu_check.txt").exists()
    summary_log = (workdir / SUMMARY_LOG.format(dataset="cnn")).read_text()
    assert (
        "generate_summaries (model=demo-other, chain=base, seed=0, dataset=cnn) asked for 1 GPU but sees none: "
        f"torch {torch.__version__} (CUDA build: none, CPU-only)" in summary_log
    )
    assert "CPU-only build: install the CUDA build of torch" in summary_log
    assert "generate:" not in summary_log  # stopped before the model loaded and generated anything
    check_log = (workdir / "logs/gpu_check.log").read_text()
    assert "gpu_check asked for 1 GPU but sees none" in check_log and "NVIDIA driver: none found" in check_log
    # snakemake's start, the articles job and both failed jobs
    assert elapsed < 120, elapsed


def test_a_profile_allowing_fewer_gpus_than_the_job_asks_for_stops_it(tmp_path, tiny_model_dir):
    """profiles/local declares 0 GPUs: Snakemake would run a gpu: 1 job with 0 (on the CPU, for days)."""
    workdir, config = gpu_workflow(tmp_path, tiny_model_dir, gpu=1)
    target = SUMMARIES.format(dataset="cnn")
    result = snakemake(workdir, target, "--profile", "profiles/local", "--cores", "2", "--configfile", config)
    assert result.returncode != 0
    log = (workdir / SUMMARY_LOG.format(dataset="cnn")).read_text()
    assert "asked for 1 GPU in the config but was scheduled with 0" in log and "profiles/local" in log


def test_concurrent_model_jobs_under_the_local_profile_get_their_own_gpus(tmp_path, tiny_model_dir, monkeypatch):
    """Two fake GPUs (SGTR_EM_GPUS=0,1; the CUDA check only warns, this machine has none), two generation
    jobs of one GPU each running at once: each takes its own device."""
    monkeypatch.setenv("SGTR_EM_GPUS", "0,1")
    monkeypatch.setenv("SGTR_EM_GPU_CHECK", "warn")
    workdir, config = gpu_workflow(tmp_path, tiny_model_dir, gpu=1)
    datasets = ("cnn", "xsum")
    result = snakemake(
        workdir,
        *(SUMMARIES.format(dataset=d) for d in datasets),
        "--profile",
        "profiles/local",
        "--resources",
        "gpu=2",
        "--cores",
        "2",
        "--configfile",
        config,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    devices = {}
    for dataset in datasets:
        log = (workdir / SUMMARY_LOG.format(dataset=dataset)).read_text()
        match = re.search(
            r"CUDA_VISIBLE_DEVICES=(\S+) \(1 GPU of the pool 0,1 from SGTR_EM_GPUS; locks in (\S+)\)", log
        )
        assert match, log[-2000:]
        devices[dataset] = match.group(1)
        assert match.group(2) == ".snakemake/gpu-locks"
        assert "SGTR_EM_GPU_CHECK=warn: continuing" in log
        assert (workdir / SUMMARIES.format(dataset=dataset)).stat().st_size > 0
    # a job alone takes the first free device: different devices mean they held them at the same time
    assert sorted(devices.values()) == ["0", "1"], devices
