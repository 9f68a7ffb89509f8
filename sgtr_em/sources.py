"""Fetch a configured data source: a local path, an http(s) URL checked against sha256, or a Hugging Face
dataset id at a pinned revision; a path or URL may be an archive (optionally encrypted the way
easy-dataset-share protects EM datasets) from which one member is read. Returns rows (list of dicts)
for the preparation step."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import logging
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from .io import InputError, atomic_path, read_jsonl, sha256_file

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
        return data if isinstance(data, list) else [data]
    raise SourceError(f"unknown format {fmt!r}")


def download(url: str, dest: Path, sha256: str | None, timeout: float = 120.0) -> Path:
    """Download once into `dest` (atomic), verify sha256; a cached file is re-verified, not re-fetched."""
    if dest.exists():
        if sha256 and sha256_file(dest) != sha256:
            raise SourceError(f"{dest}: cached download of {url} does not match sha256 {sha256}; delete it to refetch")
        return dest
    log.info("downloading %s", url)
    headers = {"User-Agent": "sgtr-em-workflow"}
    token = os.environ.get("HF_TOKEN")
    if token and "huggingface.co" in url:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
        actual = sha256_file(tmp)
        if sha256 and actual != sha256:
            raise SourceError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}")
        if not sha256:
            log.warning("%s is not pinned by sha256; downloaded content has sha256 %s", url, actual)
    return dest


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
    """Rows of any configured source."""
    archive = source.get("archive")
    if "path" in source:
        path = Path(source["path"])
        if not path.exists():
            raise SourceError(f"source file {path} does not exist")
        if source.get("sha256") and sha256_file(path) != source["sha256"]:
            raise SourceError(f"checksum mismatch for {path}: expected sha256 {source['sha256']}")
    elif "url" in source:
        url = source["url"]
        if UNPINNED_MARK in url:
            raise SourceError(
                f"{url}: replace {UNPINNED_MARK} with a commit of that repository in the config before a real run"
            )
        name = source.get("sha256") or url.rstrip("/").rsplit("/", 1)[-1]
        suffix = "" if archive else "." + _format_of(url, source.get("format"))
        path = download(url, Path(cache_dir) / f"{name}{suffix}", source.get("sha256"))
    elif "hf" in source:
        return load_hf_dataset(source)
    else:
        raise SourceError(f"source {source!r} has none of path, url, hf")
    if archive:
        path = extract_member(path, archive, Path(cache_dir))
        return read_table(path, _format_of(archive["member"].removesuffix(".gz"), source.get("format")))
    return read_table(path, _format_of(path.name, source.get("format")))
