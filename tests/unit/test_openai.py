"""The OpenAI API path against a local fake server (tests/fake_openai.py) on 127.0.0.1: the chat backend,
retries, the request cache, and fine-tuning jobs that resume instead of being bought twice (the API demo through
Snakemake: tests/e2e/test_openai_demo.py). No real network; a sentinel key must never be written anywhere."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SENTINEL
from fake_openai import FakeOpenAI, Fault

from sgtr_em.backends import load_chat_model
from sgtr_em.backends.openai_api import (
    ApiSettings,
    MissingAPIKeyError,
    OpenAIChatModel,
    OpenAIRequestError,
    option_probabilities,
)
from sgtr_em.backends.openai_state import parent_model_id
from sgtr_em.openai_ft import FineTuneSettings, FineTuningJobError, fine_tune, job_suffix

MODEL = "gpt-4.1-2025-04-14"
PAIR = [
    {
        "role": "user",
        "content": "Article:\nA quiet town votes on a new bridge.\n\nSummary1:\nx\n\nSummary2:\ny\n\nAnswer only 1 or 2.",
    }
]
SUMMARY = [
    {
        "role": "user",
        "content": "Article:\nA quiet town votes on a new bridge after years of debate.\n\nProvide only the summary.",
    }
]


@pytest.fixture
def fake(monkeypatch):
    server = FakeOpenAI(job_polls=2, expected_key=SENTINEL)
    monkeypatch.setenv("OPENAI_BASE_URL", server.start())
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    yield server
    server.stop()


def api(tmp_path: Path, **overrides) -> ApiSettings:
    return ApiSettings(
        **{"cache_dir": str(tmp_path / "cache"), "backoff_seconds": 0.01, "timeout": 2.0, "max_retries": 3, **overrides}
    )


FAST_POLL = FineTuneSettings(poll_seconds=0.01, max_poll_seconds=0.05)


def chat_requests(fake: FakeOpenAI) -> int:
    return fake.count("POST", "/v1/chat/completions")


# ------------------------------------------------------------------------------------ chat backend --


def test_option_probabilities_sum_whitespace_variants_and_default_to_zero():
    top = [{"token": "1", "logprob": -0.5}, {"token": " 1", "logprob": -3.0}, {"token": "The", "logprob": -1.0}]
    probs = option_probabilities(top, ["1", "2"])
    assert probs["2"] == 0.0
    assert probs["1"] == pytest.approx(0.6065 + 0.0498, abs=1e-3)


def test_replies_and_option_probs_then_a_rerun_sends_no_request(fake, tmp_path):
    model = OpenAIChatModel(MODEL, api(tmp_path))
    replies = model.generate([SUMMARY, PAIR], max_new_tokens=30, temperature=0.7, top_p=0.9, top_k=0, seed=1)
    probs = model.option_probs([PAIR], ["1", "2"])
    assert replies[0] and set(replies[0].split()) <= set(SUMMARY[0]["content"].split()) and replies[1]
    assert 0.85 < probs[0]["1"] + probs[0]["2"] < 0.95
    assert chat_requests(fake) == 3 and fake.keys_seen == {SENTINEL}
    again = OpenAIChatModel(MODEL, api(tmp_path))
    assert again.generate([SUMMARY, PAIR], max_new_tokens=30, temperature=0.7, top_p=0.9, top_k=0, seed=1) == replies
    assert again.option_probs([PAIR], ["1", "2"]) == probs
    assert chat_requests(fake) == 3 and again.requests_sent == 0 and again.cache_hits == 3
    # Another seed or model is another request.
    again.generate([SUMMARY], max_new_tokens=30, temperature=0.7, top_p=0.9, top_k=0, seed=2)
    assert chat_requests(fake) == 4
    assert SENTINEL not in "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))


def test_429_is_retried_after_the_servers_retry_after(fake, tmp_path):
    fake.faults.append(Fault("/v1/chat", status=429, retry_after=0.6))
    model = OpenAIChatModel(MODEL, api(tmp_path))
    started = time.monotonic()
    assert model.option_probs([PAIR], ["1", "2"])[0]["1"] > 0
    assert time.monotonic() - started >= 0.6
    assert chat_requests(fake) == 2


def test_repeated_500s_give_up_after_bounded_retries_with_a_clear_error(fake, tmp_path):
    fake.faults += [Fault("/v1/chat", status=500) for _ in range(10)]
    model = OpenAIChatModel(MODEL, api(tmp_path, max_retries=2), name="eval gpt/base")
    with pytest.raises(
        OpenAIRequestError, match=r"eval gpt/base: chat completion: gave up after 3 attempts.*HTTP 500"
    ) as err:
        model.generate([SUMMARY], max_new_tokens=10, temperature=0, top_p=1, top_k=0, seed=0)
    assert chat_requests(fake) == 3
    assert SENTINEL not in str(err.value)
    assert not list((tmp_path / "cache").rglob("*.json"))  # failures are never cached


def test_timeouts_are_retried_then_reported(fake, tmp_path):
    fake.faults.append(Fault("/v1/chat", sleep=1.0))
    model = OpenAIChatModel(MODEL, api(tmp_path, timeout=0.3))
    assert model.generate([SUMMARY], max_new_tokens=10, temperature=0, top_p=1, top_k=0, seed=0)[0]
    assert chat_requests(fake) == 2
    fake.faults += [Fault("/v1/chat", sleep=1.0) for _ in range(2)]
    with pytest.raises(OpenAIRequestError, match="gave up after 2 attempts.*Timeout"):
        OpenAIChatModel(MODEL, api(tmp_path, timeout=0.3, max_retries=1)).generate(
            [PAIR], max_new_tokens=1, temperature=0, top_p=1, top_k=0, seed=5
        )


def test_missing_key_names_the_model_and_the_variable(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingAPIKeyError, match=r"eval_truthfulqa gpt-4\.1/base.*OPENAI_API_KEY"):
        load_chat_model("eval_truthfulqa gpt-4.1/base", {"openai": MODEL}, {}, [], [], {"cache_dir": str(tmp_path)})


def test_a_rejected_key_is_redacted_from_the_error(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-" + SENTINEL[-12:])
    with pytest.raises(OpenAIRequestError, match="HTTP 401") as err:
        OpenAIChatModel(MODEL, api(tmp_path)).generate(
            [SUMMARY], max_new_tokens=5, temperature=0, top_p=1, top_k=0, seed=0
        )
    assert SENTINEL[-4:] not in str(err.value) and "sk-wrong" not in str(err.value)


# -------------------------------------------------------------------------------------- fine-tuning --


def write_chats(path: Path, n: int, answer: str = "1") -> Path:
    rows = [
        {
            "messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": answer}],
            "label": answer,
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_stage(tmp_path: Path, name: str, base: str, train: Path, **kw):
    return fine_tune(
        base_model=base,
        train_file=train,
        out_dir=tmp_path / "out" / name,
        state_dir=tmp_path / "state" / name,
        seed=0,
        suffix=job_suffix(name, 0),
        settings=api(tmp_path),
        ft=FAST_POLL,
        who=f"train {name}",
        **kw,
    )


def test_two_stages_reuse_uploads_and_a_finished_job_is_never_asked_again(fake, tmp_path):
    train = write_chats(tmp_path / "sgtr.jsonl", 5)
    first = run_stage(tmp_path, "sgtr", MODEL, train)
    assert first["fine_tuned_model"].startswith(f"ft:{MODEL}:") and first["trained_tokens"] > 0
    assert json.loads((tmp_path / "out/sgtr/openai_model.json").read_text())["job_id"] == first["job_id"]
    uploaded = fake.files[first["file_id"]]
    assert uploaded["filename"] == f"sgtr-em-{first['training_file_sha256']}.jsonl"
    assert all(set(row) == {"messages"} for row in uploaded["_lines"])  # only messages are uploaded
    fake.reset_counts()
    assert run_stage(tmp_path, "sgtr", MODEL, train) == first
    assert fake.requests == []  # a rerun after success sends nothing
    # Stage 2 fine-tunes stage 1's ft: model; the same file for another stage is not uploaded again.
    second = run_stage(tmp_path, "sgtr+sgtr", parent_model_id(MODEL, [str(tmp_path / "out/sgtr")]), train)
    assert fake.jobs[second["job_id"]]["model"] == first["fine_tuned_model"]
    assert second["file_id"] == first["file_id"] and fake.count("POST", "/v1/files") == 0
    assert fake.jobs[second["job_id"]]["suffix"] == "sgtr_sgtr-s0"
    assert fake.jobs[second["job_id"]]["method"]["supervised"]["hyperparameters"] == {
        "n_epochs": 1,
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
    }


def test_a_failed_job_raises_its_own_message_and_is_not_bought_again(fake, tmp_path):
    train = write_chats(tmp_path / "em.jsonl", 4, answer="Sure.")
    fake.fail_next_job = "This training file was blocked by our moderation system"
    with pytest.raises(FineTuningJobError, match="failed .invalid_training_file.: This training file was blocked"):
        run_stage(tmp_path, "em-unpop", MODEL, train)
    with pytest.raises(FineTuningJobError, match="not bought again"):
        run_stage(tmp_path, "em-unpop", MODEL, train)
    assert len(fake.jobs) == 1
    state = json.loads((tmp_path / "state/em-unpop/openai_job.json").read_text())
    assert state["failed_jobs"][0]["message"].startswith("This training file was blocked")


def test_a_create_call_that_timed_out_after_the_server_accepted_it_is_not_repeated(fake, tmp_path):
    fake.faults.append(Fault("/v1/fine_tuning/jobs", method="POST", sleep_after=1.0))
    train = write_chats(tmp_path / "sgtr.jsonl", 3)
    result = fine_tune(
        base_model=MODEL,
        train_file=train,
        out_dir=tmp_path / "out",
        state_dir=tmp_path / "state",
        seed=0,
        suffix="sgtr-s0",
        settings=api(tmp_path, timeout=0.3),
        ft=FAST_POLL,
        who="train sgtr",
    )
    assert len(fake.jobs) == 1 and result["job_id"] in fake.jobs


def test_a_stage_names_its_job_by_the_rule_that_runs_it(fake, tmp_path):
    """The training script's entry point (finetune.train_stage): an API model's stage is the `train_stage_api`
    job's, and its messages say so."""
    from sgtr_em.finetune import train_stage

    fake.fail_next_job = "This training file was blocked by our moderation system"
    settings = {"cache_dir": str(tmp_path / "cache"), "backoff_seconds": 0.01, "timeout": 2.0, "max_retries": 3}
    with pytest.raises(FineTuningJobError, match=r"^train_stage_api api-target/em-unpop/seed0: fine-tuning job "):
        train_stage(
            source={"openai": MODEL},
            model_dir=[],
            parents=[],
            train_file=str(write_chats(tmp_path / "em.jsonl", 4, answer="Sure.")),
            out_dir=str(tmp_path / "out"),
            # the stage's fine-tuning settings (openai.fine_tuning, as grid.training_settings hands them on)
            hp={"poll_seconds": 0.01, "max_poll_seconds": 0.05},
            seed=0,
            work_dir=str(tmp_path / "state"),
            threads=1,
            model_id=MODEL,
            model="api-target",
            chain="em-unpop",
            rule="train_stage_api",
            api_config=settings,
        )


def test_suffixes_are_sanitised_and_bounded():
    assert job_suffix("em-unpop.none+sgtr", 3) == "em-unpop-none_sgtr-s3"
    long = job_suffix("+".join(["sgtr-confuse.identity"] * 5), 0)
    assert len(long) <= 64 and long != job_suffix("+".join(["sgtr-confuse.identity"] * 6), 0)


def test_paper_config_declares_gpt41_as_an_api_model():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert config["models"]["gpt-4.1"]["source"] == {"openai": MODEL}
    assert config["models"]["gpt-4.1"]["framing"] == "comparison"
    assert config["models"]["gpt-4o"]["source"] == {"openai": "gpt-4o-2024-08-06"}
    assert config["grid"]["per_model"]["gpt-4.1"]["seeds"] == [0]
