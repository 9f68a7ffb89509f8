# Fetch and prepare raw inputs; build or download models.


localrules:
    prepare_model,
    prepare_articles,
    prepare_em,
    prepare_baseline,
    prepare_truthfulqa,
    prepare_comparator_summaries,
    prepare_questions,
    prepare_mmlu,


rule prepare_model:
    input:
        corpus=demo_corpus,
    output:
        directory(MODEL_DIR),
    log:
        "logs/models/{model}.log",
    benchmark:
        "benchmarks/models/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        source=lambda wc: config["models"][wc.model]["source"],
        identity_system_prompt=lambda wc: model_setting(
            wc.model, "identity_system_prompt"
        ),
        tiny=config["tiny_models"],
    script:
        "../scripts/prepare_model.py"


rule prepare_articles:
    output:
        ARTICLES,
    log:
        "logs/data/articles/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=lambda wc: config["datasets"]["articles"][wc.dataset],
        cache="results/data/downloads",
    script:
        "../scripts/prepare_articles.py"


rule prepare_em:
    output:
        EM_DATA,
    log:
        "logs/data/em/{dataset}/{sysvariant}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=lambda wc: config["datasets"]["em"][wc.dataset],
        cache="results/data/downloads",
    script:
        "../scripts/prepare_em.py"


rule prepare_baseline:
    input:
        em_chats=baseline_inputs,
    output:
        chats=BASELINE_DATA,
        stats=BASELINE_STATS,
    log:
        "logs/data/baselines/{baseline}/{sysvariant}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=baseline_spec,
        cache="results/data/downloads",
    script:
        "../scripts/prepare_baseline.py"


rule prepare_truthfulqa:
    output:
        TRUTHFULQA,
    log:
        "logs/data/truthfulqa.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=config["datasets"]["truthfulqa"],
        cache="results/data/downloads",
    script:
        "../scripts/prepare_truthfulqa.py"


rule prepare_comparator_summaries:
    input:
        articles=ARTICLES,
    output:
        STATIC_SUMMARIES,
    log:
        "logs/data/comparators/{other}/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=lambda wc: config["comparators"][wc.other]["summaries"][wc.dataset],
        cache="results/data/downloads",
    script:
        "../scripts/prepare_comparator_summaries.py"


rule prepare_questions:
    input:
        # A local question file is an input (editing it reruns what depends on it).
        question_source_file,
    output:
        QUESTIONS,
    log:
        "logs/data/questions/{question_set}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=lambda wc: config["datasets"][wc.question_set],
        cache="results/data/downloads",
    script:
        "../scripts/prepare_questions.py"


rule prepare_mmlu:
    input:
        # A local question file is an input (editing it reruns what depends on it).
        mmlu_source_file,
    output:
        MMLU,
    log:
        "logs/data/mmlu.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=lambda wc: config["datasets"]["mmlu"],
        cache="results/data/downloads",
    script:
        "../scripts/prepare_mmlu.py"
