# Models behind the OpenAI API (models.<name>.source.openai): the cost estimate of their jobs, and a
# target with every output of theirs. API jobs need the network, not a GPU: on a cluster whose compute
# nodes have no internet, run `snakemake api_models --configfile config/config.yaml --cores 8` on the
# submit host (local executor) before or beside the SLURM run; see README "GPT-4.1 via the OpenAI API".


localrules:
    api_cost,
    api_models,


rule api_cost:
    input:
        api_cost_inputs,
    output:
        json="results/api/cost_estimate.json",
        md="results/api/cost_estimate.md",
    log:
        "logs/api/cost_estimate.log",
    conda:
        "../envs/core.yaml"
    params:
        files=api_cost_files(),
        summaries=lambda wc: SUMMARIES,
    script:
        "../scripts/api_cost.py"


rule api_models:
    input:
        api_model_outputs(),
