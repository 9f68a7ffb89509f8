"""Training data of a benign baseline stage: word counting on EM user turns, or a chat dataset (the
correct counterpart of an EM dataset, general-knowledge QA), in the stage's system-prompt variant."""

import logging

from sgtr_em.baselines import chat_baseline, prebuilt_wordcount_chats, wordcount_chats
from sgtr_em.data import prepare_chats, prepare_qa_chats
from sgtr_em.io import InputError, read_jsonl, write_json, write_jsonl
from sgtr_em.prompts import read_prompt_set
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe, load_source

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
variant = snakemake.wildcards.sysvariant
if snakemake.wildcards.baseline == "wordcount" and "source" in spec:
    where = describe(spec["source"])
    rows = prepare_chats(load_source(spec["source"], snakemake.params.cache), where)
    chats, stats = prebuilt_wordcount_chats(rows, variant, limit=spec["limit"])
elif snakemake.wildcards.baseline == "wordcount":
    where = snakemake.input[0]
    prompts = read_prompt_set(snakemake.input.prompts)
    chats, stats = wordcount_chats(read_jsonl(where), variant, limit=spec["limit"], prompts=prompts)
    if not chats:
        raise InputError(f"{where}: no non-empty user turn to count the words of")
    stats["prompts"] = prompts.provenance()
else:
    where = describe(spec["source"])
    rows = load_source(spec["source"], snakemake.params.cache)
    if spec["rows"] == "qa":
        rows = prepare_qa_chats(rows, spec["question_field"], spec["answer_field"], where, spec["keep"], spec["limit"])
    else:
        rows = prepare_chats(rows, where, spec["limit"])
    chats, stats = chat_baseline(rows, variant)
write_jsonl(snakemake.output.chats, chats)
write_json(snakemake.output.stats, {**stats, "source": where, "system_variant": variant})
logging.info("%s (%s): %s", snakemake.wildcards.baseline, variant, stats)
