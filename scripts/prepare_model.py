"""Build a tiny demo model offline (or reuse an identical earlier build)."""

import logging

from sgtr_em.io import atomic_dir, read_articles, read_jsonl
from sgtr_em.runtime import setup_logging
from sgtr_em.tiny import build_key, build_or_reuse, build_tiny_model

setup_logging(snakemake.log[0])
source = snakemake.params.source
out_dir = snakemake.output[0]


def build(staging):
    articles, extra = [], []
    for path in snakemake.input.corpus:
        if "/articles/" in path:
            articles += list(read_articles(path).values())
        elif path.endswith("truthfulqa.jsonl"):
            extra += [f"{q['question']} {q['best']} {q['incorrect']}" for q in read_jsonl(path)]
        else:
            extra += [turn["content"] for row in read_jsonl(path) for turn in row["messages"]]
    return build_tiny_model(
        articles,
        extra,
        staging,
        style=source["style"],
        seed=source["seed"],
        identity_system_prompt=snakemake.params.identity_system_prompt or "",
        threads=snakemake.threads,
        **snakemake.params.tiny,
    )


spec = {
    "source": source,
    "identity_system_prompt": snakemake.params.identity_system_prompt,
    "tiny": snakemake.params.tiny,
}
key = build_key(spec, snakemake.input.corpus)
# Built beside the output and renamed into place: a killed build never leaves a model that looks complete.
with atomic_dir(out_dir) as staging:
    info, reused = build_or_reuse(staging, key, build)
logging.info("%s demo model %s: %s", "reused" if reused else "built", key[:12], info)
