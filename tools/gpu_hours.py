"""Evaluation GPU-hours of the paper grid and its subsets, estimated from the planned DAG (docs/cluster.md).

    python tools/gpu_hours.py [subset ...]      # default: every subset and the whole grid

Counted from `snakemake -n --configfile config/config.yaml [--config subset=<name>]` (exact): the evaluated
states of the open models, the jobs that load each, and each state job's steps. Estimated (an assumption
per step, below, for one 80 GB H100 in bf16 on a 32B-class model): the GPU time of each step and of a load.
The same per-step times priced with one load per step give what the layout before one job per state cost.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sgtr_em.config import compose, load  # noqa: E402
from sgtr_em.dag import dry_run, loaded_state  # noqa: E402
from sgtr_em.targets import SUMMARIES_STEP, Targets, table_kind  # noqa: E402

SUBSETS = ("core", "workshop", "baselines", "system-prompt", "em-datasets", None)

# Assumed speeds (docs/cluster.md): scoring 7,500 prompt tokens/s, generation 700 new tokens/s at 32B
# (3,000 tok/s for 7B at batch 64, scaled by size), 2.5 minutes to load a state.
LOAD_MINUTES = 2.5
PROMPT_TOKENS_PER_S = 7_500
NEW_TOKENS_PER_S = 700
# Minutes per step of a state's evaluation on the paper config's workload.
STEP_MINUTES = {
    # 1,000 CNN articles: ~800-token prompts, ~60 new tokens
    SUMMARIES_STEP: (1_000 * 800 / PROMPT_TOKENS_PER_S + 1_000 * 60 / NEW_TOKENS_PER_S) / 60,
    # per comparator, both protocols: ~2.5M prompt tokens, less the ~30% the shared article prefix saves
    "self_recognition": 0.7 * 2_500_000 / PROMPT_TOKENS_PER_S / 60,
    # 817 questions, 3 prompts of ~100 tokens each
    "truthfulqa": 817 * 3 * 100 / PROMPT_TOKENS_PER_S / 60,
    # 8 questions x 50 answers of up to 512 new tokens
    "em_questions": 8 * 50 * 512 / NEW_TOKENS_PER_S / 60,
    # 4 questions x 20 answers of up to 80 new tokens
    "identity": 4 * 20 * 80 / NEW_TOKENS_PER_S / 60,
    # 14,042 five-shot prompts, ~10M input tokens
    "mmlu": 10_000_000 / PROMPT_TOKENS_PER_S / 60,
}


def step_minutes(step: str) -> float:
    return STEP_MINUTES[table_kind(step)[0]]


def estimate(subset: str | None) -> dict[str, float]:
    # The grid's shape only: nothing is fetched, so the pins (an empty lock without network) do not matter.
    overrides: dict[str, object] = {"strict_pins": False, **({"subset": subset} if subset else {})}
    config = load(compose(REPO / "config/config.yaml", [], overrides), workdir=REPO)
    targets = Targets(config)
    steps = {targets.state_eval_rule(o): targets.state_eval_steps(o) for o in targets.state_eval_groups()}
    words = [f"{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in overrides.items()]
    jobs = dry_run(REPO, "--configfile", "config/config.yaml", "--config", *words)
    states: set[tuple[str, str, int]] = set()
    loads = loads_before = minutes_now = minutes_before = 0.0
    for job in jobs:
        state = loaded_state(targets, job)
        if state is None:
            continue
        states.add(state)
        work = [SUMMARIES_STEP] if job.rule == "generate_summaries" else steps[job.rule]
        loads += 1
        loads_before += len(work)
        minutes_now += LOAD_MINUTES + sum(step_minutes(s) for s in work)
        minutes_before += sum(LOAD_MINUTES + step_minutes(s) for s in work)
    return {
        "states": len(states),
        "loads": loads,
        "loads_before": loads_before,
        "gpu_h": minutes_now / 60,
        "gpu_h_before": minutes_before / 60,
    }


def main(subsets: list[str | None]) -> None:
    print("| subset | evaluated open-model states | loads now (before) | evaluation GPU-h now | before |")
    print("|---|---|---|---|---|")
    for subset in subsets:
        e = estimate(subset)
        print(
            f"| {subset or 'full grid'} | {e['states']} | {e['loads']:.0f} ({e['loads_before']:.0f}) "
            f"| {e['gpu_h']:.0f} | {e['gpu_h_before']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:] or list(SUBSETS))
