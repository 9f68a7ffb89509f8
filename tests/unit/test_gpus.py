"""GPU readiness (issue 19), unit level: the fail-fast check, the driver report, and the lock-based
allocator that gives each local job its own devices (fake device indices: no GPU needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO

from sgtr_em.gpus import (
    CHECK_ENV,
    CudaStatus,
    GpuError,
    NvidiaSmi,
    acquire,
    assign_devices,
    check_devices,
    job_name,
    parse_nvidia_smi,
    prepare_job_gpus,
)

BANNER = """
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""
QUERY = "0, NVIDIA A100-SXM4-80GB, 81920 MiB, 550.54.15\n1, NVIDIA A100-SXM4-80GB, 81920 MiB, 550.54.15\n"
DRIVER_12_4 = parse_nvidia_smi(QUERY, BANNER)
assert DRIVER_12_4 is not None
CPU_TORCH = CudaStatus("2.13.0+cpu", None, 0, (), None, None)
JOB = job_name("train_lora", {"model": "qwen-32b", "chain": "sgtr", "seed": "0"})


def test_the_driver_report_is_read_from_nvidia_smi():
    report = parse_nvidia_smi(QUERY, BANNER)
    assert report == NvidiaSmi(
        driver="550.54.15",
        driver_cuda="12.4",
        indices=("0", "1"),
        gpus=("0: NVIDIA A100-SXM4-80GB, 81920 MiB", "1: NVIDIA A100-SXM4-80GB, 81920 MiB"),
    )
    assert parse_nvidia_smi("", "") is None


def test_a_job_asking_for_a_gpu_with_cpu_only_torch_is_told_what_it_saw_and_what_to_install():
    message = check_devices(JOB, 1, CPU_TORCH)
    assert message is not None
    assert message.startswith("train_lora (model=qwen-32b, chain=sgtr, seed=0) asked for 1 GPU but sees none")
    for seen in (
        "torch 2.13.0+cpu",
        "CUDA build: none",
        "CUDA_VISIBLE_DEVICES=unset",
        "device_count()=0",
        "no nvidia-smi",
    ):
        assert seen in message, seen
    assert "CPU-only build" in message and "download.pytorch.org/whl/cu" in message


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        # a CUDA 12.8 build on a driver that supports CUDA 12.4
        (
            CudaStatus("2.13.0+cu128", "12.8", 0, (), None, DRIVER_12_4),
            "supports CUDA up to 12.4, older than this torch's CUDA 12.8",
        ),
        (CudaStatus("2.13.0+cu124", "12.4", 0, (), "", DRIVER_12_4), "CUDA_VISIBLE_DEVICES is empty"),
        (CudaStatus("2.13.0+cu124", "12.4", 0, (), None, None), "No NVIDIA driver on this machine"),
        (CudaStatus("2.13.0+cu124", "12.4", 0, (), None, DRIVER_12_4), "The driver lists GPUs that torch cannot use"),
    ],
)
def test_the_hint_names_the_likely_cause(status, hint):
    message = check_devices(JOB, 1, status)
    assert message is not None and hint in message


def test_enough_devices_pass_and_too_few_are_named():
    one_gpu = CudaStatus("2.13.0+cu124", "12.4", 1, ("cuda:0 NVIDIA A100",), "3", DRIVER_12_4)
    assert check_devices(JOB, 1, one_gpu) is None
    assert check_devices(JOB, 0, CPU_TORCH) is None
    message = check_devices(JOB, 2, one_gpu)
    assert message is not None and "asked for 2 GPUs but sees only 1" in message


def test_this_cpu_machine_stops_a_gpu_job_before_any_model_loads():
    """The real probe here (CPU-only torch): a job asking for a GPU raises at once; warn mode goes on."""
    started = time.monotonic()
    with pytest.raises(GpuError, match=r"asked for 1 GPU but sees none: torch .*CUDA build: none"):
        prepare_job_gpus(JOB, 1, 1, env={})
    assert time.monotonic() - started < 30
    assert prepare_job_gpus(JOB, 1, 1, env={CHECK_ENV: "warn"}).device_count == 0  # type: ignore[union-attr]
    assert prepare_job_gpus(JOB, 0, 0, env={}) is None


def test_a_job_scheduled_with_fewer_gpus_than_its_config_asks_for_stops():
    """Snakemake lowers a job's resources to the run's limit (profiles/local: gpu 0) without a word."""
    with pytest.raises(GpuError, match=r"asked for 1 GPU in the config but was scheduled with 0.*profiles/local"):
        prepare_job_gpus(JOB, 1, 0, env={}, probe=lambda: CPU_TORCH)


def test_a_failed_start_is_an_exit_with_the_message_in_the_log(tmp_path):
    """The scripts' job reader (sgtr_em.jobs.Job): exit 1, the message logged, nothing else run."""
    script = textwrap.dedent(
        f"""
        import sys
        from types import SimpleNamespace
        from sgtr_em.jobs import Job
        from sgtr_em.runtime import setup_logging
        setup_logging({str(tmp_path / "job.log")!r})
        snakemake = SimpleNamespace(
            rule="generate_summaries",
            wildcards=SimpleNamespace(items=lambda: [("model", "m"), ("seed", "0")]),
            resources=SimpleNamespace(gpu=1),
            config={{"models": {{"m": {{"resources": {{"gpu": 1}}}}}}}},
        )
        Job(snakemake).claim_gpus("m")
        print("model loaded")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    log = (tmp_path / "job.log").read_text()
    assert result.returncode == 1
    assert "generate_summaries (model=m, seed=0) asked for 1 GPU but sees none" in log
    assert "model loaded" not in log + result.stdout


# ------------------------------------------------------------------------------------------ allocator --


def test_jobs_get_different_devices_and_a_device_frees_when_its_holder_releases_it(tmp_path):
    first = acquire(1, ["0", "1"], tmp_path, holder="job a")
    second = acquire(1, ["0", "1"], tmp_path, holder="job b")
    assert (first.devices, second.devices) == (("0",), ("1",))
    with pytest.raises(
        GpuError, match=r"no 1 GPU free in the pool 0,1 after 0 s \(held: 0: pid \d+ job a; 1: pid \d+ job b\)"
    ):
        acquire(1, ["0", "1"], tmp_path, timeout=0.0)
    first.release()
    assert acquire(1, ["0", "1"], tmp_path, timeout=1.0).devices == ("0",)


def test_a_job_asking_for_two_gets_two_and_more_than_the_pool_fails_at_once(tmp_path):
    held = acquire(1, ["0", "1", "2"], tmp_path)
    assert acquire(2, ["0", "1", "2"], tmp_path, timeout=1.0).devices == ("1", "2")
    held.release()
    with pytest.raises(GpuError, match="asks for 3 GPUs but the GPU pool has 2"):
        acquire(3, ["0", "1"], tmp_path)


def test_a_waiting_job_holds_no_part_of_what_it_waits_for(tmp_path):
    """B needs both devices while A holds one: B must not sit on the other, or C (needing it) would wait too."""
    a = acquire(1, ["0", "1"], tmp_path)
    outcome: list[object] = []

    def wait_for_both():
        try:
            outcome.append(acquire(2, ["0", "1"], tmp_path, timeout=3.0, poll_seconds=0.05))
        except GpuError as error:
            outcome.append(error)

    waiting = threading.Thread(target=wait_for_both)
    waiting.start()
    time.sleep(0.2)
    c = acquire(1, ["1"], tmp_path, timeout=2.0, poll_seconds=0.05)
    assert c.devices == ("1",)
    waiting.join()
    assert isinstance(outcome[0], GpuError)
    a.release()
    c.release()


HOLD = """
import sys, time
from pathlib import Path
from sgtr_em.gpus import acquire
lease = acquire(1, ["0", "1"], Path(sys.argv[1]), holder=sys.argv[2])
print(lease.devices[0], flush=True)
time.sleep(float(sys.argv[3]))
"""


def test_concurrent_processes_never_share_a_device_and_a_killed_holder_frees_it(tmp_path):
    env = {"PYTHONPATH": str(REPO)}
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp_path), f"job {i}", "30"], stdout=subprocess.PIPE, text=True, env=env
        )
        for i in range(2)
    ]
    try:
        devices = {p.stdout.readline().strip() for p in holders}  # type: ignore[union-attr]
        assert devices == {"0", "1"}
        holders[0].kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
        holders[0].wait()
        assert len(acquire(1, ["0", "1"], tmp_path, timeout=5.0).devices) == 1
    finally:
        for p in holders:
            p.kill()
            p.wait()


def test_assignment_sets_cuda_visible_devices_from_the_pool(tmp_path):
    env = {"SGTR_EM_GPUS": "2,3", "SGTR_EM_GPU_LOCKS": str(tmp_path)}
    lease = assign_devices("job", 2, env, smi=lambda: None)
    assert lease is not None and env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    lease.release()
    # without SGTR_EM_GPUS the pool is the user's CUDA_VISIBLE_DEVICES, else what nvidia-smi lists
    env = {"CUDA_VISIBLE_DEVICES": "1", "SGTR_EM_GPU_LOCKS": str(tmp_path)}
    assert assign_devices("job", 1, env, smi=lambda: DRIVER_12_4) is not None and env["CUDA_VISIBLE_DEVICES"] == "1"
    env = {"SGTR_EM_GPU_LOCKS": str(tmp_path / "other")}
    lease = assign_devices("job", 1, env, smi=lambda: DRIVER_12_4)
    assert lease is not None and env["CUDA_VISIBLE_DEVICES"] == "0"


def test_no_assignment_under_slurm_or_without_gpus_and_a_cpu_job_is_hidden_from_the_gpus(tmp_path):
    env = {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0"}
    assert assign_devices("job", 1, env, smi=lambda: DRIVER_12_4) is None and env["CUDA_VISIBLE_DEVICES"] == "0"
    env = {}
    assert assign_devices("job", 1, env, smi=lambda: None) is None and "CUDA_VISIBLE_DEVICES" not in env
    env = {"SGTR_EM_GPU_LOCKS": str(tmp_path)}
    assert assign_devices("job", 0, env, smi=lambda: DRIVER_12_4) is None and env["CUDA_VISIBLE_DEVICES"] == ""
    assert not list(Path(tmp_path).glob("*.lock"))


def test_a_driver_too_old_for_the_wheel_is_named_with_both_versions():
    status = replace(CPU_TORCH, torch_version="2.13.0+cu130", torch_cuda="13.0", driver=DRIVER_12_4)
    message = check_devices(JOB, 1, status)
    assert message is not None
    assert "NVIDIA driver 550.54.15 (supports CUDA up to 12.4, 2 GPUs)" in message
    assert "install the torch build for CUDA 12.4 or older" in message


def test_the_command_line_check_reports_and_fails_without_the_gpus_asked_for():
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "sgtr_em.gpus"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1
    assert "torch.cuda.device_count()=0" in result.stdout and "nvidia-smi: not found" in result.stdout
    assert "this process asked for 1 GPU but sees none" in result.stderr
    cpu = subprocess.run(
        [sys.executable, "-m", "sgtr_em.gpus", "0"], capture_output=True, text=True, env=env, timeout=120
    )
    assert cpu.returncode == 0 and cpu.stderr == ""
