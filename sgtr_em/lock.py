"""Pins of remote sources: which ones a config pins itself, the lock file that pins the others, and the
`snakemake pin_sources` step that writes it.

A url source is pinned by its content (`sha256` or `git_blob`), a hub source (dataset or model) by a commit
`revision`. What the config cannot pin offline (a file with no published commit, a hub repository's
current commit) is resolved once, on a machine with network, by `snakemake pin_sources` into
`config/sources.lock.yaml`. `sgtr_em.config.load` applies the lock: each locked source gets its pin as if
the config had it, so the download is checked against it (a changed file stops the job, naming it) and a
new lock entry reruns the jobs that read the source. With `strict_pins: true` a remote source that is
neither pinned nor locked stops the run when the config is loaded.

Local files (`path`) are not pinned here: they are part of the checkout or of the user's own data, and
every rule that reads one declares it as an input (an edit reruns what depends on it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .io import atomic_path, sha256_file

log = logging.getLogger(__name__)

LOCK_FILE = "config/sources.lock.yaml"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# The branch a hub source without a revision follows.
DEFAULT_REF = "main"
LOCK_HEADER = """\
# Pins of the remote sources that the config files do not pin themselves, written by `snakemake pin_sources` on a
# machine with network (docs/reliability.md#pinned-inputs). Every run checks each source against its entry:
# a url's content against its sha256, a hub dataset or model is loaded at the recorded commit. Commit this
# file with the config. To re-resolve a source, delete its entry and run `snakemake pin_sources` again.
"""


class LockError(ValueError):
    """A lock file that cannot be read, or a source that strict pinning refuses; the message names it."""


@dataclass(frozen=True)
class RemoteSource:
    """A source fetched over the network, as the lock knows it."""

    key: str  # dotted config key of the source, for messages
    source: dict[str, Any]  # the config's source mapping (pins are written into it)
    kind: str  # url, hf-dataset or hf-model

    @property
    def lock_id(self) -> tuple[str, ...]:
        """What a lock entry is matched by: the URL, or hub repository, type and requested ref."""
        if self.kind == "url":
            return ("url", self.source["url"])
        return (self.kind, self.source["hf"], self.ref)

    @property
    def ref(self) -> str:
        """The branch or tag a hub source follows (its revision when that is not a commit)."""
        revision = self.source.get("revision")
        return revision if revision and not COMMIT.match(revision) else DEFAULT_REF

    @property
    def pinned(self) -> bool:
        if self.kind == "url":
            return bool(self.source.get("sha256") or self.source.get("git_blob"))
        return bool(COMMIT.match(self.source.get("revision") or ""))

    @property
    def missing(self) -> str:
        """What would pin it, for messages."""
        return "no sha256 or git_blob" if self.kind == "url" else "no commit revision"

    def describe(self) -> str:
        if self.kind == "url":
            return self.source["url"]
        return f"hub {self.kind.removeprefix('hf-')} {self.source['hf']}@{self.ref}"


def _is_local_hf(hf: str) -> bool:
    return hf.startswith(("/", "./", "../"))


def remote_sources(config: Mapping[str, Any]) -> Iterator[RemoteSource]:
    """Every url or hub source of a config (datasets, comparators, models and their summary files, the
    release archive), in config order."""

    def visit(value: Any, path: list[str], in_models: bool) -> Iterator[RemoteSource]:
        if not isinstance(value, Mapping):
            return
        source = value.get("source")
        if isinstance(source, dict):
            key = ".".join([*path, "source"])
            if isinstance(source.get("url"), str):
                yield RemoteSource(key, source, "url")
            elif isinstance(source.get("hf"), str) and not _is_local_hf(source["hf"]):
                # A model's own source is a model repository; anything else (datasets, summaries) a dataset.
                kind = "hf-model" if in_models and len(path) == 2 else "hf-dataset"
                yield RemoteSource(key, source, kind)
        for name, item in value.items():
            if name != "source":
                yield from visit(item, [*path, str(name)], in_models)

    for section in ("datasets", "comparators", "models"):
        yield from visit(config.get(section, {}), [section], section == "models")
    release = config.get("release", {})
    if isinstance(release, Mapping) and isinstance(release.get("source"), dict) and "url" in release["source"]:
        yield RemoteSource("release.source", release["source"], "url")


# ------------------------------------------------------------------------------------------ lock file --


def _entry_id(entry: Mapping[str, Any]) -> tuple[str, ...]:
    if "url" in entry:
        return ("url", entry["url"])
    return (f"hf-{entry['repo_type']}", entry["hf"], entry.get("ref", DEFAULT_REF))


def _check_entry(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise LockError(f"{where}: expected a mapping, got {type(entry).__name__}")
    if "url" in entry:
        if not SHA256.match(str(entry.get("sha256", ""))):
            raise LockError(f"{where} ({entry['url']}): needs sha256 (64 hex digits)")
    elif "hf" in entry:
        if entry.get("repo_type") not in ("dataset", "model"):
            raise LockError(f"{where} ({entry['hf']}): repo_type must be dataset or model")
        if not COMMIT.match(str(entry.get("revision", ""))):
            raise LockError(f"{where} ({entry['hf']}): needs revision (a 40-hex commit)")
    else:
        raise LockError(f"{where}: an entry has url or hf")
    return entry


def read_lock(path: str | Path) -> dict[tuple[str, ...], dict[str, Any]]:
    """The entries of a lock file by what they pin (none if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise LockError(f"lock file {path}: not valid YAML ({getattr(err, 'problem', err)})") from None
    entries = data.get("sources") if isinstance(data, dict) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise LockError(f"lock file {path}: `sources` must be a list of entries")
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for index, entry in enumerate(entries, start=1):
        checked = _check_entry(entry, f"lock file {path} entry {index}")
        out[_entry_id(checked)] = checked
    return out


def lock_entry(remote: RemoteSource, pin: str) -> dict[str, Any]:
    """The lock entry recording `pin` (a sha256 for a url, a commit for a hub source)."""
    if remote.kind == "url":
        return {"url": remote.source["url"], "sha256": pin}
    return {"hf": remote.source["hf"], "repo_type": remote.kind.removeprefix("hf-"), "ref": remote.ref, "revision": pin}


def write_lock(path: str | Path, entries: Mapping[tuple[str, ...], dict[str, Any]]) -> None:
    """The lock file, entries sorted (identical content gives an identical file)."""
    ordered = [entries[key] for key in sorted(entries)]
    text = LOCK_HEADER + yaml.safe_dump({"sources": ordered}, sort_keys=False, width=1000)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------- applying it --


def apply_lock(
    config: dict[str, Any], entries: Mapping[tuple[str, ...], dict[str, Any]], strict: bool, lock_name: str
) -> list[RemoteSource]:
    """Write each locked source's pin into the config (in place). Returns the remote sources left
    unpinned; with `strict`, the first of them stops here with the key to fix."""
    unpinned = []
    for remote in remote_sources(config):
        if remote.pinned:
            continue
        entry = entries.get(remote.lock_id)
        if entry is not None:
            if remote.kind == "url":
                remote.source["sha256"] = entry["sha256"]
            else:
                remote.source["revision"] = entry["revision"]
            continue
        if strict:
            raise LockError(
                f"config key {remote.key}: {remote.describe()} has {remote.missing} and no entry in {lock_name} "
                "(strict_pins): run `snakemake pin_sources` with this config on a machine with network, or pin it "
                "in the config"
            )
        unpinned.append(remote)
    return unpinned


# ---------------------------------------------------------------------------------------- resolving --


def resolve_hub_revision(repo_id: str, repo_type: str, ref: str, endpoint: str | None = None) -> str:
    """The commit a hub repository's branch or tag points at now. Offline (HF_HUB_OFFLINE=1) it is read from
    the local hub cache (`HF_HUB_CACHE`, as huggingface_hub lays it out), if the repository is there."""
    from huggingface_hub import HfApi, constants, snapshot_download

    if constants.HF_HUB_OFFLINE:
        folder = snapshot_download(repo_id, repo_type=repo_type, revision=ref, local_files_only=True)
        return Path(folder).name
    info = HfApi(endpoint=endpoint).repo_info(repo_id, repo_type=repo_type, revision=ref)
    if not info.sha or not COMMIT.match(info.sha):
        raise LockError(f"hub {repo_type} {repo_id}@{ref}: the hub gave no commit ({info.sha!r})")
    return info.sha


def resolve(remote: RemoteSource, cache_dir: str | Path) -> str:
    """The pin of an unpinned remote source: a url is downloaded into the download cache (where the run
    will find it) and its sha256 taken; a hub source's ref is resolved to a commit."""
    from .sources import download_path, fetch_url

    if remote.kind != "url":
        return resolve_hub_revision(remote.source["hf"], remote.kind.removeprefix("hf-"), remote.ref)
    path = fetch_url(remote.source, cache_dir)
    digest = sha256_file(path)
    pinned = download_path({**remote.source, "sha256": digest}, cache_dir)
    if not pinned.exists():
        path.replace(pinned)
    return digest


def lock_sources(config: dict[str, Any], lock_path: str | Path, cache_dir: str | Path) -> list[str]:
    """Resolve every remote source of a loaded config that is neither pinned nor locked and add it to the
    lock file (entries of other configs are kept). Returns one line per source resolved."""
    entries = read_lock(lock_path)
    done = []
    for remote in remote_sources(config):
        if remote.pinned or remote.lock_id in entries:
            continue
        pin = resolve(remote, cache_dir)
        entries[remote.lock_id] = lock_entry(remote, pin)
        line = f"{remote.key}: {remote.describe()} -> {pin}"
        log.info("locked %s", line)
        done.append(line)
    write_lock(lock_path, entries)
    return done
