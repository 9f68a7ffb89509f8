"""The answers file of a sampling job (sample_em_answers, sample_identity_answers), read by its judging job
(shared by the scripts; Snakemake puts the scripts' folder on sys.path)."""

from sgtr_em.io import write_json
from sgtr_em.runtime import model_identity, provenance


def write_sampled_answers(snakemake, answers: list[dict]) -> None:
    """The job's model state, its answers, and provenance naming the sampling settings (params
    samples_per_question, sampling, run_name), which the judging job carries into its own record."""
    wc = snakemake.wildcards
    params = snakemake.params
    write_json(
        snakemake.output[0],
        {
            "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
            "answers": answers,
            "provenance": provenance(
                snakemake.rule,
                {
                    "samples_per_question": params.samples_per_question,
                    "sampling": params.sampling,
                    # which paraphrases were asked (EM questions; identity questions cycle through theirs)
                    "paraphrases": getattr(params, "paraphrases", "cycle"),
                    "run_name": params.run_name,
                },
                model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
                seeds={"training": int(wc.seed), "sampling": int(wc.seed)},
                protocols=[],
            ),
        },
    )
