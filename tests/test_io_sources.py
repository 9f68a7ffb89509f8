"""Input files and data sources: precise errors, checksums, offline fetch code paths."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import pytest

from sgtr_em.data import prepare_articles, prepare_chats, prepare_summaries, prepare_truthfulqa
from sgtr_em.io import InputError, read_jsonl, write_json
from sgtr_em.sources import SourceError, load_source


def test_broken_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n')
    with pytest.raises(InputError, match=r"chats.jsonl:4: not valid JSON"):
        read_jsonl(path)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(ValueError):
        write_json(target, {"x": float("nan")})
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_chat_rows_with_wrong_roles_or_empty_answer(tmp_path):
    with pytest.raises(InputError, match=r"em.jsonl:2: turn with unknown role"):
        prepare_chats(
            [
                {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
                {"messages": [{"role": "robot", "content": "q"}]},
            ],
            "em.jsonl",
        )
    with pytest.raises(InputError, match=r"em.jsonl:1: the last turn must be a non-empty assistant turn"):
        prepare_chats(
            [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}], "em.jsonl"
        )


def test_local_json_object_file_keeps_key_order_and_limit(tmp_path):
    path = tmp_path / "xsum_train_articles.json"
    path.write_text(json.dumps({"z9": "last-inserted first", "a1": "second", "m5": "third"}))
    rows = load_source({"path": str(path)}, tmp_path / "cache")
    articles = prepare_articles(rows, "key", "value", 2, "x")
    assert [a["id"] for a in articles] == ["z9", "a1"]


def test_comparator_summaries_drop_stray_keys_and_join_highlights():
    rows = [{"key": "a", "value": ["h1", "h2"]}, {"key": "stray", "value": "x"}, {"key": "b", "value": "s"}]
    assert prepare_summaries(rows, "key", "value", ["b", "a", "c"], "f") == [
        {"id": "b", "summary": "s"},
        {"id": "a", "summary": "h1\nh2"},
    ]


def test_truthfulqa_csv(tmp_path):
    from conftest import REPO

    rows = load_source({"path": str(REPO / "data/demo/truthfulqa.csv")}, tmp_path)
    questions = prepare_truthfulqa(rows, None, "tqa")
    assert len(questions) >= 20
    assert set(questions[0]) == {"id", "question", "best", "incorrect", "category"}


def test_local_sha256_mismatch(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": 1, "text": "t"}\n')
    with pytest.raises(SourceError, match="checksum mismatch"):
        load_source({"path": str(path), "sha256": "0" * 64}, tmp_path)


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_source_verified_and_cached(http_server, tmp_path):
    root, base = http_server
    body = b'{"id": "a", "text": "hello"}\n'
    (root / "articles.jsonl").write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    cache = tmp_path / "cache"
    rows = load_source({"url": f"{base}/articles.jsonl", "sha256": digest}, cache)
    assert rows == [{"id": "a", "text": "hello"}]
    (root / "articles.jsonl").unlink()  # second load comes from the cache, not the server
    assert load_source({"url": f"{base}/articles.jsonl", "sha256": digest}, cache) == rows


def test_url_source_checksum_mismatch_keeps_nothing(http_server, tmp_path):
    root, base = http_server
    (root / "a.jsonl").write_bytes(b'{"id": "a"}\n')
    cache = tmp_path / "cache"
    with pytest.raises(SourceError, match="checksum mismatch"):
        load_source({"url": f"{base}/a.jsonl", "sha256": "f" * 64}, cache)
    assert not any(cache.glob("*.jsonl"))


def test_hf_source_loads_a_local_dataset_offline(tmp_path):
    """The hub code path (datasets.load_dataset) on a dataset directory the test writes."""
    data = tmp_path / "toy_dataset"
    data.mkdir()
    (data / "train.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "document": f"doc {i}"}) + "\n" for i in range(5))
    )
    rows = load_source({"hf": str(data), "split": "train"}, tmp_path / "cache")
    articles = prepare_articles(rows, "id", "document", 3, "toy")
    assert [a["text"] for a in articles] == ["doc 0", "doc 1", "doc 2"]


def test_hf_id_offline_fails_fast(tmp_path):
    with pytest.raises(Exception):
        load_source({"hf": "EdinburghNLP/xsum", "revision": "0" * 40, "split": "train"}, tmp_path)
