"""Cost estimate of the API part of a run, before spending: tokens and dollars per API rule.

Prompts are built from the actual prepared inputs with the same prompt and pair builders the rules use.
Summaries an API model has not written yet are stood in for by an existing file of its own (if a
previous run left one), else by the comparator's summary of the same article, else by a summary of
`summaries.max_new_tokens` tokens. Output tokens are upper bounds (max_new_tokens per reply); the
request cache is ignored (an estimate of a fresh run).

Tokens are counted with tiktoken's o200k_base encoding (GPT-4o / GPT-4.1) when it is installed and its
encoding file is available, else approximated as ceil(characters / 4) (OpenAI's rule of thumb for English);
the output records which. Each chat request adds 3 tokens per message and 3 for the reply's priming.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import chains
from . import config as cfglib
from .backends import model_kind
from .io import read_articles, read_jsonl, read_summaries
from .pairs import build_pairs
from .prompts import pair_messages, summary_messages, truthfulqa_messages

PER_MESSAGE_TOKENS = 3
PER_REPLY_TOKENS = 3


def token_counter() -> tuple[Callable[[str], int], str]:
    """(count, method): tiktoken o200k_base if usable offline, else the chars/4 approximation."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("o200k_base")
        return (lambda text: len(encoding.encode(text, disallowed_special=()))), "tiktoken o200k_base"
    except Exception:
        return (lambda text: math.ceil(len(text) / 4)), "approximate: ceil(characters / 4)"


@dataclass
class DataFiles:
    """Prepared inputs the estimate reads (the outputs of the prepare_* rules)."""

    articles: dict[str, str]  # dataset -> path
    truthfulqa: str
    em: dict[str, str]  # "<dataset>/<sysvariant>" -> path
    baselines: dict[str, str] = field(default_factory=dict)  # "<baseline>/<sysvariant>" -> path
    static_summaries: dict[str, str] = field(default_factory=dict)  # "<other>/<dataset>" -> path
    existing_summaries: Callable[[str, str, int, str], str | None] = lambda model, chain, seed, dataset: None


@dataclass
class Row:
    rule: str
    model: str
    state: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    training_tokens: int = 0
    usd: float = 0.0


class Estimator:
    def __init__(self, config: dict[str, Any], data: DataFiles) -> None:
        self.config = config
        self.data = data
        self.count, self.method = token_counter()
        self.articles = {name: read_articles(path) for name, path in data.articles.items()}
        self.max_summary = config["summaries"]["max_new_tokens"]
        self.placeholder = " ".join(["word"] * self.max_summary)

    def api_models(self) -> list[str]:
        return [m for m, spec in self.config["models"].items() if model_kind(spec["source"]) == "openai"]

    def chat_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(self.count(m["content"]) + PER_MESSAGE_TOKENS for m in messages) + PER_REPLY_TOKENS

    def prices(self, model: str, chain: str) -> tuple[float, float, float]:
        """USD per token: (input, output, training) of a model state."""
        table = self.config["openai"]["prices"].get(self.config["models"][model]["source"]["openai"], {})
        tuned = chain != chains.BASE
        per_m = (
            table.get("finetuned_input" if tuned else "input", table.get("input", 0.0)),
            table.get("finetuned_output" if tuned else "output", table.get("output", 0.0)),
            table.get("training", 0.0),
        )
        return tuple(p / 1e6 for p in per_m)  # type: ignore[return-value]

    # -- summaries (generated or stood in for) -----------------------------------------------------

    def summaries_of(self, model: str, chain: str, seed: int, dataset: str) -> dict[str, str]:
        existing = self.data.existing_summaries(model, chain, seed, dataset)
        if existing:
            return read_summaries(existing)
        for other in self.config["comparators"]:
            path = self.data.static_summaries.get(f"{other}/{dataset}")
            if path:
                stand_in = read_summaries(path)
                return {aid: stand_in.get(aid, self.placeholder) for aid in self.articles[dataset]}
        return dict.fromkeys(self.articles[dataset], self.placeholder)

    def other_summaries(self, other: str, dataset: str) -> dict[str, str]:
        spec = self.config["comparators"][other]
        if "model" in spec:
            return self.summaries_of(spec["model"], chains.BASE, self.config["summary_seed"], dataset)
        path = self.data.static_summaries.get(f"{other}/{dataset}")
        return read_summaries(path) if path else dict.fromkeys(self.articles[dataset], self.placeholder)

    # -- rules ---------------------------------------------------------------------------------------

    def generate_summaries(self, model: str, chain: str, seed: int, dataset: str) -> Row:
        style = self.config["datasets"]["articles"][dataset]["style"]
        prompts = [summary_messages(text, style) for text in self.articles[dataset].values()]
        return self._inference(
            "generate_summaries", model, chain, seed, dataset, [(p, self.max_summary) for p in prompts]
        )

    def eval_truthfulqa(self, model: str, chain: str, seed: int) -> Row:
        settings = self.config["eval"]["truthfulqa"]
        requests = []
        for q in read_jsonl(self.data.truthfulqa):
            if "logprob" in settings["protocols"]:
                requests += [(truthfulqa_messages(q["question"], q["best"], q["incorrect"]), 1)] * 2
            if "reference" in settings["protocols"]:
                requests.append(
                    (
                        truthfulqa_messages(q["question"], q["best"], q["incorrect"]),
                        settings["sampling"]["max_new_tokens"],
                    )
                )
        return self._inference("eval_truthfulqa", model, chain, seed, "", requests)

    def eval_self_recognition(self, model: str, chain: str, seed: int, other: str) -> Row:
        settings = self.config["eval"]["self_recognition"]
        dataset = settings["dataset"]
        own = (chain, seed) if settings["self_source"] == "own" else (chains.BASE, self.config["summary_seed"])
        mine = self.summaries_of(model, *own, dataset)
        theirs = self.other_summaries(other, dataset)
        framing = self.config["models"][model]["framing"]
        identity = self.config["models"][model]["identity_system_prompt"]
        requests = []
        for aid, article in self.articles[dataset].items():
            if aid not in mine or aid not in theirs:
                continue
            messages = pair_messages(article, mine[aid], theirs[aid], framing, "default", identity)
            if "logprob" in settings["protocols"]:
                requests += [(messages, 1)] * 2
            if "reference" in settings["protocols"]:
                requests.append((messages, settings["sampling"]["max_new_tokens"]))
        return self._inference("eval_self_recognition", model, chain, seed, f"vs {other}", requests)

    def train(self, model: str, chain: str, seed: int) -> Row:
        stage = chains.parse_chain(chain)[-1]
        if stage.kind == "em":
            rows = read_jsonl(self.data.em[f"{stage.name}/{stage.variant}"])
        elif stage.kind == "baseline":
            rows = read_jsonl(self.data.baselines[f"{stage.name}/{stage.variant}"])
        else:
            # Priced from the base model's summaries (with pairs.source own, a later state's summaries
            # do not exist before its parent is trained; their length is about the same).
            dataset = self.config["pairs"]["train_dataset"]
            rows, _ = build_pairs(
                self.articles[dataset],
                self.summaries_of(model, chains.BASE, self.config["summary_seed"], dataset),
                self.other_summaries(self.config["pairs"]["comparator"], dataset),
                stage.name,
                framing=self.config["models"][model]["framing"],
                system_variant=stage.variant,
                identity_system=self.config["models"][model]["identity_system_prompt"],
                confuse_size=self.config["pairs"]["confuse_size"],
                seed=self.config["pairs"]["seed"],
            )
        epochs = self.config["openai"]["fine_tuning"]["n_epochs"]
        epochs = epochs if isinstance(epochs, int) else 1  # "auto": priced as one epoch
        tokens = sum(self.chat_tokens(row["messages"]) for row in rows) * epochs
        _, _, per_training = self.prices(model, chain)
        return Row(
            "train_stage", model, f"{chain}/seed{seed}", requests=1, training_tokens=tokens, usd=tokens * per_training
        )

    def _inference(
        self, rule: str, model: str, chain: str, seed: int, detail: str, requests: list[tuple[list, int]]
    ) -> Row:
        per_in, per_out, _ = self.prices(model, chain)
        tokens_in = sum(self.chat_tokens(messages) for messages, _ in requests)
        tokens_out = sum(limit for _, limit in requests)
        state = f"{chain}/seed{seed}" + (f" {detail}" if detail else "")
        return Row(
            rule, model, state, len(requests), tokens_in, tokens_out, 0, tokens_in * per_in + tokens_out * per_out
        )

    # -- the whole grid ----------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        config, api = self.config, set(self.api_models())
        summary_seed = config["summary_seed"]
        selfrec = config["eval"]["self_recognition"]
        summaries: dict[tuple[str, str, int, str], None] = {}
        trainings: dict[tuple[str, str, int], None] = {}
        out: list[Row] = []
        for other in [config["pairs"]["comparator"], *selfrec["comparators"]]:
            model = config["comparators"][other].get("model")
            if model in api:
                for dataset in (config["pairs"]["train_dataset"], selfrec["dataset"]):
                    summaries[(model, chains.BASE, summary_seed, dataset)] = None
        for model in config["grid"]["models"]:
            if model not in api:
                continue
            if cfglib.interventions_in_grid(config, model):
                summaries[(model, chains.BASE, summary_seed, config["pairs"]["train_dataset"])] = None
            for chain in cfglib.trained_chains(config, model):
                for seed in cfglib.model_seeds(config, model):
                    trainings[(model, chain, seed)] = None
            for _, chain, seed in (s for s in cfglib.grid_states(config) if s[0] == model):
                own = (chain, seed) if selfrec["self_source"] == "own" else (chains.BASE, summary_seed)
                summaries[(model, *own, selfrec["dataset"])] = None
                out += [self.eval_self_recognition(model, chain, seed, other) for other in selfrec["comparators"]]
                out.append(self.eval_truthfulqa(model, chain, seed))
        released = {m: set(config["models"][m].get("summaries", {})) for m in config["models"]}
        out = [
            self.generate_summaries(*key)
            for key in summaries
            if key[3] not in released[key[0]] or key[1] != chains.BASE
        ] + out
        out = [self.train(*key) for key in trainings] + out
        return out


def estimate(config: dict[str, Any], data: DataFiles) -> dict[str, Any]:
    """Rows per API job and totals per rule and model (tokens, requests, dollars)."""
    estimator = Estimator(config, data)
    rows = estimator.rows()
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = totals.setdefault(
            f"{row.rule} {row.model}",
            {
                "rule": row.rule,
                "model": row.model,
                "jobs": 0,
                "requests": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "training_tokens": 0,
                "usd": 0.0,
            },
        )
        total["jobs"] += 1
        for key in ("requests", "input_tokens", "output_tokens", "training_tokens", "usd"):
            total[key] += getattr(row, key)
    return {
        "token_count_method": estimator.method,
        "notes": __doc__.split("\n\n")[1].replace("\n", " "),
        "prices_usd_per_million_tokens": config["openai"]["prices"],
        "total_usd": round(sum(r.usd for r in rows), 2),
        "totals": [{**t, "usd": round(t["usd"], 2)} for t in totals.values()],
        "jobs": [{**r.__dict__, "usd": round(r.usd, 4)} for r in rows],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# API cost estimate",
        "",
        f"Tokens: {result['token_count_method']}. Output tokens are upper bounds (max_new_tokens per reply).",
        "",
        "| rule | model | jobs | requests | input tokens | output tokens (max) | training tokens | USD |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t in result["totals"]:
        lines.append(
            f"| {t['rule']} | {t['model']} | {t['jobs']} | {t['requests']:,} | {t['input_tokens']:,} | {t['output_tokens']:,} | {t['training_tokens']:,} | {t['usd']:,.2f} |"
        )
    lines += [
        "",
        f"**Total: ${result['total_usd']:,.2f}** (prices in config `openai.prices`; the per-job rows are in the JSON).",
        "",
    ]
    return "\n".join(lines)


def write_outputs(result: dict[str, Any], json_path: str | Path, md_path: str | Path) -> str:
    from .io import atomic_path, write_json

    write_json(json_path, result)
    text = markdown(result)
    with atomic_path(md_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text
