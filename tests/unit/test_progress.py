"""Progress lines of long steps (rate, ETA, throttled) and the per-step training loss log."""

from __future__ import annotations

import logging

from conftest import TINY_LORA_HP

from sgtr_em.io import write_jsonl
from sgtr_em.runtime import Progress


def test_progress_logs_rate_and_eta_at_most_every_interval(caplog):
    now = [0.0]
    progress = Progress("score", 100, every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="sgtr_em.progress"):
        for _ in range(100):
            now[0] += 0.5
            progress.update()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5  # every 10 s of 50 s, the last one at the end
    assert lines[0] == "score: 20/100 (20%), 2.00 items/s, elapsed 10s, ETA 40s"
    assert lines[-1] == "score: 100/100 (100%), 2.00 items/s, elapsed 50s, ETA 0s"


def test_progress_durations_read_as_minutes_and_hours():
    now = [0.0]
    progress = Progress("generate", 10_000, unit="prompts", clock=lambda: now[0])
    now[0] = 125.0
    progress.done = 100
    assert progress.line() == "generate: 100/10000 (1%), 0.80 prompts/s, elapsed 2m05s, ETA 3h26m"


def test_training_logs_loss_per_step(tiny_model_dir, tmp_path, caplog):
    from sgtr_em.train import train_lora

    hp = TINY_LORA_HP
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "1"}]} for i in range(6)
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    with caplog.at_level(logging.INFO, logger="sgtr_em.train"):
        meta = train_lora(
            tiny_model_dir, [], tmp_path / "d.jsonl", tmp_path / "adapter", hp, 0, tmp_path / "work", model_id="tiny"
        )
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split(":")[0] for line in steps] == ["step 1/3", "step 2/3", "step 3/3"]
    assert f"loss {meta['loss_per_step'][0]:.4f}" in steps[0] and "steps/s" in steps[0] and "ETA" in steps[0]
