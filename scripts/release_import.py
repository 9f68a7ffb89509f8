"""Released results as our evaluation JSONs (protocol: reference), per-file / per-condition / grid tables,
the report of every file not mapped, the duplicates report and the authors' plotting lists as resolved."""

import logging
from collections import Counter
from pathlib import Path

from sgtr_em.release.importer import import_release, write_import
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
result = import_release(snakemake.input.raw, **snakemake.params.layout)
write_import(
    result,
    eval_dir=snakemake.output.evals,
    tables_dir=Path(snakemake.output.truthfulqa_per_file).parent,
    unmapped_report=snakemake.output.unmapped,
    duplicates_report=snakemake.output.duplicates,
    authors_lists=snakemake.output.authors_lists,
    protocol=snakemake.params.protocol,
)
for kind, rows in (("TruthfulQA", result.truthfulqa_rows), ("self-recognition", result.self_recognition_rows)):
    logging.info(
        "%s: %d result files re-scored, by status %s", kind, len(rows), dict(Counter(r["status"] for r in rows))
    )
logging.info(
    "%d evaluation JSONs; %d files not mapped (listed with reasons in %s); %d series in conditions several claim (%s)",
    len(result.evals),
    len(result.unmapped),
    snakemake.output.unmapped,
    len(result.duplicates),
    snakemake.output.duplicates,
)
