"""Streams chosen from a file name's extension chain, and opening a source or target through them.

``x.csv.gz.enc`` → ``["gz", "enc"]``: on read the right-most stream is applied to the raw
bytes first (decrypt, then gunzip); on write the mirror image (gzip, then encrypt). The rules
are IOStreams' (docs/codecs.md, How the chain of streams is chosen) with deliberate fixes:
every gzip member is read, zip directory entries are skipped, and a zip entry is named after
the file.

A zip holding several files is read whole, never just its first entry (a silent loss):
every file entry in archive order (directories and ``__MACOSX/`` metadata skipped), or
with ``zip_entry=`` only the entry of that exact name or, for a glob such as ``"*.csv"``,
every entry it matches, ignoring case (against the base name; a glob holding ``/`` against
the whole path). No match raises ``ZipEntryNotFound`` listing the entries.

The entries come out as one stream of their plain concatenated bytes (nothing inserted).
``StreamReader.members`` lists them and ``StreamReader.member_number`` tells which one the
bytes last read came from: a sized ``read(n)`` never spans two (``read()`` of everything
does). ``LineReader`` uses that to end a line at each member's end, so a last line without
a newline never runs into the next member, and, with ``skip_repeated_header=True``, to drop
a member's first line when it repeats the first member's first line (a CSV split into
several files that each carry the header). Members are told apart only when zip is the
stream read last, the left-most stream extension (``x.csv.zip``, ``x.csv.zip.enc``); in
``x.csv.gz.zip`` the gzip layer reads the members' bytes as one stream. Whole-file formats
(xlsx, parquet) refuse a zip of several entries: pass ``zip_entry=``.
"""

from __future__ import annotations

import bz2
import fnmatch
import io
import lzma
import os
import posixpath
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from . import remote, symmetric
from .blocks import BlockReader, Readable
from .errors import CodecError, CorruptInput, UnknownStream, UnsupportedStream, ZipEntryNotFound

Source = str | os.PathLike[str] | BinaryIO

_RAW_READ = 1 << 16  # compressed bytes per read
_MAX_OUT = 1 << 18  # decompressed bytes per step: bounds memory on highly compressed input
_SPOOL_CHUNK = 1 << 20


@dataclass(frozen=True)
class StreamSpec:
    name: str
    description: str
    compressor: bool  # compresses the data (so an .enc stream after it need not compress again)


_SPECS = {
    "gz": StreamSpec("gz", "gzip", True),
    "bz2": StreamSpec("bz2", "bzip2", True),
    "xz": StreamSpec("xz", "xz", True),
    "zst": StreamSpec("zst", "zstandard", True),
    "zip": StreamSpec("zip", "zip archive", True),
    "enc": StreamSpec("enc", "Symmetric Encryption", False),
    "pgp": StreamSpec("pgp", "PGP", False),
}
_ALIASES = {"gzip": "gz", "zstd": "zst", "gpg": "pgp"}
#: every extension that names a stream (lower case); the chain scan stops at anything else
EXTENSIONS = frozenset(_SPECS) | frozenset(_ALIASES)


def canonical_stream(name: str) -> str:
    """``"GZIP"`` → ``"gz"``; raises ``UnknownStream`` for a name that is not a stream."""
    key = str(name).lower().lstrip(".").lstrip(":")
    key = _ALIASES.get(key, key)
    if key not in _SPECS:
        raise UnknownStream(
            f"unknown stream {name!r} (known: {', '.join(sorted(EXTENSIONS))})"
        )
    return key


def _base_name(file_name: str | os.PathLike[str]) -> str:
    name = os.fspath(file_name)
    if remote.is_uri(name):
        return remote.uri_file_name(name)
    return posixpath.basename(name.replace("\\", "/"))


def streams_for(file_name: str | os.PathLike[str] | None) -> list[str]:
    """The streams named by a file name's trailing extensions, in file-name order.

    ``a.csv.gz.enc`` → ``["gz", "enc"]``; ``A.CSV.GZ`` → ``["gz"]``; ``a.gz.csv`` → ``[]``
    (the scan stops at the first extension that is not a stream). Only the base name counts.
    """
    if not file_name:
        return []
    parts = _base_name(file_name).split(".")[1:]
    found: list[str] = []
    for part in reversed(parts):
        key = part.lower()
        if key not in EXTENSIONS:
            break
        found.insert(0, key)
    return found


def resolve_streams(
    streams: Sequence[str] | str | None, file_name: str | os.PathLike[str] | None
) -> list[str]:
    """``streams=None`` infers from the name; a list replaces inference; ``[]`` means raw bytes."""
    if streams is None:
        names: Sequence[str] = streams_for(file_name)
    elif isinstance(streams, str):
        names = [] if streams.lower() in ("", "none") else [streams]
    else:
        names = list(streams)
    return [canonical_stream(n) for n in names]


def zip_entry_name(file_name: str | os.PathLike[str] | None) -> str:
    """``out.csv.zip`` → ``out.csv``: the entry is named after the file, not Ruby's ``"file"``."""
    if not file_name:
        return "file"
    base = _base_name(file_name)
    parts = base.split(".")
    # drop stream extensions from the right up to and including the last ".zip"
    for i in range(len(parts) - 1, 0, -1):
        key = parts[i].lower()
        if key not in EXTENSIONS:
            break
        if key == "zip":
            return ".".join(parts[:i]) or "file"
    return base or "file"


# --------------------------------------------------------------------------- reading layers


class _ZlibStep:
    """Adapts ``zlib.decompressobj`` to the bz2/lzma interface (needs_input, eof, unused_data)."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(31)
        self._tail = b""
        self._full = False

    @property
    def needs_input(self) -> bool:
        return not self._tail and not self._full

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._tail:
            data = self._tail + data
        out = self._d.decompress(data, max_length)
        self._tail = self._d.unconsumed_tail
        self._full = len(out) >= max_length
        return out


class _ZstdStep:
    def __init__(self) -> None:
        self._d = _zstandard().ZstdDecompressor().decompressobj()
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._d.decompress(data)


def _zstandard(file_name: str | None = None) -> Any:
    try:
        import zstandard
    except ImportError:
        raise UnsupportedStream(
            "zstd streams need the optional zstandard package: pip install 'rjbatch[zstd]'",
            file_name=file_name,
        ) from None
    return zstandard


def _decompress_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [zlib.error, lzma.LZMAError, OSError, EOFError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


_STEP_FACTORIES = {
    "gz": _ZlibStep,
    "bz2": bz2.BZ2Decompressor,
    "xz": lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ),
    "zst": _ZstdStep,
}


class DecompressReader(BlockReader):
    """Streams one compression format, reading every member/stream/frame to the end.

    Ruby reads only the first member of a multi-member gzip file; we read them all (what
    ``gzip -d`` does). Zero padding after the last member is allowed; anything else after it,
    or input that stops inside a member, raises ``CorruptInput``.
    """

    def __init__(self, raw: Readable, kind: str, file_name: str | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._kind = kind
        self._label = _SPECS[kind].description
        self._factory = _STEP_FACTORIES[kind]
        if kind == "zst":
            _zstandard(file_name)
        self._errors = _decompress_errors()
        self._name = file_name
        self._step: Any = None
        self._input = b""
        self._raw_pos = 0
        self._members = 0

    #: a zero-byte input is corrupt for a .gz file, but an empty .enc body is an empty file
    _allow_empty = False

    def _read_raw(self) -> bytes:
        data = self._raw.read(_RAW_READ)
        self._raw_pos += len(data)
        return data

    def _corrupt(self, message: str) -> CodecError:
        return CorruptInput(f"{self._label}: {message}", file_name=self._name, offset=self._raw_pos)

    def _next(self) -> bytes:
        while True:
            if self._step is None:
                data = self._input or self._read_raw()
                self._input = b""
                if self._members:
                    data = data.lstrip(b"\0")
                    while not data:  # only zero padding so far
                        more = self._read_raw()
                        if not more:
                            return b""
                        data = more.lstrip(b"\0")
                elif not data:
                    if self._allow_empty:
                        return b""
                    raise self._corrupt("the file is empty (not even a header)")
                self._step = self._factory()
                self._input = data
            step = self._step
            if not self._input and step.needs_input:
                self._input = self._read_raw()
                if not self._input:
                    raise self._corrupt(
                        f"the data is cut short (truncated) in member {self._members + 1}"
                    )
            try:
                out = step.decompress(self._input, _MAX_OUT)
            except self._errors as exc:
                where = "after the last member (trailing garbage)" if self._members else ""
                raise self._corrupt(f"corrupt data {where}: {exc}".replace("  ", " ")) from None
            self._input = b""
            if step.eof:
                self._input = step.unused_data
                self._step = None
                self._members += 1
            if out:
                return out


class _EncGzipReader(DecompressReader):
    """The gzip stage inside an ``.enc`` file: a failure here means a wrong key or tampering."""

    _allow_empty = True

    def _corrupt(self, message: str) -> CodecError:
        return symmetric.DecryptionError(
            f"the decrypted data is not valid gzip ({message}): wrong key, tampered with, "
            "or cut short",
            file_name=self._name,
        )


class _CountingReader(io.RawIOBase):
    """Counts raw bytes read (progress bars) and passes seeks through for zip."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self.bytes_read += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        try:
            return bool(self._raw.seekable())
        except (AttributeError, ValueError):
            return False

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


#: Finder's resource-fork copies ("__MACOSX/._data.csv"): never data, skipped unless named exactly
_MACOS_METADATA = "__MACOSX/"
_GLOB_CHARS = frozenset("*?[")


def _is_metadata(name: str) -> bool:
    return name.startswith(_MACOS_METADATA) or f"/{_MACOS_METADATA}" in name


def _entry_matches(name: str, pattern: str) -> bool:
    """A glob with a ``/`` matches the whole entry path, one without matches the base name;
    either way ignoring case, like extensions everywhere else (``*.csv`` matches ``A.CSV``)."""
    if "/" not in pattern:
        name = posixpath.basename(name)
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def select_zip_entries(infos: Sequence[zipfile.ZipInfo], entry: str | None) -> list[zipfile.ZipInfo]:
    """The entries ``open_read`` reads, in archive order; ``[]`` when nothing matches.

    ``None``: every file entry (directories and ``__MACOSX/`` metadata skipped). An exact
    entry name: that entry. Otherwise ``entry`` is a glob (``*.csv``, ``2024/*.csv``): every
    file entry it matches, ignoring case, against the base name unless the glob holds a ``/``.
    """
    files = [i for i in infos if not i.is_dir()]
    if entry is None:
        return [i for i in files if not _is_metadata(i.filename)]
    exact = next((i for i in infos if i.filename == entry), None)
    if exact is not None:
        return [exact]
    if _GLOB_CHARS.isdisjoint(entry):
        return []
    return [
        i for i in files if not _is_metadata(i.filename) and _entry_matches(i.filename, entry)
    ]


class ZipMembersReader(BlockReader):
    """The selected zip entries read one after another, as one stream of bytes.

    A ``read(n)`` never returns bytes of two entries, and ``member_number`` (1-based) tells
    which entry the bytes last returned came from, so a reader of lines can end a line at
    every member boundary (``LineReader`` does). The bytes themselves are the plain
    concatenation: nothing is inserted between members.
    """

    def __init__(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], file_name: str | None) -> None:
        super().__init__()
        self._zf = zf
        self._infos = infos
        self._file_name = file_name
        self._index = -1
        self._current: Any = None
        self._where = file_name or ""
        #: the selected entry names, in the order they are read
        self.members = [i.filename for i in infos]
        #: 1-based number of the entry the last bytes returned came from (0 before any)
        self.member_number = 0

    @property
    def member(self) -> str | None:
        """Name of the entry the last bytes returned came from (None before any)."""
        return self.members[self.member_number - 1] if self.member_number else None

    def _open_next(self) -> bool:
        self._index += 1
        if self._index >= len(self._infos):
            return False
        info = self._infos[self._index]
        self._where = f"{self._file_name}!{info.filename}" if self._file_name else info.filename
        try:
            self._current = self._zf.open(info)
        except RuntimeError as exc:  # encrypted entries
            raise UnsupportedStream(f"zip entry: {exc}", file_name=self._where) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise CorruptInput(f"corrupt zip entry: {exc}", file_name=self._where) from None
        return True

    def _next(self) -> bytes:
        while True:
            if self._current is None and not self._open_next():
                return b""
            try:
                data = self._current.read(_MAX_OUT)
            except (zipfile.BadZipFile, zlib.error, EOFError, lzma.LZMAError, OSError) as exc:
                raise CorruptInput(f"corrupt zip entry: {exc}", file_name=self._where) from None
            if data:
                self.member_number = self._index + 1
                return data
            self.close_member()

    def close_member(self) -> None:
        if self._current is not None:
            current, self._current = self._current, None
            current.close()


def _open_zip_entries(
    raw: io.RawIOBase, entry: str | None, file_name: str | None, stack: ExitStack
) -> ZipMembersReader:
    """Every file entry (directories skipped), or those ``entry`` names or matches, as one stream."""
    seekable = False
    try:
        seekable = raw.seekable() and hasattr(raw, "fileno")
        if seekable:
            raw.fileno()
    except (AttributeError, OSError, ValueError):
        seekable = False
    archive: io.RawIOBase | IO[bytes] = raw
    if not seekable:  # zip needs random access: spool like Ruby does
        spool = stack.enter_context(tempfile.TemporaryFile(prefix="rjbatch-zip-"))
        shutil.copyfileobj(raw, spool, _SPOOL_CHUNK)
        spool.seek(0)
        archive = spool
    try:
        zf = stack.enter_context(zipfile.ZipFile(archive))
        infos = zf.infolist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CorruptInput(f"not a valid zip file: {exc}", file_name=file_name) from None
    chosen = select_zip_entries(infos, entry)
    if not chosen:
        if entry is None:
            raise ZipEntryNotFound("the zip holds no file entries", file_name=file_name)
        files = [i.filename for i in infos if not i.is_dir()]
        names = ", ".join(files[:10]) or "none"
        if len(files) > 10:
            names += f", ... ({len(files) - 10} more)"
        what = "matches" if not _GLOB_CHARS.isdisjoint(entry) else ""
        raise ZipEntryNotFound(
            f"no zip entry {what} {entry!r} (entries: {names})".replace("  ", " "),
            file_name=file_name,
        )
    reader = ZipMembersReader(zf, chosen, file_name)
    stack.callback(reader.close_member)
    return reader


def _open_read_layer(
    kind: str,
    raw: io.RawIOBase,
    file_name: str | None,
    zip_entry: str | None,
    stack: ExitStack,
) -> io.RawIOBase:
    if kind in _STEP_FACTORIES:
        return DecompressReader(raw, kind, file_name)
    if kind == "zip":
        return _open_zip_entries(raw, zip_entry, file_name, stack)
    if kind == "enc":
        reader = symmetric.DecryptReader(raw, file_name=file_name)
        if reader.compressed:
            return _EncGzipReader(reader, "gz", file_name)
        return reader
    raise UnsupportedStream(
        f"{_SPECS[kind].description} streams are not supported; decrypt the file first "
        "or pass streams=[...] without it",
        file_name=file_name,
    )


class StreamReader(io.RawIOBase):
    """What ``open_read`` yields: the decoded bytes, plus where they came from and progress."""

    def __init__(
        self, inner: io.RawIOBase, counter: _CountingReader, file_name: str | None, streams: list[str]
    ) -> None:
        super().__init__()
        self._inner = inner
        self._counter = counter
        self.file_name = file_name
        self.streams = streams
        self.raw_size: int | None = None
        self._zip = inner if isinstance(inner, ZipMembersReader) else None

    @property
    def members(self) -> list[str] | None:
        """The zip entries read, in order; None unless zip is the stream read last."""
        return None if self._zip is None else self._zip.members

    @property
    def member(self) -> str | None:
        """The zip entry the bytes last read came from (None before any, or without zip)."""
        return None if self._zip is None else self._zip.member

    @property
    def member_number(self) -> int | None:
        """1-based number in ``members`` of the entry the bytes last read came from.

        0 before any byte is read; None without zip. A ``read(n)`` never returns bytes of
        two entries, so a change of this number marks a member boundary.
        """
        return None if self._zip is None else self._zip.member_number

    @property
    def raw_bytes_read(self) -> int:
        """Bytes read from the file itself (compressed/encrypted): for progress bars."""
        return self._counter.bytes_read

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._inner.read(-1 if size is None else size)

    def readall(self) -> bytes:
        return self._inner.read(-1)

    def readinto(self, b: Any) -> int:
        data = self._inner.read(len(b))
        b[: len(data)] = data
        return len(data)


def _describe_source(source: Source, file_name: str | os.PathLike[str] | None) -> tuple[str | None, Any]:
    """(name used for the chain and messages, local path or URI or file object)."""
    if hasattr(source, "read") or hasattr(source, "write"):
        if isinstance(source, io.TextIOBase):
            raise TypeError("open the file in binary mode ('rb'/'wb'): the pipeline works on bytes")
        return (os.fspath(file_name) if file_name else None), source
    if isinstance(source, bytes):
        raise TypeError("pass a path, a URI or a binary file object, not bytes")
    path = os.fspath(source)
    if remote.is_uri(path):
        local = remote.local_path(path)
        name = os.fspath(file_name) if file_name else remote.display_name(path)
        return name, (local if local is not None else ("uri", path))
    return (os.fspath(file_name) if file_name else path), path


@contextmanager
def open_read(
    source: Source,
    *,
    file_name: str | os.PathLike[str] | None = None,
    streams: Sequence[str] | str | None = None,
    zip_entry: str | None = None,
    transport_params: dict[str, Any] | None = None,
) -> Iterator[StreamReader]:
    """Open a path, URI or binary file object and yield its decoded (plain) bytes.

    The streams come from ``streams`` or else from the extensions of ``file_name`` (default:
    the path's own name). A file object given by the caller is left open.
    """
    name, target = _describe_source(source, file_name)
    chain = resolve_streams(streams, name)
    with ExitStack() as stack:
        raw_size = None
        raw: IO[bytes]
        if isinstance(target, str):
            raw = stack.enter_context(open(target, "rb"))
            raw_size = os.fstat(raw.fileno()).st_size
        elif isinstance(target, tuple):
            raw = stack.enter_context(remote.open_uri(target[1], "rb", transport_params))
        else:
            raw = target
        counter = _CountingReader(raw)
        f: io.RawIOBase = counter
        for kind in reversed(chain):
            f = _open_read_layer(kind, f, name, zip_entry, stack)
        reader = StreamReader(f, counter, name, chain)
        reader.raw_size = raw_size
        yield reader


# --------------------------------------------------------------------------- writing layers


class _CompressWriter(io.RawIOBase):
    """Compresses into ``raw``; ``close()`` writes the trailer and leaves ``raw`` open."""

    def __init__(self, raw: BinaryIO, kind: str, file_name: str | None = None) -> None:
        super().__init__()
        self._raw = raw
        if kind == "gz":
            # level 6 like Ruby's Zlib default (Python's gzip module defaults to a slow 9)
            self._c: Any = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif kind == "bz2":
            self._c = bz2.BZ2Compressor(9)
        elif kind == "xz":
            self._c = lzma.LZMACompressor(format=lzma.FORMAT_XZ)
        elif kind == "zst":
            self._c = _zstandard(file_name).ZstdCompressor(level=3).compressobj()
        else:  # pragma: no cover
            raise UnknownStream(kind)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        out = self._c.compress(bytes(b) if not isinstance(b, bytes) else b)
        if out:
            self._raw.write(out)
        return len(b)

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.write(self._c.flush())
            finally:
                super().close()


class _ZipWriter(io.RawIOBase):
    """One deflated entry, streamed (data descriptor when the target cannot seek)."""

    def __init__(self, raw: BinaryIO, entry: str) -> None:
        super().__init__()
        self._zf = zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=6)
        info = zipfile.ZipInfo(entry, date_time=_zip_now())
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        # zip64 from the start: the size is unknown up front and entries may exceed 2 GiB
        self._entry = self._zf.open(info, "w", force_zip64=True)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return self._entry.write(b)

    def close(self) -> None:
        if not self.closed:
            try:
                self._entry.close()
                self._zf.close()
            finally:
                super().close()


def _zip_now() -> tuple[int, int, int, int, int, int]:
    import time

    t = time.localtime()
    return (max(t.tm_year, 1980), t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _open_write_layer(
    kind: str, raw: BinaryIO, chain: list[str], index: int, name: str | None, zip_entry: str | None
) -> io.RawIOBase:
    if kind in ("gz", "bz2", "xz", "zst"):
        return _CompressWriter(raw, kind, name)
    if kind == "zip":
        return _ZipWriter(raw, zip_entry or zip_entry_name(name))
    if kind == "enc":
        # Ruby compresses inside .enc even when an outer gz already did (.gz.enc twice);
        # we skip the inner gzip when a compressing stream is already to its left.
        compress = not any(_SPECS[k].compressor for k in chain[:index])
        return symmetric.EncryptWriter(raw, compress=compress)
    raise UnsupportedStream(
        f"{_SPECS[kind].description} streams are not supported for writing", file_name=name
    )


def _new_file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


@contextmanager
def open_write(
    target: Source,
    *,
    file_name: str | os.PathLike[str] | None = None,
    streams: Sequence[str] | str | None = None,
    zip_entry: str | None = None,
    transport_params: dict[str, Any] | None = None,
) -> Iterator[BinaryIO]:
    """Yield a binary writable whose bytes go through the chain into ``target``.

    A local file is written to a temporary file beside it and renamed over the target only
    when the block succeeds (parent directories are created); on an exception the temporary
    file is removed and the target is untouched. Remote targets are streamed by smart_open
    (an S3 multipart upload is aborted on error). A caller's file object is flushed, not closed.
    """
    name, dest = _describe_source(target, file_name)
    chain = resolve_streams(streams, name)
    tmp_path = None
    final_path = ""  # set with tmp_path: the local file the temporary one replaces
    with ExitStack() as stack:
        if isinstance(dest, str):
            final_path = os.path.abspath(dest)
            parent = os.path.dirname(final_path)
            os.makedirs(parent, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(
                dir=parent, prefix=f".{os.path.basename(final_path)}.", suffix=".tmp"
            )
            raw: IO[bytes] = os.fdopen(fd, "wb")
        elif isinstance(dest, tuple):
            raw = stack.enter_context(remote.open_uri(dest[1], "wb", transport_params))
        else:
            raw = dest
        layers: list[io.RawIOBase] = []
        top: Any = None
        try:
            f: Any = raw
            for index in range(len(chain) - 1, -1, -1):
                f = _open_write_layer(chain[index], f, chain, index, name, zip_entry)
                layers.append(f)
            top = io.BufferedWriter(f, 1 << 20) if layers else f
            yield top
            if layers:
                top.flush()
                for layer in reversed(layers):  # inner-most (user side) first: trailers flow out
                    layer.close()
            raw.flush()
            if tmp_path is not None:
                os.fsync(raw.fileno())
                raw.close()
                os.chmod(tmp_path, _new_file_mode(final_path))
                os.replace(tmp_path, final_path)
                tmp_path = None
        except BaseException:
            # A failed write must not push trailers into a file we are about to delete.
            for layer in layers:
                if hasattr(layer, "_raw"):
                    layer._raw = _Sink()
            if top is not None and top is not raw:
                _close_quietly(top)
            for layer in reversed(layers):
                _close_quietly(layer)
            if tmp_path is not None:
                _close_quietly(raw)
                try:
                    os.unlink(tmp_path)
                except OSError:
                    pass
            raise


def _close_quietly(f: Any) -> None:
    try:
        f.close()
    except Exception:  # noqa: BLE001 - already failing; the original error is what matters
        pass


class _Sink:
    def write(self, b: Any) -> int:
        return len(b)

    def flush(self) -> None:
        pass
