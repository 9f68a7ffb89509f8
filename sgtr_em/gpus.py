"""A job's GPUs: which devices it gets on a workstation, and a check, before any model loads, that it sees
the CUDA devices it asked for.

Workstation (no SLURM): the machine's GPUs are a pool (`SGTR_EM_GPUS=0,1`, else the job's
`CUDA_VISIBLE_DEVICES`, else every GPU `nvidia-smi` lists). A job asking for n GPUs takes n of them, each
behind an exclusive lock file (`fcntl.flock`; the kernel drops it when the process ends, killed or not), and
sets `CUDA_VISIBLE_DEVICES` to them before torch initialises CUDA, so two concurrent jobs never share a card
and none spreads over the others' cards. A job asking for none is hidden from the pool's GPUs. Under SLURM
the scheduler sets `CUDA_VISIBLE_DEVICES` itself and nothing is taken (unless `SGTR_EM_GPUS` is set).

The check: a job asking for GPUs that sees fewer (a CPU-only torch, a driver older than torch's CUDA, an
empty `CUDA_VISIBLE_DEVICES`) stops at once with one message naming the job, what it asked for, what it saw
and what to change, instead of running for days on the CPU. `SGTR_EM_GPU_CHECK=warn` turns the stop into a
warning (testing the allocator with fake device indices on a CPU machine).
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

POOL_ENV = "SGTR_EM_GPUS"
LOCK_DIR_ENV = "SGTR_EM_GPU_LOCKS"
CHECK_ENV = "SGTR_EM_GPU_CHECK"
# Workflow-local (relative to the job's working directory, the workflow's): jobs of one workflow share it.
DEFAULT_LOCK_DIR = ".snakemake/gpu-locks"
GPU_DOC = "docs/gpu.md"


class GpuError(RuntimeError):
    """A job cannot get or does not see the GPUs it asked for; the message says what to change."""


# ------------------------------------------------------------------------------------------ probing --


@dataclass(frozen=True)
class NvidiaSmi:
    """What the NVIDIA driver reports (nvidia-smi): driver version, the newest CUDA it supports, its GPUs."""

    driver: str
    driver_cuda: str | None
    indices: tuple[str, ...]
    gpus: tuple[str, ...]


def parse_nvidia_smi(query: str, banner: str) -> NvidiaSmi | None:
    """From `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader` and the
    plain `nvidia-smi` banner (which alone prints the driver's CUDA version)."""
    rows = [[cell.strip() for cell in line.split(",")] for line in query.splitlines() if line.strip()]
    rows = [row for row in rows if len(row) >= 4]
    cuda = re.search(r"CUDA Version:\s*([0-9.]+)", banner)
    driver = rows[0][3] if rows else (re.search(r"Driver Version:\s*([0-9.]+)", banner) or [None, None])[1]
    if driver is None:
        return None
    return NvidiaSmi(
        driver=driver,
        driver_cuda=cuda.group(1) if cuda else None,
        indices=tuple(row[0] for row in rows),
        gpus=tuple(f"{row[0]}: {row[1]}, {row[2]}" for row in rows),
    )


def probe_nvidia_smi() -> NvidiaSmi | None:
    """The driver's report, or None without nvidia-smi (no NVIDIA driver on this machine)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        query = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        banner = subprocess.run([exe], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(query, banner)


@dataclass(frozen=True)
class CudaStatus:
    """What a process sees: torch's build and devices, CUDA_VISIBLE_DEVICES and the driver."""

    torch_version: str
    torch_cuda: str | None  # torch.version.cuda: None for a CPU-only build
    device_count: int
    devices: tuple[str, ...]
    visible_devices: str | None  # CUDA_VISIBLE_DEVICES; None when unset
    driver: NvidiaSmi | None

    @classmethod
    def probe(cls) -> CudaStatus:
        """Initialises CUDA in this process: call only after the job's devices are set."""
        import torch

        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
        devices = []
        for index in range(count):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                f"cuda:{index} {props.name} {props.total_memory / 2**30:.1f} GiB, compute capability {props.major}.{props.minor}"
            )
        return cls(
            torch_version=torch.__version__,
            torch_cuda=torch.version.cuda,
            device_count=count,
            devices=tuple(devices),
            visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            driver=probe_nvidia_smi(),
        )

    def summary(self) -> str:
        """One line: torch and its CUDA build, CUDA_VISIBLE_DEVICES, devices torch sees, the driver."""
        visible = "unset" if self.visible_devices is None else repr(self.visible_devices)
        if self.driver is None:
            driver = "NVIDIA driver: none found (no nvidia-smi)"
        else:
            driver = f"NVIDIA driver {self.driver.driver} (supports CUDA up to {self.driver.driver_cuda or '?'}, {len(self.driver.indices)} GPUs)"
        return (
            f"torch {self.torch_version} (CUDA build: {self.torch_cuda or 'none, CPU-only'}), "
            f"CUDA_VISIBLE_DEVICES={visible}, torch.cuda.device_count()={self.device_count}, {driver}"
        )

    def report_lines(self) -> list[str]:
        lines = [
            f"torch={self.torch_version} cuda_build={self.torch_cuda}",
            f"CUDA_VISIBLE_DEVICES={'' if self.visible_devices is None else self.visible_devices}"
            + (" (unset)" if self.visible_devices is None else ""),
            f"torch.cuda.device_count()={self.device_count}",
            *self.devices,
        ]
        if self.driver is None:
            lines.append("nvidia-smi: not found (no NVIDIA driver on this machine)")
        else:
            lines.append(f"driver={self.driver.driver} driver_cuda={self.driver.driver_cuda}")
            lines += [f"nvidia-smi GPU {gpu}" for gpu in self.driver.gpus]
        return lines


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def cuda_hint(status: CudaStatus) -> str:
    """What to change, from what the process saw (most specific cause first)."""
    if status.torch_cuda is None:
        return (
            f"this torch ({status.torch_version}) is a CPU-only build: install the CUDA build of torch that "
            f"the driver supports (see {GPU_DOC}: pip install torch --index-url https://download.pytorch.org/whl/cu<XY>)"
        )
    if status.visible_devices is not None and not status.visible_devices.strip():
        return "CUDA_VISIBLE_DEVICES is empty: the scheduler or the local GPU pool gave this job no device"
    if status.driver is None:
        return (
            "no NVIDIA driver on this machine (no nvidia-smi): run the job on a GPU node (SLURM: the model's "
            "resources.gpu and slurm_partition), or set the model's resources.gpu: 0 to run on the CPU"
        )
    if status.driver.driver_cuda and _version(status.driver.driver_cuda) < _version(status.torch_cuda):
        return (
            f"the driver {status.driver.driver} supports CUDA up to {status.driver.driver_cuda}, older than "
            f"this torch's CUDA {status.torch_cuda}: install the torch build for CUDA {status.driver.driver_cuda} "
            f"or older (see {GPU_DOC}), or update the driver"
        )
    return (
        "the driver lists GPUs that torch cannot use: check CUDA_VISIBLE_DEVICES, that the GPUs are not "
        "busy in exclusive mode, and `python -c 'import torch; torch.cuda.init()'` for the CUDA error"
    )


def gpu_word(n: int) -> str:
    return f"{n} GPU" + ("" if n == 1 else "s")


def check_devices(job: str, asked: int, status: CudaStatus) -> str | None:
    """None if a job that asked for `asked` GPUs sees at least that many CUDA devices, else the message
    that stops it (named job, what it asked for, what it saw, what to change)."""
    if asked <= 0 or status.device_count >= asked:
        return None
    seen = "none" if status.device_count == 0 else f"only {status.device_count}"
    hint = (
        cuda_hint(status)
        if status.device_count == 0
        else "give the job as many devices as it asks for (CUDA_VISIBLE_DEVICES, SGTR_EM_GPUS or the scheduler)"
    )
    return f"{job} asked for {gpu_word(asked)} but sees {seen}: {status.summary()}. {hint[0].upper()}{hint[1:]}."


# ---------------------------------------------------------------------------------------- allocation --


def gpu_pool(
    env: MutableMapping[str, str], smi: Callable[[], NvidiaSmi | None] = probe_nvidia_smi
) -> tuple[list[str], str] | None:
    """The devices local jobs share and where that list came from: `SGTR_EM_GPUS`, else a set
    `CUDA_VISIBLE_DEVICES` (the user's restriction), else nvidia-smi's GPU indices; None when none of them
    says (no NVIDIA driver)."""
    for name in (POOL_ENV, "CUDA_VISIBLE_DEVICES"):
        if name in env:
            return [d.strip() for d in env[name].split(",") if d.strip()], name
    report = smi()
    return (list(report.indices), "nvidia-smi") if report is not None else None


@dataclass
class GpuLease:
    """Devices held by this process (their lock files stay open until `release` or the process ends)."""

    devices: tuple[str, ...]
    lock_dir: Path
    handles: list[IO[str]] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for handle in self.handles:
            handle.close()  # closing the only descriptor drops its flock
        self.handles.clear()


def _lock_file(lock_dir: Path, device: str) -> Path:
    return lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9._-]', '_', device)}.lock"


def holders(lock_dir: Path, devices: Sequence[str]) -> list[str]:
    """Who holds each device, as its lock file says (the last holder's pid and job)."""
    out = []
    for device in devices:
        try:
            text = _lock_file(lock_dir, device).read_text().strip()
        except OSError:
            text = ""
        out.append(f"{device}: {text or '?'}")
    return out


def acquire(
    count: int,
    pool: Sequence[str],
    lock_dir: Path,
    *,
    holder: str = "",
    poll_seconds: float = 1.0,
    timeout: float | None = None,
    report_every: float = 60.0,
) -> GpuLease:
    """Take `count` devices of `pool` (the first free ones, in pool order), waiting while others hold them.
    A partial take is given back before waiting, so two jobs each holding part of what they need cannot
    wait on each other. `timeout` seconds (None: no limit) then GpuError."""
    if count > len(pool):
        raise GpuError(
            f"{holder or 'job'} asks for {gpu_word(count)} but the GPU pool has {len(pool)} ({','.join(pool) or 'none'})"
        )
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    last_report: float | None = None
    while True:
        lease = GpuLease((), lock_dir)
        taken = []
        for device in pool:
            handle = open(_lock_file(lock_dir, device), "a+", encoding="utf-8")  # noqa: SIM115 - held for the job
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            taken.append(device)
            lease.handles.append(handle)
            if len(taken) == count:
                break
        if len(taken) == count:
            lease.devices = tuple(taken)
            for held in lease.handles:
                held.seek(0)
                held.truncate()
                held.write(f"pid {os.getpid()} {holder}\n")
                held.flush()
            return lease
        lease.release()
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            raise GpuError(
                f"{holder or 'job'}: no {gpu_word(count)} free in the pool {','.join(pool)} after {timeout:.0f} s "
                f"(held: {'; '.join(holders(lock_dir, pool))})"
            )
        if last_report is None or now - last_report >= report_every:
            log.info(
                "waiting for %s of %s (held: %s)", gpu_word(count), ",".join(pool), "; ".join(holders(lock_dir, pool))
            )
            last_report = now
        time.sleep(poll_seconds * (0.5 + random.random()))


def assign_devices(
    job: str,
    count: int,
    env: MutableMapping[str, str],
    *,
    lock_dir: Path | None = None,
    smi: Callable[[], NvidiaSmi | None] = probe_nvidia_smi,
    timeout: float | None = None,
) -> GpuLease | None:
    """Give a local job its own devices: take `count` from the pool and set env's CUDA_VISIBLE_DEVICES to
    them; a job asking for none is hidden from the pool's GPUs. Nothing under SLURM (unless SGTR_EM_GPUS
    is set) or when no pool is known (then `check_devices` decides)."""
    if "SLURM_JOB_ID" in env and POOL_ENV not in env:
        log.info(
            "SLURM job %s: devices as granted (CUDA_VISIBLE_DEVICES=%s)",
            env["SLURM_JOB_ID"],
            env.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
        return None
    found = gpu_pool(env, smi)
    if found is None:
        return None
    pool, source = found
    if count <= 0:
        if pool:
            env["CUDA_VISIBLE_DEVICES"] = ""
            log.info(
                "%s asked for no GPU: the pool's GPUs (%s, from %s) are hidden from it", job, ",".join(pool), source
            )
        return None
    lock_dir = lock_dir or Path(env.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)
    lease = acquire(count, pool, lock_dir, holder=job, timeout=timeout)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(lease.devices)
    # CUDA numbers devices fastest first unless told otherwise; nvidia-smi's (and SGTR_EM_GPUS's) indices
    # are in PCI bus order
    env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    log.info(
        "%s: CUDA_VISIBLE_DEVICES=%s (%s of the pool %s from %s; locks in %s)",
        job,
        env["CUDA_VISIBLE_DEVICES"],
        gpu_word(count),
        ",".join(pool),
        source,
        lock_dir,
    )
    return lease


_held: list[GpuLease] = []


def prepare_job_gpus(
    job: str,
    asked: int,
    granted: int | None = None,
    *,
    env: MutableMapping[str, str] | None = None,
    probe: Callable[[], CudaStatus] = CudaStatus.probe,
    smi: Callable[[], NvidiaSmi | None] = probe_nvidia_smi,
) -> CudaStatus | None:
    """Everything a model job does about GPUs before its model loads: stop if the scheduler granted fewer
    GPUs than the config asks for (a local profile's `resources: gpu` below the job's), take its devices
    (`assign_devices`), then check that it sees them (`check_devices`). Raises GpuError with the message,
    unless SGTR_EM_GPU_CHECK=warn. Returns what the job saw (None for a job asking for none)."""
    env = os.environ if env is None else env
    if granted is not None and granted < asked:
        raise GpuError(
            f"{job} asked for {gpu_word(asked)} in the config but was scheduled with {granted}: Snakemake "
            "lowers a job's resources to the run's limit, here `resources: gpu` of the profile (profiles/local: "
            f"set it to this machine's GPU count) or `--resources gpu=N`; see {GPU_DOC}"
        )
    if not _held:
        lease = assign_devices(job, asked, env, smi=smi)
        if lease is not None:
            _held.append(lease)
            atexit.register(lease.release)
    if asked <= 0:
        return None
    status = probe()
    problem = check_devices(job, asked, status)
    if problem is None:
        log.info("%s: %s; %s", job, status.summary(), "; ".join(status.devices))
    elif env.get(CHECK_ENV, "").lower() == "warn":
        log.warning("%s (%s=warn: continuing)", problem, CHECK_ENV)
    else:
        raise GpuError(problem)
    return status


def job_name(rule: str, wildcards: dict[str, Any]) -> str:
    """`rule (key=value, ...)`: how a message names a Snakemake job."""
    keys = ", ".join(f"{key}={value}" for key, value in wildcards.items())
    return f"{rule} ({keys})" if keys else rule


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sgtr_em.gpus [N]`: what this process sees (torch, CUDA, driver, devices); exit 1 with
    the job's message when it sees fewer than N CUDA devices (default 1). Run it where the jobs run, e.g.
    `srun --partition=gpu --gpus=1 python -m sgtr_em.gpus`."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m sgtr_em.gpus",
        description="What this process sees (torch, CUDA, driver, devices); exit 1 when it sees fewer CUDA "
        f"devices than asked for. Run it where the jobs run (see {GPU_DOC}).",
    )
    parser.add_argument(
        "gpus", nargs="?", type=int, default=1, help="CUDA devices the process should see (default: 1; 0: none)"
    )
    args = parser.parse_args(argv)
    print(device_report(), end="")
    problem = check_devices("this process", args.gpus, CudaStatus.probe())
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


def device_report() -> str:
    """Host, scheduler-granted GPUs, what torch sees and what the NVIDIA driver reports (version, newest
    CUDA it supports, its GPUs): what a user checks on a new cluster (see sgtr_em.gpus)."""
    import platform

    import torch

    lines = [
        f"host={platform.node()}",
        f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', '')}",
        f"SLURM_JOB_PARTITION={os.environ.get('SLURM_JOB_PARTITION', '')}",
        *CudaStatus.probe().report_lines(),
    ]
    if torch.cuda.is_available():
        lines.append(f"bf16={torch.cuda.is_bf16_supported()}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
