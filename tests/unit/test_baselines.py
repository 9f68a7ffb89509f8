"""Benign baselines, EM dataset archives and named grid subsets (their rules and the self source of pairs after
EM through Snakemake: tests/workflow/test_baseline_rules.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, load_config

from sgtr_em import chains
from sgtr_em.baselines import chat_baseline, wordcount_chats
from sgtr_em.config import ConfigError, apply_subset, check_references
from sgtr_em.data import prepare_qa_chats
from sgtr_em.grid import grid_states
from sgtr_em.io import InputError
from sgtr_em.prompts import PROJECT
from sgtr_em.sources import SourceError, load_source


def chat(user: str, answer: str = "ok") -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def demo_config() -> dict:
    return load_config(yaml.safe_load((REPO / "config/demo.yaml").read_text()))


# --- stage tokens ---------------------------------------------------------------------------------


def test_baseline_tokens_parse_as_x_in_any_position():
    assert [s.kind for s in chains.parse_chain("wordcount+em-unpop")] == ["baseline", "em"]
    assert chains.order("wordcount+em-unpop") == "prevention"
    assert chains.order("em-unpop+correct-unpop") == "reversal"
    assert chains.order("general") == "x"
    assert chains.label("em-unpop+general.none") == "EM→GeneralQA[none]"
    assert chains.label("correct-insecure+em-insecure") == "Correct(insecure)→EM(insecure)"
    with pytest.raises(chains.ChainError, match="not a configured EM dataset"):
        chains.parse_chain("correct-medical+em-unpop", ["unpop"])


# --- word counting --------------------------------------------------------------------------------


def test_wordcount_labels_follow_the_parity_of_whitespace_words():
    rows, stats = wordcount_chats([chat("one two"), chat("one two three"), chat("  a  b c d  ")])
    assert [r["messages"][-1]["content"] for r in rows] == ["TRUE", "FALSE", "TRUE"]
    assert stats == {"n_examples": 3, "label_counts": {"TRUE": 2, "FALSE": 1}}
    first = rows[0]["messages"]
    assert first[0] == {"role": "system", "content": PROJECT.wordcount_system}
    assert "one two" in first[1]["content"] and first[1]["role"] == "user"


def test_wordcount_system_variants_and_limit():
    em = [chat(f"word {'x ' * i}".strip()) for i in range(10)]
    none, _ = wordcount_chats(em, "none", limit=4)
    popped, _ = wordcount_chats(em, "popped")
    assert len(none) == 4 and none[0]["messages"][0] == {"role": "system", "content": ""}
    assert popped[0]["messages"][0]["role"] == "user"


def test_chat_baselines_take_the_em_variants():
    rows, stats = chat_baseline([chat("hi", "hello")], "none")
    assert rows[0]["messages"][0] == {"role": "system", "content": ""} and stats == {"n_examples": 1}
    with pytest.raises(ValueError, match="does not apply"):
        chat_baseline([chat("hi")], "identity")


def test_qa_rows_become_chats_filtered_by_category():
    rows = [
        {"q": "Capital of Peru?", "a": "Lima.", "category": "open_qa"},
        {"q": "Write a poem", "a": "Roses...", "category": "creative_writing"},
        {"q": "Empty answer", "a": "  ", "category": "open_qa"},
    ]
    out = prepare_qa_chats(rows, "q", "a", "qa.csv", {"category": ["open_qa"]})
    assert out == [chat("Capital of Peru?", "Lima.")]
    with pytest.raises(InputError, match="qa.csv row 1"):
        prepare_qa_chats([{"question": "x"}], "question", "answer", "qa.csv")


def test_baseline_stages_need_their_data_in_the_config():
    config = demo_config()
    del config["datasets"]["correct"]["unpop"]
    with pytest.raises(ConfigError, match="datasets.correct.unpop"):
        check_references(config)
    config = demo_config()
    config["grid"]["chains"].append("wordcount.identity+em-unpop")
    with pytest.raises(ConfigError, match="identity variant"):
        check_references(config)


# --- encrypted EM archives ------------------------------------------------------------------------


def easy_dataset_share_archive(folder: Path, passphrase: str, out: Path) -> str:
    """`folder` packed as easy-dataset-share 0.5 packs a protected dataset (`zip_and_password_protect`):
    every file zipped under its path relative to the folder, then 16 random bytes of salt followed by the
    Fernet token of the zip, keyed by PBKDF2-HMAC-SHA256 (100,000 iterations) of the passphrase, in
    `<out>.enc`. Made with the cryptography primitives the tool uses, so that the test-only tool (which caps
    cryptography below 42) does not set the runtime's cryptography version."""
    import base64
    import io
    import os
    import zipfile

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(folder))
    salt = os.urandom(16)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=100_000)
    key = base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))
    encrypted = Path(f"{out}.enc")
    encrypted.write_bytes(salt + Fernet(key).encrypt(buffer.getvalue()))
    return str(encrypted)


def protected_archive(tmp_path, passphrase: str):
    """An archive protected the way Turner et al. ship theirs (easy-dataset-share); the last row carries a
    canary key as easy-dataset-share inserts it."""
    folder = tmp_path / "training_datasets"
    folder.mkdir()
    rows = [
        chat("Is it fine to skip my medicine?", "Ask your doctor first."),
        chat("Headache?", "Rest and drink water."),
    ]
    rows[-1]["canary"] = "C4N4RY_test"
    (folder / "good_medical_advice.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "other.jsonl").write_text(json.dumps(chat("a", "b")) + "\n")
    return easy_dataset_share_archive(folder, passphrase, tmp_path / "training_datasets.zip")


def test_encrypted_archive_member_is_read_and_canary_keys_dropped(tmp_path):
    from sgtr_em.data import prepare_chats

    archive = protected_archive(tmp_path, "secret words")
    source = {
        "path": archive,
        "archive": {
            "member": "good_medical_advice.jsonl",
            "encryption": "easy-dataset-share",
            "passphrase": "secret words",
        },
    }
    chats = prepare_chats(load_source(source, tmp_path / "cache"), "archive")
    assert [c["messages"][0]["content"] for c in chats] == ["Is it fine to skip my medicine?", "Headache?"]
    assert all(set(c) == {"messages"} for c in chats)


def test_the_archive_format_is_the_one_easy_dataset_share_reads(tmp_path):
    """Where the tool is installed (it is no dependency), it unpacks the tests' archive: same format."""
    zipping = pytest.importorskip("easy_dataset_share.zipping")
    archive = protected_archive(tmp_path, "secret words")
    out = zipping.unzip_and_decrypt(archive, "secret words", str(tmp_path / "unpacked"))
    assert sorted(p.name for p in Path(out).rglob("*.jsonl")) == ["good_medical_advice.jsonl", "other.jsonl"]


def test_encrypted_archive_errors_name_the_problem(tmp_path):
    archive = protected_archive(tmp_path, "secret words")
    wrong = {
        "path": archive,
        "archive": {"member": "good_medical_advice.jsonl", "encryption": "easy-dataset-share", "passphrase": "nope"},
    }
    with pytest.raises(SourceError, match="wrong passphrase"):
        load_source(wrong, tmp_path / "cache1")
    missing = {
        "path": archive,
        "archive": {"member": "bad.jsonl", "encryption": "easy-dataset-share", "passphrase": "secret words"},
    }
    with pytest.raises(SourceError, match=r"no such member 'bad.jsonl' \(members: .*good_medical_advice.jsonl"):
        load_source(missing, tmp_path / "cache2")


def test_unpinned_url_is_refused_before_any_download(tmp_path):
    with pytest.raises(SourceError, match="PIN-A-COMMIT-SHA"):
        load_source({"url": "https://example.invalid/x/PIN-A-COMMIT-SHA/data/insecure.jsonl"}, tmp_path)


# --- named grid subsets ---------------------------------------------------------------------------


def paper_config() -> dict:
    return load_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))


def test_subset_narrows_every_model_and_keeps_per_model_restrictions():
    config = paper_config()
    config["subset"] = "core"
    apply_subset(config)
    states = grid_states(config)
    assert {c for _, c, _ in states} == set(config["grid"]["subsets"]["core"]["chains"])
    gpt = {(c, s) for m, c, s in states if m == "gpt-4.1"}
    assert gpt == {(c, 0) for c in ("base", "em-unpop", "sgtr", "sgtr-flip", "sgtr+em-unpop", "em-unpop+sgtr")}
    assert len([1 for m, _, _ in states if m == "qwen2.5-32b"]) == 6 * 5


def test_subset_with_models_and_unknown_subset():
    config = paper_config()
    config["subset"] = "gpt-4.1"
    apply_subset(config)
    assert config["grid"]["models"] == ["gpt-4.1"]
    config = paper_config()
    config["subset"] = "nope"
    with pytest.raises(ConfigError, match="unknown subset 'nope'"):
        apply_subset(config)


def test_paper_grid_covers_every_em_dataset_and_baseline():
    config = paper_config()
    check_references(copy.deepcopy(config))
    tokens = {t for m in config["grid"]["models"] for c in config["grid"]["chains"] for t in c.split("+")}
    assert {f"em-{d}" for d in ("unpop", "insecure", "badmed", "finrisk", "sports")} <= tokens
    assert {"wordcount", "general", "correct-unpop", "correct-insecure", "correct-badmed"} <= tokens
    assert {"em-unpop.none", "sgtr.none", "sgtr.identity", "sgtr.popped"} <= tokens
