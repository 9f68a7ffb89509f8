# Summaries of an article set by a model state (base model, comparator model, or a finetuned chain).


for suffix, models, api in T.model_kinds():

    rule:
        name:
            f"generate_summaries{suffix}"
        input:
            model=T.model_dir,
            adapters=T.adapters,
            articles=paths.ARTICLES,
            prompts=paths.PROMPTS,
        output:
            paths.SUMMARIES,
        log:
            "logs/summaries/{model}/{chain}/seed{seed}/{dataset}.log",
        benchmark:
            "benchmarks/summaries/{model}/{chain}/seed{seed}/{dataset}.tsv"
        wildcard_constraints:
            model=models,
        # An API model's summaries need the network: the submit host.
        localrule: api
        conda:
            "../envs/torch.yaml"
        threads: T.model_threads
        resources:
            **T.model_job_resources(),
        params:
            style=T.summary_style,
            sampling=T.summary_sampling,
            backend=T.backend,
        script:
            "../scripts/generate_summaries.py"
