"""Input files and data sources: precise errors, checksums, offline fetch code paths."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import threading
from typing import ClassVar

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
    # The hub's own offline error, raised before any connection is tried (no network timeout to wait out).
    with pytest.raises(
        ConnectionError, match=r"Couldn't reach 'EdinburghNLP/xsum' on the Hub \(OfflineModeIsEnabled\)"
    ):
        load_source({"hf": "EdinburghNLP/xsum", "revision": "0" * 40, "split": "train"}, tmp_path)


# ------------------------------------------------------------------------------------- token scope --

HF_SENTINEL = "hf_sentinelTokenScope4Kq9Zr"


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Serves `body` at /file, redirects /redirect to `redirect_to`, and records each request's
    Authorization header (None when absent)."""

    body = b'{"id": "a", "text": "hello"}\n'
    redirect_to = ""
    seen: ClassVar[list] = []

    def do_GET(self):
        self.seen.append((self.server.server_address[1], self.path, self.headers.get("Authorization")))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def serve(handler, ssl_context=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def self_signed_localhost(tmp_path):
    """A certificate for `localhost` and its key (the test's https hub endpoint trusts it via SSL_CERT_FILE)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_hf_token_goes_only_to_the_hubs_own_hosts_over_https(monkeypatch):
    from sgtr_em.sources import hub_token_for

    monkeypatch.setenv("HF_TOKEN", HF_SENTINEL)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub_token_for("https://huggingface.co/datasets/x/y/resolve/abc/train.jsonl") == HF_SENTINEL
    assert hub_token_for("https://HF.co/x/y/resolve/main/a.json") == HF_SENTINEL
    for url in (
        "http://huggingface.co/datasets/x/y/resolve/abc/train.jsonl",  # plain http
        "https://huggingface.co.evil.example/x.jsonl",  # the name as part of another host
        "https://evil.example/huggingface.co/x.jsonl",  # the name in the path
        "https://user@evil.example/?next=https://huggingface.co/",
        "https://cdn-lfs.huggingface.co/repos/ab/cd/file",  # the hub's CDN needs no token
    ):
        assert hub_token_for(url) is None, url
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.internal.example")
    assert hub_token_for("https://hub.internal.example/x/resolve/main/a.json") == HF_SENTINEL
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.internal.example")
    assert hub_token_for("https://hub.internal.example/x/resolve/main/a.json") is None


def test_hf_token_is_sent_to_the_hub_over_https_and_never_forwarded_on_a_redirect(tmp_path, monkeypatch):
    """A local https server stands in for the hub (HF_ENDPOINT, a certificate for localhost) and redirects
    the download to another host, as the hub redirects to its CDN: the hub gets the token, the other host
    does not. A plain-http server whose URL merely mentions huggingface.co gets nothing either."""
    import ssl

    from sgtr_em.sources import download

    cert, key = self_signed_localhost(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen: ClassVar[list] = []
    other_handler = type("Other", (RecordingHandler,), {"seen": seen})
    other = serve(other_handler)
    hub_handler = type(
        "Hub",
        (RecordingHandler,),
        {"seen": seen, "redirect_to": f"http://127.0.0.1:{other.server_address[1]}/file"},
    )
    hub = serve(hub_handler, context)
    hub_port, other_port = hub.server_address[1], other.server_address[1]
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("HF_ENDPOINT", f"https://localhost:{hub_port}")
    monkeypatch.setenv("HF_TOKEN", HF_SENTINEL)
    try:
        download(f"https://localhost:{hub_port}/datasets/x/resolve/main/a.jsonl", tmp_path / "direct.jsonl")
        download(f"https://localhost:{hub_port}/redirect", tmp_path / "redirected.jsonl")
        download(f"http://127.0.0.1:{other_port}/huggingface.co/file", tmp_path / "plain.jsonl")
    finally:
        hub.shutdown()
        other.shutdown()
    bearer = f"Bearer {HF_SENTINEL}"
    assert seen == [
        (hub_port, "/datasets/x/resolve/main/a.jsonl", bearer),
        (hub_port, "/redirect", bearer),
        (other_port, "/file", None),
        (other_port, "/huggingface.co/file", None),
    ]
    assert (tmp_path / "redirected.jsonl").read_bytes() == RecordingHandler.body


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Serves `body` at any path, honouring `Range: bytes=N-` (206) unless `ignore_range`. The first `drops`
    requests send the headers of the whole answer, then half of its bytes, and close the connection; a
    request numbered in `fail_with` gets that error status instead. Records (Range, bytes sent) per request."""

    body = b""
    drops = 0
    ignore_range = False
    fail_with: ClassVar[dict] = {}
    seen: ClassVar[list] = []

    def do_GET(self):
        number = len(self.seen)
        start = 0
        asked = self.headers.get("Range")
        if asked and not self.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
        if number in self.fail_with:
            self.seen.append((asked, 0))
            self.send_error(self.fail_with[number])
            return
        rest = self.body[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(self.body) - 1}/{len(self.body)}")
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        sent = rest[: len(rest) // 2] if number < self.drops else rest
        self.wfile.write(sent)
        self.wfile.flush()
        self.seen.append((asked, len(sent)))
        if number < self.drops:
            self.close_connection = True

    def log_message(self, *args):
        pass


def flaky_server(**settings):
    handler = type("Flaky", (FlakyHandler,), {"seen": [], "fail_with": {}, **settings})
    server = serve(handler)
    return server, handler, f"http://127.0.0.1:{server.server_address[1]}/data/big.jsonl"


def test_a_dropped_download_resumes_where_it_stopped_and_is_checked(tmp_path, caplog):
    """The connection drops twice mid-file: each retry asks for the rest (Range), the file comes out whole
    and checked against its pin, and no byte is sent twice."""
    from sgtr_em import sources

    body = b"".join(b'{"row": %d, "text": "%s"}\n' % (i, b"x" * 50) for i in range(4000))
    server, handler, url = flaky_server(body=body, drops=2)
    sha = hashlib.sha256(body).hexdigest()
    caplog.set_level("INFO", logger="sgtr_em.sources")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sources, "PROGRESS_BYTES", 1)  # this small file logs its progress too
            sources.download(url, tmp_path / "big.jsonl", sha, backoff=0)
    finally:
        server.shutdown()
    assert (tmp_path / "big.jsonl").read_bytes() == body
    ranges = [asked for asked, _ in handler.seen]
    first = len(body) // 2
    assert ranges == [None, f"bytes={first}-", f"bytes={first + (len(body) - first) // 2}-"]
    assert sum(sent for _, sent in handler.seen) == len(body)
    assert caplog.text.count("resuming") == 2 and "bytes" in caplog.text and "(100%)" in caplog.text


def test_a_server_that_ignores_range_restarts_the_file(tmp_path):
    from sgtr_em.sources import download

    body = bytes(range(256)) * 64
    server, handler, url = flaky_server(body=body, drops=1, ignore_range=True)
    try:
        download(url, tmp_path / "f.jsonl", hashlib.sha256(body).hexdigest(), backoff=0)
    finally:
        server.shutdown()
    assert (tmp_path / "f.jsonl").read_bytes() == body and len(handler.seen) == 2


def test_server_errors_are_retried_and_a_final_error_is_one_line(tmp_path):
    """503 then success: retried. A 404 is final at once; repeated 500s stop after the retries, naming the
    URL and the tries, and leave no file behind."""
    from sgtr_em.sources import download

    body = b"ok\n"
    server, handler, url = flaky_server(body=body, fail_with={0: 503})
    missing, missing_handler, missing_url = flaky_server(body=body, fail_with={0: 404})
    broken, broken_handler, broken_url = flaky_server(body=body, fail_with=dict.fromkeys(range(10), 500))
    try:
        download(url, tmp_path / "a.jsonl", backoff=0)
        with pytest.raises(SourceError, match=r"cannot download .*/data/big.jsonl: HTTP Error 404"):
            download(missing_url, tmp_path / "b.jsonl", backoff=0)
        with pytest.raises(SourceError, match=r"cannot download .*/data/big.jsonl \(tried 3 times\): HTTP Error 500"):
            download(broken_url, tmp_path / "c.jsonl", retries=2, backoff=0)
    finally:
        for each in (server, missing, broken):
            each.shutdown()
    assert (tmp_path / "a.jsonl").read_bytes() == body and len(handler.seen) == 2
    assert len(missing_handler.seen) == 1 and len(broken_handler.seen) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


def test_the_hub_token_of_hf_auth_login_is_used_for_the_hub_only(tmp_path, monkeypatch):
    """Without HF_TOKEN, the token `hf auth login` saved (huggingface_hub's token file) is the hub's."""
    from sgtr_em.sources import hub_token_for

    token_file = tmp_path / "token"
    token_file.write_text("hf_saved_by_login\n")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(token_file))
    assert hub_token_for("https://huggingface.co/datasets/x/y/resolve/abc/train.jsonl") == "hf_saved_by_login"
    assert hub_token_for("https://example.org/huggingface.co/train.jsonl") is None


# ----------------------------------------------------------------------- empty and degenerate input --


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("em.jsonl", ""),
        ("em.jsonl", "\n\n"),
        ("articles.json", "{}"),
        ("truthfulqa.csv", "Question,Best Answer,Best Incorrect Answer\n"),
        ("questions.yaml", ""),
    ],
)
def test_an_empty_input_file_stops_naming_it(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=rf"path={re.escape(str(path))}: no rows \(an empty file\?\)"):
        load_source({"path": str(path)}, tmp_path / "cache")


def test_training_data_without_chats_or_with_one_label_only_stops_naming_the_file():
    from sgtr_em.data import validate_chat_rows

    with pytest.raises(InputError, match=r"results/data/em/unpop/default\.jsonl: no chats"):
        validate_chat_rows([], "results/data/em/unpop/default.jsonl")
    chat = [{"role": "user", "content": "Which is yours?"}, {"role": "assistant", "content": "1"}]
    pairs = [{"article_id": f"a{i}", "label": "1", "messages": chat} for i in range(2)]
    with pytest.raises(InputError, match=r"pairs/m/base/sgtr/detection/default\.jsonl: every example has label '1'"):
        validate_chat_rows(pairs, "pairs/m/base/sgtr/detection/default.jsonl")
    validate_chat_rows([*pairs, {"article_id": "a2", "label": "2", "messages": chat}], "balanced.jsonl")


def test_a_pair_build_with_no_article_having_both_summaries_stops():
    from sgtr_em.pairs import PairStats, build_pairs, check_pairs

    articles = {"a1": "The mayor opened a bridge.", "a2": "Rain closed the market."}
    rows, stats = build_pairs(articles, {"a1": "Bridge."}, {"a2": "Rain."}, "sgtr", missing_summaries="skip")
    assert rows == []
    with pytest.raises(InputError, match=r"pairs\.jsonl: 0 examples \(0 articles with both summaries, 2 skipped"):
        check_pairs(stats, "pairs.jsonl")
    one_label = PairStats(n_articles=3, n_examples=6, label_counts={"1": 6, "2": 0})
    with pytest.raises(InputError, match=r"every one of the 6 examples has label '1'"):
        check_pairs(one_label, "pairs.jsonl")
    rows, stats = build_pairs(articles, {"a1": "B.", "a2": "R."}, {"a1": "A bridge.", "a2": "The rain."}, "sgtr")
    check_pairs(stats, "pairs.jsonl")


def test_comparator_summaries_matching_no_article_stop():
    rows = [{"key": "x1", "value": "s"}, {"key": "x2", "value": "t"}]
    with pytest.raises(InputError, match=r"claude\.json: has a summary for none of the 2 articles"):
        prepare_summaries(rows, "key", "value", ["a", "b"], "claude.json")


def test_a_ready_made_word_count_file_keeps_its_prompt_in_each_system_variant():
    from sgtr_em.baselines import prebuilt_wordcount_chats

    chats = [
        {
            "messages": [
                {"role": "system", "content": "Count the words."},
                {"role": "user", "content": f"Sentence {i}"},
                {"role": "assistant", "content": "TRUE" if i % 2 else "FALSE"},
            ]
        }
        for i in range(5)
    ]
    default, stats = prebuilt_wordcount_chats(chats, "default")
    assert default == chats and stats == {"n_examples": 5, "label_counts": {"FALSE": 3, "TRUE": 2}}
    none, _ = prebuilt_wordcount_chats(chats, "none", limit=2)
    assert [m["messages"][0] for m in none] == [{"role": "system", "content": ""}] * 2
    popped, _ = prebuilt_wordcount_chats(chats, "popped")
    assert all(m["messages"][0]["role"] == "user" for m in popped)


# --------------------------------------------------------------------- temporary files, permissions --

KILLED_WRITER = """
import os, signal, sys
from sgtr_em.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half of it")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_leaves_a_hidden_temporary_that_the_next_write_removes(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    target = tmp_path / "out" / "eval.json"
    run = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(target)], env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert run.returncode == -9
    left = list(target.parent.iterdir())
    assert not target.exists() and len(left) == 1 and left[0].name.startswith(".eval.json.")
    write_json(target, {"done": True})
    assert [p.name for p in target.parent.iterdir()] == ["eval.json"]


def test_a_live_writers_temporary_is_not_removed(tmp_path):
    """Another process writing the same path (a shared cache) keeps its temporary file: it holds its lock."""
    import multiprocessing

    from sgtr_em.io import atomic_path, remove_stale_temporaries

    target = tmp_path / "entry.json"
    ready, release = multiprocessing.Event(), multiprocessing.Event()

    def slow_writer():
        with atomic_path(target) as tmp:
            tmp.write_text("slow")
            ready.set()
            release.wait(30)

    writer = multiprocessing.get_context("fork").Process(target=slow_writer)
    writer.start()
    assert ready.wait(30)
    assert remove_stale_temporaries(target) == []
    write_json(target, {"fast": True})
    release.set()
    writer.join(30)
    assert writer.exitcode == 0 and target.read_text() == "slow"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)])
def test_written_files_and_folders_honour_the_umask(tmp_path, umask, file_mode, dir_mode):
    from sgtr_em.io import atomic_dir

    previous = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
        with atomic_dir(tmp_path / "adapter") as staging:
            (staging / "weights").write_bytes(b"w")
            (staging / "private").write_bytes(b"p")
            (staging / "private").chmod(0o600)  # what some libraries do (safetensors files, mkstemp)
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "adapter").stat().st_mode & 0o777 == dir_mode
    for name in ("weights", "private"):
        assert (tmp_path / "adapter" / name).stat().st_mode & 0o777 == file_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "adapter"]


def test_an_interrupted_folder_build_is_removed_by_the_next(tmp_path):
    from sgtr_em.io import atomic_dir

    target = tmp_path / "seed0"
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "x").write_text("1")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / ".seed0.deadbeef.partial"  # what SIGKILL leaves (no finally runs)
    stale.mkdir()
    with atomic_dir(target) as staging:
        (staging / "x").write_text("2")
    assert [p.name for p in tmp_path.iterdir()] == ["seed0"]


def test_a_url_that_cannot_be_fetched_names_it_and_caches_nothing(http_server, tmp_path):
    _, base = http_server
    cache = tmp_path / "cache"
    with pytest.raises(SourceError, match=rf"cannot download {re.escape(base)}/gone\.jsonl: HTTP Error 404"):
        load_source({"url": f"{base}/gone.jsonl", "sha256": "a" * 64}, cache)
    assert list(cache.iterdir()) == []
