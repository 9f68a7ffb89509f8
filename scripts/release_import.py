"""Released results as our evaluation JSONs (protocol: reference), per-file / per-condition / grid tables,
and the report of every file that could not be mapped."""

import logging
from pathlib import Path

from sgtr_em.release.importer import import_release, write_import
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
layout = snakemake.params.layout
result = import_release(
    snakemake.input.raw,
    truthfulqa_dir=layout["truthfulqa_dir"],
    self_recognition_dir=layout["self_recognition_dir"],
    model_aliases=layout["models"],
    other_sources=layout["other_sources"],
    article_id_patterns=layout["article_id_patterns"],
)
write_import(
    result,
    eval_dir=snakemake.output.evals,
    tables_dir=Path(snakemake.output.truthfulqa_per_file).parent,
    unmapped_report=snakemake.output.unmapped,
    protocol=snakemake.params.protocol,
)
logging.info(
    "imported %d TruthfulQA and %d self-recognition files; %d not imported (listed in %s)",
    len(result.truthfulqa_rows),
    len(result.self_recognition_rows),
    len(result.unmapped),
    snakemake.output.unmapped,
)
