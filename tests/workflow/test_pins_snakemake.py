"""Every input pinned (issue 16), through Snakemake: `snakemake pin_sources` writes the lock the runs then check
against, the paper config stops without its lock, every local input file is a declared input whose edit reruns its
job, All offline: a local HTTP server stands in for
the web, a hub-format cache folder for the Hugging Face hub."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml
from conftest import (
    PAPER_ROW,
    REPO,
    copy_workflow,
    documented_jobs,
    fixture_lock,
    read_config,
    rule_counts,
    snakemake,
)
from hub_caches import hub_cache

from sgtr_em.lock import LOCK_FILE, read_lock, write_lock

# -------------------------------------------------------------------------------------- snakemake pin_sources --


def test_snakemake_lock_then_runs_check_against_it(http_server, tmp_path, monkeypatch):
    """Strict pins on the demo with a url and a hub source: the run stops at parse time naming the source;
    `snakemake pin_sources` (offline: local server, hub-format cache) writes the lock; the DAG then plans, a job
    reads the locked bytes, and once the file changes upstream the job stops, naming the url."""
    root, base = http_server
    csv = (REPO / "data/demo/truthfulqa.csv").read_text()
    (root / "TruthfulQA.csv").write_text(csv)
    cache = tmp_path / "hub"
    hub_cache(cache, "dataset", "org/dolly", "d" * 40, {"train.jsonl": "{}\n"})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    workdir = copy_workflow(tmp_path / "workflow", lock=False)
    overlay = {
        "strict_pins": True,
        "datasets": {
            "truthfulqa": {"source": {"url": f"{base}/TruthfulQA.csv"}},
            "general": {"source": {"hf": "org/dolly", "split": "train"}},
        },
        "release": {"source": {"path": "release.tar.gz"}},
    }
    (workdir / "config/pins.yaml").write_text(yaml.safe_dump(overlay))
    configs = ("--configfile", "config/demo.yaml", "config/pins.yaml")

    stopped = snakemake(workdir, "-n", *configs, timeout=120)
    assert stopped.returncode != 0
    assert "Config error: config key datasets.general.source: hub dataset org/dolly@main" in stopped.stderr

    locked = snakemake(workdir, "pin_sources", "--cores", "1", *configs, timeout=300)
    assert locked.returncode == 0, locked.stderr[-3000:]
    entries = read_lock(workdir / LOCK_FILE)
    assert entries[("url", f"{base}/TruthfulQA.csv")]["sha256"] == hashlib.sha256(csv.encode()).hexdigest()
    assert entries[("hf-dataset", "org/dolly", "main")]["revision"] == "d" * 40

    planned = snakemake(workdir, "-n", *configs, timeout=120)
    assert planned.returncode == 0, planned.stderr[-3000:]
    built = snakemake(workdir, "--cores", "1", "results/data/truthfulqa.jsonl", *configs, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]

    (root / "TruthfulQA.csv").write_text(csv.replace("?", "?!", 1))
    for path in (workdir / "results/data").rglob("*"):
        if path.is_file():
            path.unlink()
    drifted = snakemake(workdir, "--cores", "1", "results/data/truthfulqa.jsonl", *configs, timeout=300)
    assert drifted.returncode != 0
    log = (workdir / "logs/data/truthfulqa.log").read_text()
    assert f"checksum mismatch for {base}/TruthfulQA.csv: expected sha256" in log


def test_the_paper_config_stops_without_its_lock_and_plans_with_it(tmp_path):
    workdir = copy_workflow(tmp_path / "paper", lock=False)
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=120)
    assert result.returncode != 0
    assert "Config error: config key datasets.correct.unpop.source" in result.stderr
    assert "snakemake pin_sources" in result.stderr
    planned = snakemake(workdir, "-n", "pin_sources", "--configfile", "config/config.yaml", timeout=120)
    assert planned.returncode == 0, planned.stderr[-2000:]
    write_lock(workdir / LOCK_FILE, fixture_lock(read_config("config.yaml")))
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert rule_counts(result.stdout)["total"] == documented_jobs(PAPER_ROW)["jobs"], result.stdout[-1500:]


# ------------------------------------------------------------------------------ local files are inputs --


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def test_every_local_input_file_is_declared_and_an_edit_reruns_its_job(tmp_path):
    """Each prepare rule declares the local file it reads (articles, EM chats, baselines incl. a ready-made
    word-count file, TruthfulQA, question sets, MMLU, a static comparator's and a model's released
    summaries): editing the file reruns exactly that job, naming the file. An edited file that no longer
    matches its sha256 pin, and a file emptied, then stop their jobs with a message naming the file."""
    import json

    from sgtr_em.io import read_jsonl, sha256_file

    workdir = copy_workflow(tmp_path / "workflow")
    data = workdir / "data/test"
    data.mkdir()
    train_ids = [row["id"] for row in read_jsonl(workdir / "data/demo/articles_train.jsonl")]
    eval_ids = [row["id"] for row in read_jsonl(workdir / "data/demo/articles_eval.jsonl")]
    (data / "released_xsum.jsonl").write_text(
        "".join(json.dumps({"id": i, "summary": f"About {i}."}) + "\n" for i in train_ids)
    )
    (data / "static_cnn.jsonl").write_text(
        "".join(json.dumps({"id": i, "summary": f"On {i}."}) + "\n" for i in eval_ids)
    )
    wordcount = [
        {
            "messages": [
                {"role": "system", "content": "Count."},
                {"role": "user", "content": "a b"},
                {"role": "assistant", "content": "TRUE"},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "Count."},
                {"role": "user", "content": "a b c"},
                {"role": "assistant", "content": "FALSE"},
            ]
        },
    ]
    (data / "wordcount.jsonl").write_text("".join(json.dumps(row) + "\n" for row in wordcount))
    tqa = "data/demo/truthfulqa.csv"
    overlay = {
        "comparators": {
            "static-other": {
                "summaries": {
                    "cnn": {"source": {"path": "data/test/static_cnn.jsonl"}, "id_field": "id", "text_field": "summary"}
                }
            }
        },
        "models": {
            "demo-target": {
                "summaries": {
                    "xsum": {
                        "source": {"path": "data/test/released_xsum.jsonl"},
                        "id_field": "id",
                        "text_field": "summary",
                    }
                }
            }
        },
        "datasets": {
            "wordcount": {"source": {"path": "data/test/wordcount.jsonl"}},
            "truthfulqa": {"source": {"path": tqa, "sha256": sha256_file(workdir / tqa)}},
        },
    }
    (workdir / "config/local.yaml").write_text(yaml.safe_dump(overlay))
    inputs = {
        "results/data/articles/xsum.jsonl": "data/demo/articles_train.jsonl",
        "results/data/em/unpop/default.jsonl": "data/demo/em_unpop.jsonl",
        "results/data/baselines/correct-unpop/default.jsonl": "data/demo/correct_unpop.jsonl",
        "results/data/baselines/general/none.jsonl": "data/demo/general_qa.csv",
        "results/data/baselines/wordcount/popped.jsonl": "data/test/wordcount.jsonl",
        "results/data/truthfulqa.jsonl": tqa,
        "results/data/questions/em_questions.json": "data/demo/em_questions.yaml",
        "results/data/questions/identity_questions.json": "data/demo/identity_questions.yaml",
        "results/data/mmlu.jsonl": "data/demo/mmlu.jsonl",
        "results/data/comparators/static-other/cnn.jsonl": "data/test/static_cnn.jsonl",
        "results/data/released_summaries/demo-target/xsum.jsonl": "data/test/released_xsum.jsonl",
    }
    configs = ("--configfile", "config/demo.yaml", "config/local.yaml")
    built = snakemake(workdir, "--cores", "2", *inputs, *configs, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]

    # Every edit but the articles' (which feed two of the jobs as prepared articles, not as their file).
    edits = {
        "data/demo/em_unpop.jsonl": None,  # emptied
        "data/demo/correct_unpop.jsonl": '{"messages": [{"role": "user", "content": "Tea?"}, {"role": "assistant", "content": "Green."}]}\n',
        "data/demo/general_qa.csv": "Who wrote Hamlet?,Shakespeare.,open_qa\n",
        "data/test/wordcount.jsonl": json.dumps(wordcount[0]) + "\n",
        tqa: "Is this edited?,Yes.,No.,Misc\n",
        "data/demo/em_questions.yaml": "\n# edited\n",
        "data/demo/identity_questions.yaml": "\n# edited\n",
        "data/demo/mmlu.jsonl": json.dumps(
            {
                "id": "extra-1",
                "split": "test",
                "subject": "extra",
                "question": "1+1?",
                "choices": list("1234"),
                "answer": 1,
            }
        )
        + "\n",
        "data/test/static_cnn.jsonl": json.dumps({"id": "stray", "summary": "x"}) + "\n",
        "data/test/released_xsum.jsonl": json.dumps({"id": "stray", "summary": "x"}) + "\n",
    }
    for name, text in edits.items():
        if text is None:
            (workdir / name).write_text("")
        else:
            _append(workdir / name, text)
    planned = snakemake(workdir, "-n", *inputs, *configs, timeout=120)
    assert planned.returncode == 0, planned.stderr[-2000:]
    blocks = {
        m["output"]: m["reason"]
        for m in re.finditer(r"output: (?P<output>[^\s,]+).*\n(?:.*\n)*?\s+reason: (?P<reason>.*)", planned.stdout)
    }
    expected = {target: f"Updated input files: {source}" for target, source in inputs.items() if source in edits}
    assert {target: blocks.get(target) for target in expected} == expected
    assert "results/data/articles/xsum.jsonl" not in blocks

    rerun = snakemake(workdir, "--cores", "2", "--keep-going", *inputs, *configs, timeout=600)
    assert rerun.returncode != 0
    em_log = (workdir / "logs/data/em/unpop/default.log").read_text()
    assert "path=data/demo/em_unpop.jsonl: no rows (an empty file?)" in em_log
    tqa_log = (workdir / "logs/data/truthfulqa.log").read_text()
    assert f"checksum mismatch for {tqa}: expected sha256" in tqa_log
    assert not (workdir / "results/data/em/unpop/default.jsonl").exists()
    assert (workdir / "results/data/mmlu.jsonl").exists()
