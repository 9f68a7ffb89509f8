# Training files of the identity interventions (X): Self++, Self--, Self=Random, pick-longer.


rule build_pairs:
    input:
        articles=ARTICLES.format(dataset=config["pairs"]["train_dataset"]),
        self_summaries=lambda wc: self_source_summaries(
            wc.model, wc.source, config["pairs"]["train_dataset"]
        ),
        other_summaries=comparator_summaries(
            config["pairs"]["comparator"], config["pairs"]["train_dataset"]
        ),
    output:
        pairs=PAIRS,
        stats=PAIR_STATS,
    log:
        "logs/pairs/{model}/{source}/{intervention}/{framing}/{sysvariant}.log",
    conda:
        "../envs/torch.yaml"
    params:
        identity_system_prompt=lambda wc: model_setting(
            wc.model, "identity_system_prompt"
        ),
        confuse_size=config["pairs"]["confuse_size"],
        seed=config["pairs"]["seed"],
        missing_summaries=config["pairs"]["missing_summaries"],
    script:
        "../scripts/build_pairs.py"


rule pairs:
    input:
        all_pair_files(),
