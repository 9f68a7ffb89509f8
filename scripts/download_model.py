"""Download a hub model at its pinned revision into the hub cache (HF_HOME) and record its snapshot."""

import logging

from sgtr_em.hub import fetch_snapshot, write_record
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
source = snakemake.params.source
# The revision is the config's commit, or the one `snakemake pin_sources` recorded (None: the main branch,
# allowed only without strict_pins).
record = fetch_snapshot(source["hf"], source.get("revision"))
write_record(snakemake.output[0], record)
logging.info("%s@%s: %s", record["repo_id"], record["revision"], record["snapshot_path"])
