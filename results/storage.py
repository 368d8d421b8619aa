"""Where experiments live: a local directory or an object-store URI, through ``pyarrow.fs``.

Ray Tune's ``storage_path`` takes either a path or a URI (``s3://bucket/prefix``,
``gs://bucket/prefix``, ``file:///shared/dir``, ...), resolved by ``pyarrow.fs``; the results
files, the saved experiment file and the checkpoints hpnas reads go through the same filesystem,
so an experiment behaves the same wherever it is stored. Writes are atomic: a temporary file then
a rename on a local disk, a single object upload on an object store (where a reader sees the old
or the new object, never a part).
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

__all__ = ["Location", "is_uri"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_uri(where: str | os.PathLike) -> bool:
    return "://" in str(where)


class Location:
    """A file or directory path, local or behind a URI; ``/`` joins names onto it."""

    def __init__(self, where: str | os.PathLike | Location) -> None:
        if isinstance(where, Location):
            self.uri, self.fs, self.path = where.uri, where.fs, where.path
            return
        text = str(where)
        if is_uri(text):
            self.fs, self.path = pafs.FileSystem.from_uri(text)
            base, mark, query = text.partition("?")  # s3://b/p?region=...: options stay last
            self.uri = base.rstrip("/") + mark + query
        else:
            self.fs = pafs.LocalFileSystem()
            self.path = os.path.abspath(os.path.expanduser(text))
            self.uri = self.path

    def __truediv__(self, name: str) -> Location:
        joined = Location.__new__(Location)
        joined.fs = self.fs
        joined.path = posixpath.join(self.path, name)
        base, mark, query = self.uri.partition("?")
        joined.uri = f"{base}/{name}{mark}{query}"
        return joined

    def __str__(self) -> str:
        return self.uri

    def __fspath__(self) -> str:
        """The local path (so ``open``, pandas and ``Path`` take a local location as is)."""
        if self.local is None:
            raise TypeError(f"{self.uri} is not on the local filesystem")
        return self.path

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def with_name(self, name: str) -> Location:
        if not is_uri(self.uri):
            return Location(os.path.join(os.path.dirname(self.path), name))
        base, mark, query = self.uri.partition("?")
        return Location(base.rsplit("/", 1)[0] + "/" + name + mark + query)

    @property
    def local(self) -> Path | None:
        """The local path, or None behind a remote filesystem."""
        return Path(self.path) if isinstance(self.fs, pafs.LocalFileSystem) else None

    def is_file(self) -> bool:
        return self.fs.get_file_info(self.path).type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self.fs.get_file_info(self.path).type == pafs.FileType.Directory

    def mkdir(self) -> None:
        self.fs.create_dir(self.path, recursive=True)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as f:
            return f.read()

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_bytes(self, data: bytes) -> None:
        """Atomically: readers see the old content or the new, never a part."""
        local = self.local
        if local is None:
            with self.fs.open_output_stream(self.path) as f:  # one object upload
                f.write(data)
            return
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", dir=local.parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would lock other users out
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, local)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def download(self, target: str | Path) -> Path:
        """This directory's files copied under ``target`` (a no-op view when local)."""
        if self.local is not None:
            return self.local
        pafs.copy_files(self.path, str(target), source_filesystem=self.fs,
                        destination_filesystem=pafs.LocalFileSystem())
        return Path(target)
