"""Train one LoRA stage on its parent model state."""

import logging

from sgtr_em.runtime import setup_logging
from sgtr_em.train import train_lora

setup_logging(snakemake.log[0])
meta = train_lora(
    snakemake.input.model,
    snakemake.input.parents,
    snakemake.input.data,
    snakemake.output[0],
    snakemake.params.hp,
    seed=int(snakemake.wildcards.seed),
    work_dir=snakemake.params.work_dir,
    threads=snakemake.threads,
    model_id=snakemake.params.model_id,
)
logging.info("trained %d steps, loss %.4f, %.1f s", meta["global_steps"], meta["train_loss"], meta["seconds"])
