"""Train one stage of a chain on its parent model state: a LoRA adapter, or an OpenAI fine-tuning job."""

import logging
from pathlib import Path

from job_models import api_config, claim_gpus

from sgtr_em.backends import model_kind
from sgtr_em.config import MEMORY_SETTINGS, training_hyperparameters
from sgtr_em.finetune import tracking_settings, train_stage
from sgtr_em.io import read_json, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging
from sgtr_em.states import state_record, write_model_card
from sgtr_em.targets import TRACKING_DIR

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
source = snakemake.config["models"][wc.model]["source"]
claim_gpus(snakemake, wc.model)
hp = dict(snakemake.params.hp)
if model_kind(source) == "hf":
    # Read here, not params: how often to checkpoint and how to fit memory never change the adapter, so
    # they trigger no rerun.
    hp["checkpoint_steps"] = snakemake.config["finetune"]["checkpoint_steps"]
    recipe = training_hyperparameters(snakemake.config, wc.model, wc.chain.split("+")[-1])
    hp.update({k: recipe[k] for k in MEMORY_SETTINGS})
    # Experiment tracking changes no adapter either.
    hp.update(
        tracking_settings(
            snakemake.config["finetune"]["report_to"],
            f"{snakemake.config['run_name']}/{wc.model}/{wc.chain}/seed{wc.seed}",
            TRACKING_DIR.format(model=wc.model, chain=wc.chain, seed=wc.seed),
        )
    )
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
    api_config=api_config(snakemake),
)
# Provenance joins the stage's record (training_meta.json, or openai_model.json for an API model).
record_path = Path(snakemake.output[0]) / (
    "openai_model.json" if model_kind(source) == "openai" else "training_meta.json"
)
record = read_json(record_path)
record["provenance"] = provenance(
    snakemake.rule,
    {"hyperparameters": snakemake.params.hp, "train_file": snakemake.input.data, "chain": wc.chain},
    model=model_identity(wc.model, source, snakemake.input.model),
    seeds={"training": int(wc.seed)},
    protocols=[],
)
write_json(record_path, record)
if model_kind(source) == "hf":
    # The adapter folder is a hub model repository: its card names the base model, the chain and its parents.
    write_model_card(
        snakemake.output[0],
        state_record(
            model=wc.model,
            chain=wc.chain,
            seed=int(wc.seed),
            identity=model_identity(wc.model, source),
            run_name=snakemake.config["run_name"],
        ),
    )
if "fine_tuned_model" in meta:
    logging.info(
        "fine-tuned %s (job %s, %s trained tokens)", meta["fine_tuned_model"], meta["job_id"], meta["trained_tokens"]
    )
else:
    logging.info("trained %d steps, loss %.4f", meta["global_steps"], meta["train_loss"])
