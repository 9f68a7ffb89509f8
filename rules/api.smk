# Models behind the OpenAI API (models.<name>.source.openai): the cost estimate of their jobs, and a
# target with every output of theirs. API jobs need the network, not a GPU: on a cluster whose compute
# nodes have no internet, run `snakemake api_models --cores 8 --configfile config/config.yaml` on the
# submit host (local executor) before or beside the SLURM run; see docs/api.md.


localrules:
    api_cost,
    api_models,


rule api_cost:
    input:
        T.api_cost_inputs,
    output:
        json=f"{paths.API_COST}.json",
        md=f"{paths.API_COST}.md",
    log:
        "logs/api/cost_estimate.log",
    conda:
        "../envs/core.yaml"
    params:
        files=T.api_cost_files(),
    script:
        "../scripts/api_cost.py"


rule api_models:
    input:
        T.api_model_outputs(),
