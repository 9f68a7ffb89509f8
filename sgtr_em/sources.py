"""Fetch a configured data source: a local path, an http(s) URL checked against its pin (sha256 or git blob
id), or a Hugging Face dataset id at a pinned revision; a path or URL may be an archive (optionally encrypted
the way easy-dataset-share protects EM datasets) from which one member is read. Returns rows (list of dicts)
for the preparation step.

Downloads use the standard library (urllib) rather than pooch: pooch writes its temporary file with mode 0600
whatever the umask and leaves it visible when killed, cannot check git blob ids, does not resume a dropped
download where it stopped (HTTP Range), and would still need this module's cache naming and token handling
around it; `atomic_path` gives the temporary file, the umask and the cleanup. A dropped or failed transfer is
retried with backoff and resumed from the bytes already received; large files log their progress. Hub models
and datasets are downloaded by huggingface_hub and datasets themselves (sgtr_em.hub, `load_hf_dataset`)."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import http.client
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .io import InputError, atomic_path, git_blob_file, read_jsonl, sha256_file
from .runtime import Progress

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source could not be fetched or failed its checksum."""


# A URL in a shipped config whose commit still has to be chosen (see config/config.yaml).
UNPINNED_MARK = "PIN-A-COMMIT-SHA"
# easy-dataset-share's protected archives: 16 bytes of salt, then a Fernet token of the zip, keyed by
# PBKDF2-HMAC-SHA256 (100,000 iterations) of the passphrase.
EDS_SALT_BYTES = 16
EDS_KDF_ITERATIONS = 100_000


def decrypt_easy_dataset_share(data: bytes, passphrase: str, where: str) -> bytes:
    """The zip inside an easy-dataset-share `.zip.enc` file."""
    from cryptography.fernet import Fernet, InvalidToken
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    salt, token = data[:EDS_SALT_BYTES], data[EDS_SALT_BYTES:]
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=EDS_KDF_ITERATIONS)
    key = base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))
    try:
        return Fernet(key).decrypt(token)
    except InvalidToken:
        raise SourceError(f"{where}: cannot decrypt (wrong passphrase, or not an easy-dataset-share archive)") from None


def extract_member(archive_path: Path, archive: dict[str, Any], dest_dir: Path) -> Path:
    """Write one member of a (possibly encrypted, possibly gzipped-member) zip to dest_dir, atomically;
    an already extracted member is reused. The member is matched by path or by file name."""
    member = archive["member"]
    name = member.rsplit("/", 1)[-1].removesuffix(".gz")
    dest = dest_dir / f"{archive_path.name}.{name}"
    if dest.exists():
        return dest
    data = archive_path.read_bytes()
    if archive.get("encryption", "none") == "easy-dataset-share":
        if not archive.get("passphrase"):
            raise SourceError(f"{archive_path}: archive.passphrase is needed to decrypt it")
        data = decrypt_easy_dataset_share(data, archive["passphrase"], str(archive_path))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise SourceError(f"{archive_path}: not a zip archive") from None
    names = [n for n in zf.namelist() if not n.endswith("/")]
    matches = [n for n in names if n == member] or [n for n in names if n.rsplit("/", 1)[-1] == member]
    if len(matches) != 1:
        found = "several members match" if matches else "no such member"
        raise SourceError(f"{archive_path}: {found} {member!r} (members: {', '.join(sorted(names))})")
    content = zf.read(matches[0])
    if matches[0].endswith(".gz"):
        content = gzip.decompress(content)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(content)
    log.info("extracted %s from %s", matches[0], archive_path)
    return dest


def describe(source: dict[str, Any]) -> str:
    for key in ("path", "url", "hf"):
        if key in source:
            return f"{key}={source[key]}"
    return repr(source)


def _format_of(name: str, declared: str | None) -> str:
    if declared and declared != "auto":
        return declared
    lowered = name.lower().split("?")[0]
    for suffix, fmt in (
        (".jsonl", "jsonl"),
        (".json", "json"),
        (".csv", "csv"),
        (".parquet", "parquet"),
        (".yaml", "yaml"),
        (".yml", "yaml"),
    ):
        if lowered.endswith(suffix):
            return fmt
    raise SourceError(f"cannot tell the format of {name!r}: set `format` on the source")


def read_table(path: str | Path, fmt: str) -> list[dict[str, Any]]:
    """Rows of a local file. A JSON object {key: value} (the reference's article and summary files)
    becomes rows {"key", "value"} in file order."""
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "json":
        with open(path, encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if isinstance(data, dict):
            return [{"key": k, "value": v} for k, v in data.items()]
        if isinstance(data, list):
            return data
        raise InputError(f"{path}: expected a JSON object or list")
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    if fmt == "parquet":
        import pandas as pd

        return [{str(k): v for k, v in row.items()} for row in pd.read_parquet(path).to_dict(orient="records")]
    if fmt == "yaml":
        import yaml

        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        if data is None:  # an empty YAML file
            return []
        return data if isinstance(data, list) else [data]
    raise SourceError(f"unknown format {fmt!r}")


# The Hugging Face hub's own hosts: the only ones HF_TOKEN is sent to (and only over https). Besides these,
# the host of HF_ENDPOINT when it is https (a hub mirror the user chose, as huggingface_hub does).
HUB_HOSTS = ("huggingface.co", "hf.co")
# Where a pin may come from, for messages.
PIN_ORIGIN = "the config, or config/sources.lock.yaml written by `snakemake pin_sources`"


def hub_token_for(url: str) -> str | None:
    """The user's hub token if `url` is https on one of the hub's own hosts, else None. The token is where
    huggingface_hub looks for it (`get_token`: HF_TOKEN, else the token `hf auth login` saved). The host is
    parsed from the URL: a URL that merely mentions the hub's name (in its path, or as part of another host)
    gets nothing."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    hosts = set(HUB_HOSTS)
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", ""))
    if endpoint.scheme == "https" and endpoint.hostname:
        hosts.add(endpoint.hostname.lower())
    if parts.hostname.lower() not in hosts:
        return None
    from huggingface_hub import get_token

    return get_token() or None


def content_pins(source: dict[str, Any]) -> dict[str, str]:
    """The pins a source gives its content: sha256 and/or git_blob (only those set)."""
    return {key: source[key] for key in ("sha256", "git_blob") if source.get(key)}


def verify_pins(path: Path, pins: dict[str, str], where: str) -> None:
    """Stop if the file at `path` does not have the pinned content."""
    for kind, expected in pins.items():
        actual = sha256_file(path) if kind == "sha256" else git_blob_file(path)
        if actual != expected:
            raise SourceError(
                f"checksum mismatch for {where}: expected {kind} {expected}, got {actual}: the content changed "
                f"since it was pinned (in {PIN_ORIGIN}); if the change is intended, update the pin"
            )


# A failed transfer (connection dropped or refused, timeout, server error) is tried again this many times,
# after BACKOFF seconds, doubled each time, resuming from the bytes already received.
RETRIES = 5
BACKOFF = 2.0
# HTTP statuses worth another try; any other error status is final.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
# Files at least this large log their progress (about every PROGRESS_SECONDS).
PROGRESS_BYTES = 10 * 2**20
PROGRESS_SECONDS = 30.0
CHUNK = 2**20


def download(
    url: str,
    dest: Path,
    sha256: str | None = None,
    timeout: float = 120.0,
    *,
    git_blob: str | None = None,
    retries: int = RETRIES,
    backoff: float = BACKOFF,
) -> Path:
    """Download once into `dest` (atomic), verify its pins; a cached file is re-verified, not re-fetched.

    A dropped or failed transfer is retried `retries` times (after `backoff` seconds, doubled each time),
    asking the server for the rest of the file (HTTP Range) when it has a part already. The hub token goes
    only to the hub's own hosts over https (`hub_token_for`), as an unredirected header: urllib drops it on
    any redirect (the hub redirects file downloads to CDN hosts)."""
    pins = {k: v for k, v in (("sha256", sha256), ("git_blob", git_blob)) if v}
    if dest.exists():
        try:
            verify_pins(dest, pins, f"{url} (cached as {dest})")
        except SourceError as err:
            raise SourceError(f"{err}; delete {dest} to fetch it again") from None
        return dest
    log.info("downloading %s", url)
    with atomic_path(dest) as tmp:
        _fetch_with_retries(url, tmp, timeout, retries, backoff)
        verify_pins(tmp, pins, url)
        if not pins:
            log.warning("%s is not pinned; downloaded content has sha256 %s", url, sha256_file(tmp))
    return dest


def _fetch_with_retries(url: str, tmp: Path, timeout: float, retries: int, backoff: float) -> None:
    attempt = 0
    while True:
        try:
            _fetch(url, tmp, timeout)
            return
        except urllib.error.HTTPError as err:
            if err.code not in RETRY_STATUSES:
                raise SourceError(f"cannot download {url}: {err}") from None
            problem: Exception = err
        except (OSError, http.client.HTTPException) as err:  # refused, reset, timeout, a body cut short
            problem = err
        attempt += 1
        if attempt > retries:
            raise SourceError(f"cannot download {url} (tried {attempt} times): {problem}") from None
        delay = backoff * 2 ** (attempt - 1)
        log.warning(
            "download of %s failed after %d bytes (%s); try %d of %d in %.0f s, resuming",
            url,
            tmp.stat().st_size,
            str(problem) or type(problem).__name__,
            attempt + 1,
            retries + 1,
            delay,
        )
        time.sleep(delay)


def _fetch(url: str, tmp: Path, timeout: float) -> None:
    """One transfer into `tmp`: the rest of the file after the bytes `tmp` has (a server that ignores the
    Range request sends it all, and `tmp` starts over). Raises on a body shorter than announced."""
    have = tmp.stat().st_size
    request = urllib.request.Request(url, headers={"User-Agent": "sgtr-em-workflow"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    token = hub_token_for(url)
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        progress = None
        if total is not None and total >= PROGRESS_BYTES:
            progress = Progress(f"download {url}", total, every=PROGRESS_SECONDS, unit="bytes", logger=log)
            progress.update(have)
        with open(tmp, "ab" if have else "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                if progress is not None:
                    progress.update(len(chunk))
    size = tmp.stat().st_size
    if total is not None and size < total:
        raise http.client.IncompleteRead(b"", total - size)


def download_path(source: dict[str, Any], cache_dir: str | Path) -> Path:
    """Where a url source is cached: named by its pin (so a new pin never reuses other bytes), else by a
    hash of the URL (two unpinned files of the same name never collide)."""
    url = source["url"]
    if source.get("sha256"):
        stem = source["sha256"]
    elif source.get("git_blob"):
        stem = f"git-{source['git_blob']}"
    else:
        stem = f"url-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    try:
        suffix = "" if source.get("archive") else "." + _format_of(url, source.get("format"))
    except SourceError:  # not a table (e.g. the release archive): no suffix needed
        suffix = ""
    return Path(cache_dir) / f"{stem}{suffix}"


def fetch_url(source: dict[str, Any], cache_dir: str | Path) -> Path:
    """A url source's file in the download cache, verified against its pins."""
    url = source["url"]
    if UNPINNED_MARK in url:
        raise SourceError(
            f"{url}: replace {UNPINNED_MARK} with a commit of that repository in the config before a real run"
        )
    return download(url, download_path(source, cache_dir), source.get("sha256"), git_blob=source.get("git_blob"))


def load_hf_dataset(source: dict[str, Any]) -> list[dict[str, Any]]:
    """`datasets.load_dataset` at the pinned revision. With HF_HUB_OFFLINE=1 only the local cache (or a
    local dataset directory given as the id) is used."""
    from datasets import load_dataset

    kwargs: dict[str, Any] = {"split": source.get("split", "train")}
    if source.get("config"):
        kwargs["name"] = source["config"]
    if source.get("revision"):
        kwargs["revision"] = source["revision"]
    if source.get("data_files"):
        kwargs["data_files"] = source["data_files"]
    dataset = load_dataset(source["hf"], **kwargs)
    return [dict(row) for row in dataset]


def load_source(source: dict[str, Any], cache_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of any configured source. No rows at all (an empty file, `{}`, a header-only CSV, an empty
    split) stops here, naming the source: nothing downstream can use an empty input."""
    rows = _rows_of(source, cache_dir)
    if not rows:
        raise InputError(f"{describe(source)}: no rows (an empty file?); every input needs at least one")
    return rows


def _rows_of(source: dict[str, Any], cache_dir: str | Path) -> list[dict[str, Any]]:
    archive = source.get("archive")
    if "path" in source:
        path = Path(source["path"])
        if not path.exists():
            raise SourceError(f"source file {path} does not exist")
        verify_pins(path, content_pins(source), str(path))
    elif "url" in source:
        path = fetch_url(source, cache_dir)
    elif "hf" in source:
        return load_hf_dataset(source)
    else:
        raise SourceError(f"source {source!r} has none of path, url, hf")
    if archive:
        path = extract_member(path, archive, Path(cache_dir))
        return read_table(path, _format_of(archive["member"].removesuffix(".gz"), source.get("format")))
    return read_table(path, _format_of(path.name, source.get("format")))
