"""Zip archives, CodePipeline's artifact format: extracted safely, written as a stream.

Extraction trusts nothing an archive says about itself:
- every entry's path must stay inside the destination: no absolute path, drive letter, `..` component, NUL or
  backslash trick; files are opened without following symlinks, and never under a directory that resolves
  outside the destination;
- symlinks are created last, once every file is written, and the whole set is then checked by resolving each
  link on disk: one that leads outside the destination is removed and the extraction fails;
- the number of entries and the bytes actually written (counted while decompressing, not read from the headers)
  are bounded, so a zip bomb, overlapping entries included, stops at the limit;
- permission bits are kept (setuid, setgid and sticky bits are dropped; directories stay writable by their
  owner, so that the tree can be removed).

Writing walks a directory in a stable order and streams the archive into any writable file object (an S3
multipart upload): nothing is held whole in memory or written to disk first.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB
DEFAULT_MAX_ENTRIES = 100_000
MAX_LINK_TARGET_BYTES = 4096
_COPY_BYTES = 1024 * 1024
_UNIX = 3  # ZipInfo.create_system of an archive made on Unix: the high 16 bits of external_attr are st_mode
_DRIVE = re.compile(r"^[A-Za-z]:")


class Sink(Protocol):
    """Where a zip is written: any binary stream, seekable or not (an S3 upload is not)."""

    def write(self, b: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class ZipError(Exception):
    """The archive is not a zip, is damaged, or is unsafe to extract. The message names an entry at most."""


class UnsafeZip(ZipError):
    """An entry would land outside the destination, or the archive exceeds the extraction limits."""


@dataclass(frozen=True)
class Extracted:
    """What an extraction wrote."""

    files: int
    bytes: int


def extract(
    archive: IO[bytes], destination: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES
) -> Extracted:
    """Extract `archive` into `destination` (created if needed) within the limits, or raise ZipError."""
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            return _Extraction(zf, root, max_bytes, max_entries).run()
    except zipfile.BadZipFile as exc:
        problem = f"the artifact is not a valid zip ({exc})"
    except (zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        problem = f"the zip cannot be read ({type(exc).__name__})"
    raise ZipError(problem)


class _Extraction:
    def __init__(self, zf: zipfile.ZipFile, root: Path, max_bytes: int, max_entries: int) -> None:
        self.zf = zf
        self.root = root
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.written = 0
        self.files = 0
        self.safe_dirs: set[Path] = {root}
        self.dir_modes: dict[Path, int] = {}

    def run(self) -> Extracted:
        entries = self.zf.infolist()
        if len(entries) > self.max_entries:
            raise UnsafeZip(f"the zip has {len(entries)} entries; the limit is {self.max_entries}")
        links: list[tuple[zipfile.ZipInfo, Path]] = []
        for info in entries:
            parts = _safe_parts(info.filename)
            if not parts:
                continue
            target = self.root.joinpath(*parts)
            mode = _mode(info)
            if info.is_dir() or (mode is not None and stat.S_ISDIR(mode)):
                self._directory(target)
                if mode is not None:
                    self.dir_modes[target] = mode
            elif mode is not None and stat.S_ISLNK(mode):
                links.append((info, target))
            else:
                self._file(info, target, mode)
        for info, target in links:
            self._link(info, target)
        self._check_links([target for _, target in links])
        for directory, mode in sorted(self.dir_modes.items(), key=lambda item: len(item[0].parts), reverse=True):
            os.chmod(directory, (stat.S_IMODE(mode) & 0o777) | stat.S_IRWXU)
        return Extracted(files=self.files, bytes=self.written)

    def _directory(self, path: Path) -> None:
        """Create `path` and its parents, each checked to resolve inside the destination."""
        if path in self.safe_dirs:
            return
        self._directory(path.parent)
        try:
            path.mkdir(exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UnsafeZip(f"{_shown(path, self.root)} is both a file and a directory in the zip") from None
        if not path.resolve().is_relative_to(self.root):
            raise UnsafeZip(f"{_shown(path, self.root)} leads outside the destination")
        self.safe_dirs.add(path)

    def _file(self, info: zipfile.ZipInfo, target: Path, mode: int | None) -> None:
        self._directory(target.parent)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(target, flags, 0o600)
        except OSError as exc:
            raise UnsafeZip(f"{_shown(target, self.root)} cannot be written ({exc.strerror})") from None
        with os.fdopen(descriptor, "wb") as sink, self.zf.open(info) as source:
            while chunk := source.read(_COPY_BYTES):
                self.written += len(chunk)
                if self.written > self.max_bytes:
                    raise UnsafeZip(f"the zip expands past the limit of {self.max_bytes} bytes")
                sink.write(chunk)
            os.fchmod(descriptor, (stat.S_IMODE(mode) & 0o777 if mode else 0) or 0o644)
        self.files += 1

    def _link(self, info: zipfile.ZipInfo, target: Path) -> None:
        if info.file_size > MAX_LINK_TARGET_BYTES:
            raise UnsafeZip(f"{info.filename!r}: a symlink target longer than {MAX_LINK_TARGET_BYTES} bytes")
        with self.zf.open(info) as source:
            link = source.read(MAX_LINK_TARGET_BYTES + 1).decode("utf-8", "replace")
        self.written += len(link)
        if os.path.isabs(link) or _DRIVE.match(link) or "\x00" in link:
            raise UnsafeZip(f"{info.filename!r}: a symlink to an absolute path")
        self._directory(target.parent)
        try:
            os.symlink(link, target)
        except OSError as exc:
            raise UnsafeZip(f"{info.filename!r}: the symlink cannot be created ({exc.strerror})") from None
        self.files += 1

    def _check_links(self, links: list[Path]) -> None:
        """Each link resolved on disk, through every other link: one that leads out of the tree is removed."""
        escaping = [link for link in links if not Path(os.path.realpath(link)).is_relative_to(self.root)]
        for link in escaping:
            link.unlink()
        if escaping:
            raise UnsafeZip(f"{_shown(escaping[0], self.root)}: a symlink that leads outside the destination")


def _safe_parts(name: str) -> list[str]:
    """The entry's path components, or UnsafeZip if it could land outside the destination."""
    if "\x00" in name or name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeZip(f"{name!r}: an absolute path")
    parts = [part for part in re.split(r"[/\\]", name) if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeZip(f"{name!r}: a path that climbs out with '..'")
    return parts


def _mode(info: zipfile.ZipInfo) -> int | None:
    if info.create_system != _UNIX:
        return None
    return (info.external_attr >> 16) or None


def _shown(path: Path, root: Path) -> str:
    return repr(path.relative_to(root).as_posix()) if path.is_relative_to(root) else repr(path.name)


# -- writing --------------------------------------------------------------------------------------------------


def write(directory: Path, sink: Sink) -> int:
    """Zip `directory`'s tree into `sink` (deflated, modes kept, symlinks stored as links); the file count."""
    if not directory.is_dir():
        raise ZipError(f"{directory.name!r} is not a directory")
    count = 0
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, strict_timestamps=False) as zf:
        for path in _walk(directory):
            name = path.relative_to(directory).as_posix()
            if path.is_symlink():
                info = zipfile.ZipInfo(name)  # not from_file: it follows the link
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                info.create_system = _UNIX
                zf.writestr(info, os.readlink(path))
            else:
                zf.write(path, name)
                count += not path.is_dir()
    return count


def _walk(directory: Path) -> Iterator[Path]:
    """Every directory, file and symlink under `directory`, sorted, without following symlinked directories.
    Sockets, pipes and devices are left out: they have no content to archive (and reading a pipe would block)."""
    for top, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        base = Path(top)
        for name in dirs:
            yield base / name
        for name in sorted(files):
            path = base / name
            if path.is_symlink() or stat.S_ISREG(path.stat().st_mode):
                yield path
