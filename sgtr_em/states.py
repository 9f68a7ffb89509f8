"""Model states others can load: the model card of every adapter folder, one function that loads any state by
its path, and the export and hub upload of a state.

A model state is a base model plus a chain of LoRA stages. Stage n was trained on the base with stages 1..n-1
merged into it, so its adapter alone on the base is another model: whoever loads it must merge its parents
first, in training order. Every adapter folder the workflow writes is a hub model repository: a model card
(`README.md`, with the hub's YAML metadata and, under `sgtr_em`, the state's model, chain, seed, base model
identity and parent chains), `adapter_config.json` naming the base model and its hub commit, the weights and
`training_meta.json`. The card is written by the training job from what training knows; the state's
evaluation results come later, from other jobs, so `export` writes them into the card of an exported copy
(training never waits for evaluation, and the adapter folder stays byte-identical for identical trainings).

    python -m sgtr_em.states export results/adapters/<model>/<chain>/seed<N> <folder> [--merge]
    python -m sgtr_em.states push <folder> <user>/<repo> [--private]

`export` copies the adapter with its parents' adapters under `parents/` (loadable by `load_state`, or by the
card's plain transformers + PEFT snippet), or with `--merge` writes the whole state merged into one full model
that `AutoModelForCausalLM.from_pretrained` loads as it is. `push` uploads a folder with `HF_TOKEN`, sent only
to the hub's own https hosts, as the downloader does (`sgtr_em.sources.hub_token_for`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import chains
from .io import atomic_dir, read_json
from .plot import ORDER_LABELS

CARD = "README.md"
TRAINING_META = "training_meta.json"
# What of an adapter folder a loader reads (the card and the training record travel with it).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# An exported chained state keeps its parents' adapters here, in training order: parents/<k>-<chain>/.
PARENTS_DIR = "parents"
# The card's own metadata block: what `load_state` needs besides the files.
CARD_KEY = "sgtr_em"
TAGS = ["peft", "lora", "sft", "trl", "sgtr-em", "emergent-misalignment", "self-recognition"]
# The workflow's layout: results/adapters/<model>/<chain>/seed<N> and results/models/<model>.
ADAPTERS_DIR = "adapters"
MODELS_DIR = "models"


class StateError(ValueError):
    """A folder that is not a model state this module can read, with what is missing, in one line."""


# --------------------------------------------------------------------------------------- model card --


def state_record(*, model: str, chain: str, seed: int, identity: dict[str, Any], run_name: str = "") -> dict[str, Any]:
    """The card's `sgtr_em` block: the model state and its base model's identity (`runtime.model_identity`:
    hub id and commit, or the build spec's hash for a model the workflow builds)."""
    hub = not str(identity.get("id", "")).startswith("built:") and "/" in str(identity.get("id", ""))
    return {
        "model": model,
        "chain": chain,
        "seed": int(seed),
        "stage": chain.rsplit("+", 1)[-1],
        "parents": chains.prefixes(chain)[:-1],
        "base": {"id": identity.get("id"), "revision": identity.get("revision"), "hub": hub},
        "run_name": run_name,
    }


def card_metadata(record: dict[str, Any], merged: bool = False) -> dict[str, Any]:
    """The hub's YAML metadata of a state's card: an adapter of its base model (or, merged, a finetune)."""
    base = record["base"]
    meta: dict[str, Any] = {"library_name": "transformers" if merged else "peft"}
    if base["hub"]:
        meta["base_model"] = base["id"]
        meta["base_model_relation"] = "finetune" if merged else "adapter"
    meta["pipeline_tag"] = "text-generation"
    meta["tags"] = TAGS
    meta[CARD_KEY] = record
    return meta


def _recipe_table(hyperparameters: dict[str, Any]) -> list[str]:
    lines = ["| hyperparameter | value |", "|---|---|"]
    lines += [f"| `{key}` | `{value}` |" for key, value in hyperparameters.items()]
    return lines


def _loading_section(record: dict[str, Any], merged: bool) -> list[str]:
    base = record["base"]
    revision = f', revision="{base["revision"]}"' if base["hub"] and base["revision"] else ""
    base_ref = f'"{base["id"]}"' if base["hub"] else '"<base model folder>"'
    if merged:
        return [
            "This folder is the whole state merged into one model:",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            'model = AutoModelForCausalLM.from_pretrained("<this folder or repo>")',
            'tokenizer = AutoTokenizer.from_pretrained("<this folder or repo>")',
            "```",
        ]
    lines = [
        "With this workflow's package, any state by its path (base model, parents and this adapter):",
        "",
        "```python",
        "from sgtr_em.states import load_state",
        'model, tokenizer = load_state("<this folder>")',
        "```",
        "",
    ]
    parents = record["parents"]
    if not parents:
        lines += [
            "Or with transformers and PEFT alone (a single-stage state: this adapter on the base model):",
            "",
            "```python",
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            f"base = AutoModelForCausalLM.from_pretrained({base_ref}{revision})",
            'model = PeftModel.from_pretrained(base, "<this folder or repo>")',
            f"tokenizer = AutoTokenizer.from_pretrained({base_ref}{revision})",
            "```",
        ]
        return lines
    listed = ", ".join(f"`{p}`" for p in parents)
    lines += [
        f"**This adapter alone on the base model is not this state.** It was trained on the base with its parent "
        f"stages ({listed}) merged into it, so `AutoPeftModelForCausalLM` on this folder, which applies it to the "
        "base alone, builds another model. Merge the parents first, in training order (an exported folder holds "
        f"them under `{PARENTS_DIR}/`), or use the merged export (`python -m sgtr_em.states export --merge`):",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f"model = AutoModelForCausalLM.from_pretrained({base_ref}{revision})",
        f"parents = {[f'{PARENTS_DIR}/{k + 1}-{p}' for k, p in enumerate(parents)]}  # in training order",
        f"# (in the run: results/adapters/{record['model']}/<parent chain>/seed{record['seed']})",
        "for parent in parents:",
        "    model = PeftModel.from_pretrained(model, parent).merge_and_unload()",
        'model = PeftModel.from_pretrained(model, "<this folder or repo>")',
        f"tokenizer = AutoTokenizer.from_pretrained({base_ref}{revision})",
        "```",
    ]
    return lines


def _evaluation_section(evaluations: dict[str, dict[str, Any]] | None, record: dict[str, Any]) -> list[str]:
    where = f"`results/eval/<evaluation>/{record['model']}/{record['chain']}/seed{record['seed']}.json`"
    if not evaluations:
        return [
            f"Written by the run's evaluation jobs after training, at {where}; `python -m sgtr_em.states export` "
            "copies this state with its results in the card."
        ]
    lines = [
        f"This state's evaluations in run `{record['run_name']}` (from {where}; mean over the evaluation's items):",
        "",
        "| evaluation | protocol | metric | value |",
        "|---|---|---|---|",
    ]
    for name, entry in evaluations.items():
        for protocol, value in entry["values"].items():
            lines.append(f"| {name} | {protocol} | {entry['metric']} | {value:.4f} |")
    return lines


def model_card(
    record: dict[str, Any],
    meta: dict[str, Any],
    evaluations: dict[str, dict[str, Any]] | None = None,
    merged: bool = False,
) -> str:
    """The model card (README.md) of a state: the hub's metadata header, what the state is, how to load it,
    how it was trained (data, recipe, loss) and, when given, its evaluation results. Nothing time- or
    machine-specific, so identical trainings give identical cards."""
    base = record["base"]
    header = yaml.safe_dump(card_metadata(record, merged), sort_keys=False, allow_unicode=True)
    chain = record["chain"]
    stages = chains.prefixes(chain)
    base_line = (
        f"`{base['id']}` at revision `{base['revision'] or 'unpinned'}`"
        if base["hub"]
        else f"`{base['id']}` (built or local, not on the hub; build spec or folder hash `{base['revision']}`)"
    )
    provenance = meta.get("provenance") or {}
    lines = [
        "---",
        header.rstrip("\n"),
        "---",
        "",
        f"# {record['model']} · {chain} · seed {record['seed']}",
        "",
        f"Model state **{chains.label(chain)}** (chain `{chain}`: {ORDER_LABELS[chains.order(chain)]}) of the reproduction "
        "workflow for *Self-Recognition Finetuning can Reverse and Prevent Emergent Misalignment* (arXiv "
        f"2606.23700): the base model {base_line} with {len(stages)} LoRA stage(s) trained in order "
        f"({' → '.join(f'`{s}`' for s in stages)}). This "
        + (
            "folder holds them all merged into the base."
            if merged
            else f"folder is the last stage, `{record['stage']}`, trained on seed {record['seed']}."
        ),
        "",
        "## Loading",
        "",
        *_loading_section(record, merged),
        "",
        "## Training",
        "",
        f"- data: `{meta.get('train_file')}` ({meta.get('n_examples')} examples, sha256 `{meta.get('train_file_sha256')}`)",
        f"- {meta.get('global_steps')} optimizer steps, mean loss {_number(meta.get('train_loss'))}, last-step loss "
        f"{_number((meta.get('loss_per_step') or [None])[-1])}",
        f"- parent adapters (merged before training): {', '.join(f'`{p}`' for p in record['parents']) or 'none'}",
        f"- workflow version: `{provenance.get('code_version', 'unknown')}`; run `{record['run_name']}`",
        "",
        *_recipe_table(meta.get("hyperparameters") or {}),
        "",
        "## Evaluation",
        "",
        *_evaluation_section(evaluations, record),
        "",
    ]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "—"


def record_from_training(adapter_dir: str | Path) -> dict[str, Any] | None:
    """The card's block for an adapter trained before cards existed, from its place in the workflow's layout
    (model, chain, seed) and its training record's provenance (the base model's identity); None elsewhere."""
    adapter_dir = Path(adapter_dir)
    layout = _workflow_layout(adapter_dir)
    meta_path = adapter_dir / TRAINING_META
    if layout is None or not meta_path.is_file():
        return None
    provenance = read_json(meta_path).get("provenance") or {}
    identity = provenance.get("model") or {}
    run_name = (provenance.get("config") or {}).get("run_name", "")
    _, model, chain, seed = layout
    return state_record(
        model=model, chain=chain, seed=int(seed.removeprefix("seed")), identity=identity, run_name=run_name
    )


def read_card_record(folder: str | Path) -> dict[str, Any] | None:
    """The `sgtr_em` block of a folder's card (None without a card or block)."""
    path = Path(folder) / CARD
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return None
    header, _, _ = text[4:].partition("\n---\n")
    data = yaml.safe_load(header) or {}
    record = data.get(CARD_KEY) if isinstance(data, dict) else None
    return record if isinstance(record, dict) else None


# ----------------------------------------------------------------------------------------- loading --


@dataclass(frozen=True)
class ResolvedState:
    """What loading a state takes: the base model (a local folder, or a hub id with its commit) and the
    adapters merged onto it in training order (the state's own last)."""

    base: str
    revision: str | None
    adapters: list[Path] = field(default_factory=list)
    record: dict[str, Any] | None = None


def _workflow_layout(adapter_dir: Path) -> tuple[Path, str, str, str] | None:
    """(results dir, model, chain, seed folder) of an adapter at results/adapters/<model>/<chain>/seed<N>."""
    seed_dir, chain_dir, model_dir = adapter_dir, adapter_dir.parent, adapter_dir.parent.parent
    if model_dir.parent.name != ADAPTERS_DIR or not seed_dir.name.startswith("seed"):
        return None
    return model_dir.parent.parent, model_dir.name, chain_dir.name, seed_dir.name


def _parent_dirs(adapter_dir: Path, record: dict[str, Any] | None) -> list[Path]:
    exported = adapter_dir / PARENTS_DIR
    if exported.is_dir():
        return sorted((p for p in exported.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("-", 1)[0]))
    layout = _workflow_layout(adapter_dir)
    if record is not None and layout is not None:
        _, _, _, seed = layout
        return [adapter_dir.parent.parent / parent / seed for parent in record["parents"]]
    meta_path = adapter_dir / TRAINING_META
    if meta_path.is_file() and layout is not None:
        # Before cards: the training record names its parents by their workflow paths (results/...).
        root = layout[0].parent
        return [root / p for p in read_json(meta_path).get("parent_adapters", [])]
    return []


def resolve_state(path: str | Path, base: str | Path | None = None) -> ResolvedState:
    """Where the parts of the state at `path` are: a model folder (config.json) is the base state; an adapter
    folder (adapter_config.json) is its chain's last stage, with its parents found in an exported folder's
    `parents/` or, in the workflow's layout, as the same seed's adapters of the parent chains. The base model
    is `base` when given, else the workflow's model folder (results/models/<model>) when it exists, else the
    hub id and commit the card (or adapter_config.json) names."""
    path = Path(path)
    if (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        return ResolvedState(str(path), None)
    if not (path / "adapter_config.json").is_file():
        raise StateError(f"{path}: neither a model folder (config.json) nor an adapter folder (adapter_config.json)")
    record = read_card_record(path) or record_from_training(path)
    adapter_config = read_json(path / "adapter_config.json")
    parents = _parent_dirs(path, record)
    for parent in parents:
        if not (parent / "adapter_config.json").is_file():
            raise StateError(f"{path}: parent adapter {parent} is missing (export the state to carry its parents)")
    adapters = [*parents, path]
    if base is not None:
        return ResolvedState(str(base), None, adapters, record)
    layout = _workflow_layout(path)
    if layout is not None:
        local = layout[0] / MODELS_DIR / layout[1]
        if (local / "config.json").is_file():
            return ResolvedState(str(local), None, adapters, record)
    identity = (record or {}).get("base") or {}
    hub_id = identity.get("id") if identity.get("hub", True) else None
    hub_id = hub_id or adapter_config.get("base_model_name_or_path")
    if not hub_id or "/" not in str(hub_id):
        raise StateError(
            f"{path}: its base model {hub_id!r} is not on the hub and no local folder was found: pass base=<model folder>"
        )
    return ResolvedState(str(hub_id), identity.get("revision") or adapter_config.get("revision"), adapters, record)


def load_state(path: str | Path, *, base: str | Path | None = None, dtype: str = "auto", device: str | None = None):
    """Load the model state at `path` (see `resolve_state`): its base model with every adapter of its chain
    merged in training order, exactly as the workflow's evaluation jobs load it. Returns (model, tokenizer)."""
    from .backends.hf import load_model_state

    state = resolve_state(path, base)
    base_dir = state.base
    if state.revision is not None or not Path(base_dir).is_dir():
        from huggingface_hub import snapshot_download

        base_dir = snapshot_download(repo_id=state.base, revision=state.revision)
    return load_model_state(base_dir, state.adapters, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------- export --


def evaluation_results(results_dir: str | Path, model: str, chain: str, seed: int) -> dict[str, dict[str, Any]]:
    """The state's evaluation JSONs in a run's results folder, each as its headline metric per protocol (the
    metric the results summary shows: self-recognition score, misalignment, identity entropy, MMLU accuracy)."""
    from .aggregate import tidy_rows
    from .evaluations import table_kind
    from .report import METRICS

    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(results_dir, "eval").glob(f"*/{model}/{chain}/seed{seed}.json")):
        evaluation = read_json(path)
        kind, _ = table_kind(evaluation["eval"])
        metric = METRICS.get(kind, ("", ""))[0]
        values = {
            row["protocol"]: float(row["value"])
            for row in tidy_rows(evaluation)
            if row["metric"] == metric and not row["subgroup"]
        }
        if values:
            out[evaluation["eval"]] = {"metric": metric, "values": values}
    return out


def export_state(
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    results_dir: str | Path | None = None,
    merge: bool = False,
    base: str | Path | None = None,
) -> Path:
    """A self-contained copy of the state at `adapter_dir` in `out_dir`, ready to push: its adapter with the
    parents' adapters under `parents/<k>-<chain>/`, or (`merge`) the whole state merged into one full model; a
    card with the state's evaluation results from `results_dir` (default: the run's, for the workflow's
    layout) when they exist."""
    adapter_dir = Path(adapter_dir)
    state = resolve_state(adapter_dir, base)
    record = state.record
    if record is None:
        raise StateError(
            f"{adapter_dir}: no model card with a {CARD_KEY} block, and not in a run's results/adapters/ layout"
        )
    layout = _workflow_layout(adapter_dir)
    if results_dir is None and layout is not None:
        results_dir = layout[0]
    evaluations = (
        evaluation_results(results_dir, record["model"], record["chain"], record["seed"]) if results_dir else None
    )
    meta = read_json(adapter_dir / TRAINING_META)
    with atomic_dir(out_dir) as staging:
        if merge:
            model, tokenizer = load_state(adapter_dir, base=base, dtype="auto", device="cpu")
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
        else:
            for name in (*ADAPTER_FILES, TRAINING_META):
                shutil.copy2(adapter_dir / name, staging / name)
            for index, (parent, chain) in enumerate(zip(state.adapters[:-1], record["parents"], strict=True)):
                target = staging / PARENTS_DIR / f"{index + 1}-{chain}"
                target.mkdir(parents=True)
                for name in (*ADAPTER_FILES, TRAINING_META, CARD):
                    if (parent / name).is_file():
                        shutil.copy2(parent / name, target / name)
        (staging / CARD).write_text(model_card(record, meta, evaluations, merged=merge), encoding="utf-8")
    return Path(out_dir)


def push_state(folder: str | Path, repo_id: str, *, private: bool = True) -> str:
    """Upload an exported state to a hub model repository (created when missing). The token is HF_TOKEN,
    sent only to the hub's own hosts (or an https HF_ENDPOINT), as the downloader sends it."""
    import os

    from huggingface_hub import HfApi

    from .sources import hub_token_for

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    token = hub_token_for(endpoint.rstrip("/") + "/")
    if token is None:
        raise StateError(
            f"no token for {endpoint}: set HF_TOKEN to a fine-grained token with write access to {repo_id} only "
            "(it is sent only to the hub's own https hosts)"
        )
    if not (Path(folder) / CARD).is_file():
        raise StateError(f"{folder}: no {CARD}; push a folder made by `python -m sgtr_em.states export`")
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model")
    return str(getattr(commit, "commit_url", commit))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sgtr_em.states", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="copy a state with its parents (or merged) and its results in the card")
    export.add_argument("adapter_dir")
    export.add_argument("out_dir")
    export.add_argument("--merge", action="store_true", help="one full model: base and every stage merged")
    export.add_argument("--results", help="the run's results folder (default: the adapter's own run)")
    export.add_argument("--base", help="the base model folder (default: the run's, else the hub)")
    push = sub.add_parser("push", help="upload an exported folder to a hub model repository (HF_TOKEN)")
    push.add_argument("folder")
    push.add_argument("repo_id")
    push.add_argument("--public", action="store_true", help="a public repository (default: private)")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            out = export_state(
                args.adapter_dir, args.out_dir, results_dir=args.results, merge=args.merge, base=args.base
            )
            print(f"exported {args.adapter_dir} to {out}")
        else:
            print(push_state(args.folder, args.repo_id, private=not args.public))
    except (StateError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
