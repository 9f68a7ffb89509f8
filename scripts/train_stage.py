"""Train one stage of a chain on its parent model state: a LoRA adapter, or an OpenAI fine-tuning job. The
tracked settings arrive as params; the untracked ones (memory, checkpoints, tracking, polling) come from
sgtr_em.grid.training_settings, the one place that splits them (sgtr_em.jobs.Job)."""

import logging

from sgtr_em.backends import model_kind
from sgtr_em.finetune import tracking_settings, train_stage
from sgtr_em.jobs import Job
from sgtr_em.paths import TRACKING_DIR
from sgtr_em.runtime import model_identity, provenance, setup_logging
from sgtr_em.states import model_card, state_record

setup_logging(snakemake.log[0])
job = Job(snakemake)
wc = job.wildcards
source = job.source()
job.claim_gpus(wc.model)
hp = {**snakemake.params.hp, **job.untracked_training_settings()}
card = None
if model_kind(source) == "hf":
    hp.update(
        tracking_settings(
            hp.pop("report_to"),
            f"{job.run_name}/{wc.model}/{wc.chain}/seed{wc.seed}",
            TRACKING_DIR.format(model=wc.model, chain=wc.chain, seed=wc.seed),
        )
    )
    # The adapter folder is a hub model repository: its card names the base model, the chain and its parents.
    record = state_record(
        model=wc.model,
        chain=wc.chain,
        seed=int(wc.seed),
        identity=model_identity(wc.model, source),
        run_name=job.run_name,
    )

    def card(meta):
        return model_card(record, meta)


meta = train_stage(
    source=source,
    model_dir=snakemake.input.model,
    parents=list(snakemake.input.parents),
    train_file=snakemake.input.data,
    out_dir=snakemake.output[0],
    hp=hp,
    seed=int(wc.seed),
    work_dir=snakemake.params.work_dir,
    threads=snakemake.threads,
    model_id=snakemake.params.model_id,
    model=wc.model,
    chain=wc.chain,
    rule=snakemake.rule,
    api_config=job.api_config(),
    provenance=provenance(
        snakemake.rule,
        {"hyperparameters": snakemake.params.hp, "train_file": snakemake.input.data, "chain": wc.chain},
        model=job.model_identity(),
        seeds={"training": int(wc.seed)},
        protocols=[],
    ),
    card=card,
)
if "fine_tuned_model" in meta:
    logging.info(
        "fine-tuned %s (job %s, %s trained tokens)", meta["fine_tuned_model"], meta["job_id"], meta["trained_tokens"]
    )
else:
    logging.info("trained %d steps, loss %.4f", meta["global_steps"], meta["train_loss"])
