"""Fetch a configured data source: a local path, an http(s) URL checked against sha256, or a Hugging Face
dataset id at a pinned revision. Returns rows (list of dicts) for the preparation step."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from .io import InputError, atomic_path, read_jsonl, sha256_file

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source could not be fetched or failed its checksum."""


def describe(source: dict[str, Any]) -> str:
    for key in ("path", "url", "hf"):
        if key in source:
            return f"{key}={source[key]}"
    return repr(source)


def _format_of(name: str, declared: str | None) -> str:
    if declared and declared != "auto":
        return declared
    lowered = name.lower().split("?")[0]
    for suffix, fmt in ((".jsonl", "jsonl"), (".json", "json"), (".csv", "csv"), (".parquet", "parquet"), (".yaml", "yaml"), (".yml", "yaml")):
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

        return pd.read_parquet(path).to_dict(orient="records")
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
    if "path" in source:
        path = Path(source["path"])
        if not path.exists():
            raise SourceError(f"source file {path} does not exist")
        if source.get("sha256") and sha256_file(path) != source["sha256"]:
            raise SourceError(f"checksum mismatch for {path}: expected sha256 {source['sha256']}")
        return read_table(path, _format_of(path.name, source.get("format")))
    if "url" in source:
        url = source["url"]
        name = source.get("sha256") or url.rstrip("/").rsplit("/", 1)[-1]
        fmt = _format_of(url, source.get("format"))
        dest = Path(cache_dir) / f"{name}.{fmt}"
        return read_table(download(url, dest, source.get("sha256")), fmt)
    if "hf" in source:
        return load_hf_dataset(source)
    raise SourceError(f"source {source!r} has none of path, url, hf")
