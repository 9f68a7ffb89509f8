"""Train one stage of a chain on its parent model state: a LoRA adapter, or an OpenAI fine-tuning job."""

import logging

from sgtr_em.backends import train_stage
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
meta = train_stage(
    source=snakemake.config["models"][wc.model]["source"],
    model_dir=snakemake.input.model,
    parents=list(snakemake.input.parents),
    train_file=snakemake.input.data,
    out_dir=snakemake.output[0],
    hp=snakemake.params.hp,
    seed=int(wc.seed),
    work_dir=snakemake.params.work_dir,
    threads=snakemake.threads,
    model_id=snakemake.params.model_id,
    model=wc.model,
    chain=wc.chain,
    api_config=snakemake.config.get("openai"),
)
if "fine_tuned_model" in meta:
    logging.info("fine-tuned %s (job %s, %s trained tokens)", meta["fine_tuned_model"], meta["job_id"], meta["trained_tokens"])
else:
    logging.info("trained %d steps, loss %.4f, %.1f s", meta["global_steps"], meta["train_loss"], meta["seconds"])
