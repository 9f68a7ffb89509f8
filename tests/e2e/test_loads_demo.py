"""The model libraries are imported only by the jobs that use them: on a copy of the finished demo, the table and
figure jobs import none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from conftest import SNAKEMAKE, workflow_env

from sgtr_em.bench import MODEL_LIBRARIES, TABLE_SCRIPTS

AUDIT = """
import atexit, json, os, sys

def _write():
    path = os.path.join(os.environ["SGTR_EM_IMPORT_AUDIT"], f"{os.getpid()}.json")
    with open(path, "w") as handle:
        json.dump({"argv": sys.argv, "modules": sorted(m for m in sys.modules if "." not in m)}, handle)

atexit.register(_write)
"""


def test_table_and_figure_jobs_import_no_model_library(demo, tmp_path):
    """A copy of the finished demo redraws a table and a figure; every job process records the modules it
    imported (a sitecustomize on the path): the table and figure jobs imported no model library."""
    workdir = tmp_path / "demo"
    shutil.copytree(demo, workdir, symlinks=True)
    audit, hooks = tmp_path / "audit", tmp_path / "hooks"
    audit.mkdir()
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT)
    env_path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [
            SNAKEMAKE,
            "--cores",
            "1",
            "--forcerun",
            "tidy_table",
            "figure",
            "results/tables/truthfulqa_summary.csv",
            "results/figures/demo-target/fig2_truthfulqa.png",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env=workflow_env(PYTHONPATH=env_path, SGTR_EM_IMPORT_AUDIT=str(audit)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [json.loads(p.read_text()) for p in audit.glob("*.json")]
    scripts = {name: [j for j in jobs if any(name in arg for arg in j["argv"])] for name in TABLE_SCRIPTS[:2]}
    assert all(scripts.values()), [j["argv"] for j in jobs]
    for name, runs in scripts.items():
        for run in runs:
            assert not set(run["modules"]) & set(MODEL_LIBRARIES), (name, set(run["modules"]) & set(MODEL_LIBRARIES))
