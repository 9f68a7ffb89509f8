"""File formats: JSONL/JSON reading with precise errors, atomic writes, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """Bad input data; the message names the file (and line) at fault."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file; blank lines are skipped, a broken line names file and line number."""
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None


# Temporary siblings of an output being written: `.<name>.<random>.tmp` (a file) and `.<name>.<random>.partial`
# (a folder). Hidden, so no glob of results picks them up; removed by the next write of the same output once
# their writer is gone (see remove_stale_temporaries).
TEMP_FILE_SUFFIX = ".tmp"
TEMP_DIR_SUFFIX = ".partial"


def _lock_nowait(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting; False when another process holds it.
    A file system without locks counts as locked by someone (nothing is removed on a guess)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Delete the temporary siblings of `target` left by writers that were killed. A writer holds a lock on
    its temporary file while it writes (locks die with their process, on NFS too), so a file whose lock
    can be taken is stale; a live writer's file is left alone, whichever machine it runs on. A temporary
    folder (`.partial`) has no lock: only the one job that makes an output stages it, so the job's next
    run removes any it finds. Returns what was removed."""
    target = Path(target)
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    prefix = f".{target.name}."
    for path in target.parent.iterdir():
        name = path.name
        if not name.startswith(prefix):
            continue
        if name.endswith(TEMP_DIR_SUFFIX) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif name.endswith(TEMP_FILE_SUFFIX) and path.is_file():
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                if _lock_nowait(fd):
                    path.unlink(missing_ok=True)
                    removed.append(path)
            finally:
                os.close(fd)
    return removed


def _create_locked_temporary(target: Path) -> tuple[Path, int]:
    """A new, empty, locked temporary sibling of `target`. Created with mode 0666 so that the process umask
    decides its permissions (mkstemp would make it 0600 whatever the umask). Locked right after creation;
    if a cleaner took the lock first (it is about to remove the file) or removed it already, another name is
    tried. On a file system without locks the file is used unlocked."""
    import fcntl

    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{TEMP_FILE_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
        except FileExistsError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        except OSError:
            pass
        try:
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return tmp, fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    A killed job therefore never leaves a file that looks complete, and its temporary file is removed by the
    next write of the same path. The file gets the permissions the umask gives (0644 under umask 022).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp, fd = _create_locked_temporary(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        os.close(fd)


def current_umask() -> int:
    """The process umask (read without changing it where Linux allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(root: str | Path) -> None:
    """Give a folder and everything in it the permissions the umask gives new files and folders (0644 and
    0755 under umask 022): some libraries write private files (mode 0600) whatever the umask, and a
    research group sharing a file system must be able to read each other's results."""
    mask = current_umask()
    root = Path(root)
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling folder; it replaces `path` (an earlier folder there is removed) only
    if the block succeeds, so a killed job never leaves a folder that looks complete. The folder and what
    was written into it get the permissions the umask gives (0755 and 0644 under umask 022; mkdtemp would
    make the folder 0700, and some libraries write their files 0600)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    staging = target.parent / f".{target.name}.{secrets.token_hex(4)}{TEMP_DIR_SUFFIX}"
    staging.mkdir(mode=0o777)
    try:
        yield staging
        honour_umask(staging)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def dumps_json(obj: Any) -> str:
    """Canonical JSON text: stable across runs for identical content."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(obj), encoding="utf-8")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_file(path: str | Path) -> str:
    """The id git gives the file's content: SHA-1 of `blob <size>\\0<content>` (what `git rev-parse
    <commit>:<path>` prints), so a file of a pinned commit can be checked without its sha256."""
    size = os.stat(path).st_size
    digest = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable object, independent of key order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_id_map(path: str | Path, field: str) -> dict[str, str]:
    """A JSONL of {"id", field} records as an ordered {id: value} map."""
    out: dict[str, str] = {}
    for line_no, row in enumerate(read_jsonl(path), start=1):
        if "id" not in row or field not in row:
            raise InputError(f"{path}: record {line_no} lacks 'id' or {field!r}")
        out[str(row["id"])] = str(row[field])
    return out


def read_summaries(path: str | Path) -> dict[str, str]:
    """Summaries file as an ordered {article_id: summary} map."""
    return read_id_map(path, "summary")


def read_articles(path: str | Path) -> dict[str, str]:
    """Prepared articles file as an ordered {article_id: text} map."""
    return read_id_map(path, "text")


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """A table with fixed columns (other keys of a row left out, a missing or None one empty); list values are
    stored as JSON text. Cells are written as Python writes them (`dtype=object`: an integer column with a gap
    stays integers)."""
    import pandas as pd

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        return json.dumps(value) if isinstance(value, list) else value

    frame = pd.DataFrame([[cell(row.get(c)) for c in columns] for row in rows], columns=columns, dtype=object)
    with atomic_path(path) as tmp:
        # a NaN (a single seed's standard deviation) reads back as a float: written `nan`, as Python spells it
        frame.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8", na_rep="nan")


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """A table's rows as {column: text} (every cell a string, an empty one "")."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        return []
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]
