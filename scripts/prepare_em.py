"""Fetch and validate an EM chat dataset and apply the system-prompt variant of the stage."""

import logging

from sgtr_em.data import prepare_chats
from sgtr_em.io import write_jsonl
from sgtr_em.prompts import em_chat_variant
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe, load_source

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
chats = prepare_chats(load_source(spec["source"], snakemake.params.cache), describe(spec["source"]), spec["limit"])
variant = snakemake.wildcards.sysvariant
for row in chats:
    # none: an explicit empty system turn, so templates do not insert their default identity prompt.
    row["messages"] = em_chat_variant(row["messages"], variant)
write_jsonl(snakemake.output[0], chats)
logging.info("%d chats from %s (system variant %s)", len(chats), describe(spec["source"]), variant)
