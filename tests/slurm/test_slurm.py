"""The slurm profile against a real single-node SLURM cluster (Debian's slurmctld/slurmd/munge), started
by tools/slurm/start-slurm.sh and stopped when the test session ends, whatever happened."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, SNAKEMAKE, copy_workflow, snakemake, workflow_env

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("apt-get") is None, reason="starts SLURM daemons: needs root on Debian"
)

CONFIGS = ("--configfile", "config/demo.yaml", "config/demo-slurm.yaml")
SLURM = ("--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "2")


@pytest.fixture(scope="session")
def slurm_daemons():
    """The cluster's daemons, up until the session ends: once SLURM is installed, every `snakemake` start asks
    its controller for its config (the SLURM executor plugin), which waits out a 10 s timeout when the
    controller is down, so it stays up while other tests of the session may still start Snakemake."""
    start = subprocess.run(
        ["bash", str(REPO / "tools/slurm/start-slurm.sh")], capture_output=True, text=True, timeout=900
    )
    assert start.returncode == 0, start.stderr[-3000:]
    try:
        yield
    finally:
        subprocess.run(["bash", str(REPO / "tools/slurm/stop-slurm.sh")], capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def cluster(slurm_daemons):
    # The cluster's GPU is a fake GRES on a CPU machine: model jobs would stop at the CUDA check (sgtr_em.gpus).
    os.environ["SGTR_EM_GPU_CHECK"] = "warn"
    try:
        yield
    finally:
        os.environ.pop("SGTR_EM_GPU_CHECK", None)


def slurm_job_logs(workdir: Path, rule: str) -> list[Path]:
    return sorted((workdir / "logs/slurm" / f"rule_{rule}").rglob("*.log"))


# The cluster run starts from a copy of the local demo's results (modification times kept, so they are up
# to date) without these: the target's and the comparator's summaries of one dataset, which every evaluated
# state reads, the Self++ adapter, and the base state's MMLU result. Rebuilding them on the cluster exercises
# every kind of model job (summaries, training, and both kinds of state evaluation, with and without the
# optional evaluations), and their outputs must equal the local run's, without training the whole overlay
# grid again.
REMADE_ON_THE_CLUSTER = (
    "results/summaries/demo-target/base/seed0/cnn.jsonl",
    # the comparator's summaries come from their own job (generate_summaries)
    "results/summaries/demo-other/base/seed0/cnn.jsonl",
    "results/adapters/demo-target/sgtr/seed0",
    # the base state's optional evaluations (its second job: EM and identity answers, MMLU), which read no summaries
    "results/eval/mmlu/demo-target/base/seed0.json",
)


def gpu_partition_profile(workdir: Path) -> None:
    """The site's GPU partition in the profile's default-resources, as a cluster that needs one sets it."""
    import yaml

    path = workdir / "profiles/slurm/config.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["default-resources"]["slurm_partition"] = "gpu"
    path.write_text(yaml.safe_dump(profile))


def job_partition(job_id: str) -> str:
    """The partition a (recently finished) SLURM job ran on: slurm.conf keeps jobs for MinJobAge seconds."""
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    match = re.search(r"\bPartition=(\S+)", shown)
    return match.group(1) if match else f"unknown ({shown.strip()[:200]})"


@pytest.fixture(scope="module")
def slurm_run(cluster, demo, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm") / "workflow")
    gpu_partition_profile(workdir)
    shutil.copytree(demo / "results", workdir / "results")
    for path in REMADE_ON_THE_CLUSTER:
        (shutil.rmtree if (workdir / path).is_dir() else os.remove)(workdir / path)
    # As targets beside `all`: a missing file whose dependents are up to date is not rebuilt otherwise; rebuilt,
    # it reruns every job that reads it.
    result = snakemake(workdir, *REMADE_ON_THE_CLUSTER, "all", *SLURM, *CONFIGS, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return workdir


# The tests that need only the cluster first: they fail at once when the cluster does not work.
FLAKY_SNAKEFILE = """
rule all:
    input: "done.txt"

rule flaky:
    output: "done.txt"
    log: "flaky.log"
    # fails on its first attempt only
    shell: "if [ -e attempted ]; then echo ok > {output}; else touch attempted; exit 3; fi"
"""


def test_failing_job_is_retried(cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FLAKY_SNAKEFILE)
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    result = snakemake(tmp_path, *SLURM, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "done.txt").read_text().strip() == "ok"
    assert len(slurm_job_logs(tmp_path, "flaky")) == 2


def test_gpu_check_reports_the_devices(cluster, tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    result = snakemake(workdir, "gpu_check", *SLURM, *CONFIGS, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = (workdir / "results/gpu_check.txt").read_text()
    assert "CUDA_VISIBLE_DEVICES=0" in report and "torch" in report


def test_api_model_jobs_run_on_the_submit_host_never_through_sbatch(cluster, tmp_path):
    """The API demo (a fake OpenAI server on this host) under the SLURM profile: fine-tuning, summaries and the
    state evaluations of an API model are local rules (a compute node may have no network); only the CPU work
    between them goes through sbatch."""
    from fake_openai import FakeOpenAI

    server = FakeOpenAI(job_polls=2, expected_key="sk-slurm-test")
    url = server.start()
    try:
        workdir = copy_workflow(tmp_path / "workflow")
        result = subprocess.run(
            [
                SNAKEMAKE,
                *SLURM,
                "--configfile",
                "config/demo-api.yaml",
                "--config",
                'grid={"models": ["api-target"], "chains": ["base", "sgtr"], "seeds": [0]}',
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=900,
            env=workflow_env(OPENAI_BASE_URL=url, OPENAI_API_KEY="sk-slurm-test"),
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (workdir / "results/adapters/api-target/sgtr/seed0/openai_model.json").is_file()
    submitted = {p.name.removeprefix("rule_") for p in (workdir / "logs/slurm").iterdir()}
    assert submitted and not [rule for rule in submitted if rule.endswith("_api")], submitted
    ran = result.stdout + result.stderr
    assert "localrule train_stage_api:" in ran and re.search(r"localrule eval_state\w*_api:", ran)


def test_model_jobs_went_through_sbatch_on_the_gpu_partition(slurm_run):
    logs = slurm_job_logs(slurm_run, "train_stage")
    assert logs, "no SLURM job log for train_stage"
    for log in logs:
        assert re.fullmatch(r"\d+", log.stem), log  # named by SLURM job id
        text = log.read_text()
        assert "train_stage" in text
    # the overlay's grid (base, sgtr): base's core job also writes the summaries the pairs are built from, and its
    # optional job runs the demo's optional evaluations; sgtr runs none
    rules = ("train_stage", "eval_state", "eval_state_summaries_cnn_xsum", "eval_state_em_questions_identity_mmlu")
    for rule in (*rules, "generate_summaries"):
        assert slurm_job_logs(slurm_run, rule), rule
    # on the gpu partition: the target's from the profile's default-resources (its config names none), the
    # comparator's (generate_summaries) from its config
    for rule in (*rules, "generate_summaries"):
        for log in slurm_job_logs(slurm_run, rule):
            assert job_partition(log.stem) == "gpu", (rule, log.stem)


def test_outputs_equal_a_local_run(slurm_run, demo):
    """Every pair file, summary and evaluation the cluster made again is byte-identical to the local demo
    run's."""
    compared = []
    for pattern in (
        "results/pairs/**/*.jsonl",
        "results/pairs/**/*.stats.json",
        "results/eval/**/*.json",
        "results/summaries/**/*.jsonl",
    ):
        for cluster_file in sorted(slurm_run.glob(pattern)):
            relative = cluster_file.relative_to(slurm_run)
            if cluster_file.stat().st_mtime_ns == (demo / relative).stat().st_mtime_ns:
                continue  # copied from the demo, not made on the cluster
            assert cluster_file.read_bytes() == (demo / relative).read_bytes(), relative
            compared.append(str(relative))
    # the summaries and, for both states of the overlay's grid, self-recognition and TruthfulQA
    assert set(REMADE_ON_THE_CLUSTER[:2]) <= set(compared), compared
    for chain in ("base", "sgtr"):
        assert f"results/eval/self_recognition-demo-other/demo-target/{chain}/seed0.json" in compared, compared
        assert f"results/eval/truthfulqa/demo-target/{chain}/seed0.json" in compared, compared


def wait_for_running_job(rule: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i %k %T"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            job_id, comment, state = line.split()
            if comment.startswith(f"rule_{rule}") and state == "RUNNING":
                return job_id
        time.sleep(0.5)
    raise AssertionError(f"no running {rule} job within {timeout} s")


def test_cancelled_gpu_job_is_rerun_to_completion(slurm_run):
    adapter = slurm_run / "results/adapters/demo-target/sgtr/seed0"
    before = (adapter / "adapter_model.safetensors").read_bytes()
    shutil.rmtree(adapter)
    process = subprocess.Popen(
        # the adapter as target: a missing intermediate whose dependents are up to date is not rebuilt otherwise
        # (targets go before --configfile, which takes several values)
        [SNAKEMAKE, "results/adapters/demo-target/sgtr/seed0", *SLURM, *CONFIGS],
        cwd=slurm_run,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=workflow_env(),
    )
    try:
        cancelled = wait_for_running_job("train_stage")
        subprocess.run(["scancel", cancelled], check=True)
        output, _ = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-5000:]
    job_ids = {log.stem for log in slurm_job_logs(slurm_run, "train_stage")}
    assert cancelled in job_ids and len(job_ids) >= 3  # first run, the cancelled one, its retry
    # the retry finished the same training: the adapter is back, bit for bit
    assert (adapter / "adapter_model.safetensors").read_bytes() == before
