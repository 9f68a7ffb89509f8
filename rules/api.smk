# Models behind the OpenAI API (models.<name>.source.openai): the cost estimate of their jobs, and a
# target with every output of theirs. API jobs need the network, not a GPU: on a cluster whose compute
# nodes have no internet, run `snakemake api_models --cores 8 --configfile config/config.yaml` on the
# submit host (local executor) before or beside the SLURM run; see docs/api.md.


from sgtr_em import cost
from sgtr_em.io import sha256_json


localrules:
    api_cost,
    api_models,


rule api_cost:
    input:
        # The data the estimate reads (sgtr_em.cost), worked out only when the job is planned.
        lambda wildcards: cost.prepared_inputs(T),
    output:
        json=f"{paths.API_COST}.json",
        md=f"{paths.API_COST}.md",
    log:
        "logs/api/cost_estimate.log",
    conda:
        "../envs/core.yaml"
    params:
        # Any setting may change the estimate (grid, prices, evaluations): a changed config reruns it.
        config_sha256=sha256_json(config),
    script:
        "../scripts/api_cost.py"


rule api_models:
    input:
        T.api_model_outputs(),
