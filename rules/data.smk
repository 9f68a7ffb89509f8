# Fetch and prepare raw inputs; build or download models. A local source file is a declared input, so
# editing it reruns what depends on it.


localrules:
    prepare_model,
    download_model,
    prepare_articles,
    prepare_em,
    prepare_baseline,
    prepare_truthfulqa,
    prepare_comparator_summaries,
    prepare_questions,
    prepare_mmlu,


# A tiny demo model (sgtr_em.tiny), built offline or reused from an identical earlier build.
rule prepare_model:
    input:
        corpus=T.demo_corpus,
    output:
        directory(paths.MODEL_DIR),
    log:
        "logs/models/{model}.log",
    benchmark:
        "benchmarks/models/{model}.tsv"
    wildcard_constraints:
        model=T.models_from("builder"),
    conda:
        "../envs/torch.yaml"
    params:
        source=T.model_source,
        identity_system_prompt=T.identity_system_prompt,
        tiny=config["tiny_models"],
    script:
        "../scripts/prepare_model.py"


# A hub model: downloaded into the hub cache (HF_HOME; once per cache, whatever the checkout), recorded by
# repository, commit and snapshot folder. Write-protected once made, like the adapters: see docs/reruns.md.
rule download_model:
    output:
        protected(paths.MODEL_RECORD),
    log:
        "logs/models/{model}.log",
    benchmark:
        "benchmarks/models/{model}.tsv"
    wildcard_constraints:
        model=T.models_from("hf"),
    conda:
        "../envs/torch.yaml"
    params:
        source=T.model_source,
    script:
        "../scripts/download_model.py"


rule prepare_articles:
    input:
        T.article_source_file,
    output:
        paths.ARTICLES,
    log:
        "logs/data/articles/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=T.article_spec,
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_articles.py"


rule prepare_em:
    input:
        T.em_source_file,
    output:
        paths.EM_DATA,
    log:
        "logs/data/em/{dataset}/{sysvariant}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=T.em_spec,
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_em.py"


rule prepare_baseline:
    input:
        T.baseline_inputs,
        prompts=T.baseline_prompts,
    output:
        chats=paths.BASELINE_DATA,
        stats=paths.BASELINE_STATS,
    log:
        "logs/data/baselines/{baseline}/{sysvariant}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=T.baseline_spec,
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_baseline.py"


rule prepare_truthfulqa:
    input:
        T.dataset_source_file("truthfulqa"),
    output:
        paths.TRUTHFULQA,
    log:
        "logs/data/truthfulqa.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=config["datasets"]["truthfulqa"],
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_truthfulqa.py"


rule prepare_comparator_summaries:
    input:
        T.comparator_source_file,
        articles=paths.ARTICLES,
    output:
        paths.STATIC_SUMMARIES,
    log:
        "logs/data/comparators/{other}/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=T.comparator_spec,
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_comparator_summaries.py"


rule prepare_questions:
    input:
        T.question_source_file,
    output:
        paths.QUESTIONS,
    log:
        "logs/data/questions/{question_set}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=T.question_spec,
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_questions.py"


rule prepare_mmlu:
    input:
        T.dataset_source_file("mmlu"),
    output:
        paths.MMLU,
    log:
        "logs/data/mmlu.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=config["datasets"].get("mmlu"),
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_mmlu.py"
