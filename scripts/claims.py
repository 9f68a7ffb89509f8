"""The paper's claims checked on one target model's evaluation JSONs (ours, or the release's imported ones)."""

import logging
from collections import Counter

from sgtr_em.claims import CLAIM_COLUMNS, Claim, Settings, check_claims, load_evaluations
from sgtr_em.io import write_csv
from sgtr_em.published import published_for
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
model = snakemake.wildcards.model
rows = check_claims(
    [Claim(**claim) for claim in snakemake.params.claims],
    load_evaluations(snakemake.input, model=model),
    model,
    Settings.from_config(snakemake.params.settings),
    published_for(snakemake.params.published, model, getattr(snakemake.params, "model_id", None)),
)
write_csv(snakemake.output[0], rows, CLAIM_COLUMNS)
for row in rows:
    logging.info("%s: %s (%s)", row["claim_id"], row["verdict"], row["reason"])
logging.info("%d claims about %s: %s", len(rows), model, dict(Counter(row["verdict"] for row in rows)))
