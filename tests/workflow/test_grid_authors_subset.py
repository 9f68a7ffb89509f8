"""The paper grid against the authors' runs, planned by Snakemake: `--config subset=authors` trains and evaluates
exactly the conditions their released result files name, and no extension."""

from __future__ import annotations

import re

from conftest import authors_conditions, copy_workflow, load_config, read_config, snakemake

from sgtr_em.grid import model_extensions


def test_the_authors_subset_plans_their_trainings_and_none_of_the_extensions(tmp_path):
    """`snakemake -n --config subset=authors` (the paper config, offline with the fixture lock): every training
    job is a condition of theirs, and no extension is planned."""
    workdir = copy_workflow(tmp_path / "authors")
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", "--config", "subset=authors", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = set(re.findall(r"results/adapters/([^/\s]+)/([^/\s]+)/seed\d+", result.stdout))
    theirs = authors_conditions()
    # every training is a condition of theirs or its first stage (`sgtr-confuse.none` of `sgtr-confuse.none+em-unpop`)
    trained = {(m, "+".join(c.split("+")[: i + 1])) for m, chains in theirs.items() for c in chains for i in range(2)}
    assert planned and planned <= trained, sorted(planned - trained)
    extensions = {(m, c) for m in theirs for c in model_extensions(load_config(read_config("config.yaml")), m)}
    evaluated = set(re.findall(r"results/eval/truthfulqa/([^/\s]+)/([^/\s]+)/seed\d+\.json", result.stdout))
    assert evaluated == {(m, c) for m, chains in theirs.items() for c in chains}
    assert not evaluated & extensions
