"""Stream chains: names → streams, reading what the real tools wrote, round trips, atomic writes."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rjbatch.codecs import (
    CorruptInput,
    DecodingError,
    UnknownStream,
    UnsupportedStream,
    ZipEntryNotFound,
    open_read,
    open_write,
    read_lines,
    resolve_streams,
    streams_for,
    write_lines,
    zip_entry_name,
)
from tests.codecs.conftest import OneWay

LINES = ["line 1", "line 2", "line 3"]


# --------------------------------------------------------------------------- choosing streams


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv.gz.enc", ["gz", "enc"]),
        ("data.csv.zip.gpg", ["zip", "gpg"]),
        ("A.CSV.GZ", ["gz"]),
        ("a.gz.csv", []),
        ("my.enc.file.gz", ["gz"]),
        ("a.tar.gz", ["gz"]),
        (".gz", ["gz"]),
        ("a.xlsx.zip", ["zip"]),
        ("x.csv.bz2", ["bz2"]),
        ("x.json.xz", ["xz"]),
        ("x.csv.zst", ["zst"]),
        ("x.csv.gzip", ["gzip"]),
        ("/some/dir.gz/plain.csv", []),
        ("s3://bucket/in/x.csv.gz?versionId=1", ["gz"]),
        ("gz", []),
        ("", []),
        (None, []),
    ],
)
def test_streams_come_from_trailing_extensions_of_the_base_name(name, expected):
    assert streams_for(name) == expected


def test_streams_for_accepts_a_path_object():
    assert streams_for(Path("/tmp/x/out.csv.gz.enc")) == ["gz", "enc"]


def test_explicit_streams_replace_inference_and_an_empty_list_means_raw_bytes():
    assert resolve_streams(["GZIP", "enc"], "whatever.txt") == ["gz", "enc"]
    assert resolve_streams([], "a.csv.gz") == []
    assert resolve_streams("none", "a.csv.gz") == []
    assert resolve_streams("zstd", None) == ["zst"]
    assert resolve_streams(None, "a.csv.gz.enc") == ["gz", "enc"]


def test_an_unknown_stream_name_is_a_clear_error():
    with pytest.raises(UnknownStream, match="unknown stream 'gzz'"):
        resolve_streams(["gzz"], None)


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("out.csv.zip", "out.csv"),
        ("/tmp/x/out.csv.zip", "out.csv"),
        ("OUT.CSV.ZIP", "OUT.CSV"),
        ("out.csv.zip.enc", "out.csv"),
        ("myfile.ze", "myfile.ze"),
        (".zip", "file"),
        (None, "file"),
    ],
)
def test_zip_entry_is_named_after_the_file_without_zip(name, entry):
    assert zip_entry_name(name) == entry


# --------------------------------------------------------------------------- reading real tools' files


@pytest.mark.parametrize("name", ["lines.txt.gz", "lines.txt.bz2", "lines.txt.xz", "lines.txt.zst", "lines.txt.zip"])
def test_files_written_by_the_real_tools_read_back_as_lines(fixtures, name):
    assert list(read_lines(fixtures / name)) == LINES


def test_every_member_of_a_multi_member_gzip_is_read(fixtures):
    # made with `cat a.gz b.gz`; Ruby would silently stop after "member one"
    assert list(read_lines(fixtures / "multi_member.txt.gz")) == ["member one", "member two"]


def test_zero_padding_after_the_last_gzip_member_is_allowed():
    data = gzip.compress(b"x\ny\n") + b"\0" * 1000
    assert list(read_lines(io.BytesIO(data), file_name="p.gz")) == ["x", "y"]


def test_garbage_after_a_gzip_member_is_corrupt_input():
    data = gzip.compress(b"x\ny\n") + b"this is not gzip"
    with pytest.raises(CorruptInput, match=r"p\.gz.*trailing garbage"):
        list(read_lines(io.BytesIO(data), file_name="p.gz"))


def test_a_truncated_gzip_raises_instead_of_ending_quietly(fixtures):
    lines = []
    with pytest.raises(CorruptInput) as info:
        for line in read_lines(fixtures / "truncated.txt.gz"):
            lines.append(line)
    message = str(info.value)
    assert "truncated.txt.gz" in message and "cut short" in message and "byte" in message


def test_a_zero_byte_gzip_is_corrupt_not_empty(tmp_path):
    (tmp_path / "empty.csv.gz").write_bytes(b"")
    with pytest.raises(CorruptInput, match="empty"):
        list(read_lines(tmp_path / "empty.csv.gz"))


def test_a_corrupt_gzip_body_names_the_file(tmp_path):
    data = bytearray(gzip.compress(os.urandom(5000)))
    data[40:60] = b"\xff" * 20
    (tmp_path / "bad.bin.gz").write_bytes(bytes(data))
    with pytest.raises(CorruptInput, match=r"bad\.bin\.gz"):
        with open_read(tmp_path / "bad.bin.gz") as f:
            f.read()


def test_a_corrupt_zip_entry_raises(fixtures):
    with pytest.raises(CorruptInput, match=r"corrupt\.zip!big\.txt"):
        list(read_lines(fixtures / "corrupt.zip"))


def test_a_zip_without_central_directory_is_not_a_zip(fixtures):
    with pytest.raises(CorruptInput, match=r"truncated\.zip: not a valid zip file"):
        list(read_lines(fixtures / "truncated.zip"))


def test_zip_directory_entries_are_skipped(fixtures):
    # the first entry is "folder/": Ruby crashes on it
    assert list(read_lines(fixtures / "folder_first.zip")) == ["a,b", "1,2", "other"]


def test_zip_reads_every_file_or_the_named_entry(fixtures):
    assert list(read_lines(fixtures / "two_entries.zip")) == ["first file", "second file"]
    assert list(read_lines(fixtures / "two_entries.zip", zip_entry="second.txt")) == ["second file"]


def test_a_missing_zip_entry_lists_what_is_there(fixtures):
    with pytest.raises(ZipEntryNotFound, match="no zip entry 'data.csv'.*folder/data.csv"):
        list(read_lines(fixtures / "folder_first.zip", zip_entry="data.csv"))


def test_a_zip_with_only_directories_has_no_entry(tmp_path):
    path = tmp_path / "dirs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/", b"")
    with pytest.raises(ZipEntryNotFound, match="no file entries"):
        list(read_lines(path))


def test_zip_is_read_from_a_stream_that_cannot_seek(fixtures):
    source = OneWay((fixtures / "two_entries.zip").read_bytes())
    assert list(read_lines(source, file_name="two_entries.zip")) == ["first file", "second file"]


def test_pgp_is_recognised_but_not_supported(tmp_path):
    (tmp_path / "x.csv.pgp").write_bytes(b"...")
    with pytest.raises(UnsupportedStream, match="PGP"):
        list(read_lines(tmp_path / "x.csv.pgp"))


def test_zstd_without_the_zstandard_package_says_how_to_install_it(fixtures, monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(UnsupportedStream, match=r"zstandard.*rjbatch\[zstd\]"):
        list(read_lines(fixtures / "lines.txt.zst"))


# --------------------------------------------------------------------------- sources


def test_a_binary_file_object_gets_streams_only_from_file_name(fixtures):
    data = (fixtures / "lines.txt.gz").read_bytes()
    assert list(read_lines(io.BytesIO(data), file_name="lines.txt.gz")) == LINES
    with open_read(io.BytesIO(data)) as f:  # no name, no streams: raw bytes
        assert f.read(2) == b"\x1f\x8b"
    with open_read(io.BytesIO(data), streams=["gz"]) as f:
        assert f.read() == b"line 1\nline 2\nline 3\n"


def test_a_caller_file_object_is_left_open(fixtures):
    f = open(fixtures / "lines.txt.gz", "rb")
    try:
        assert list(read_lines(f, file_name="x.gz")) == LINES
        assert not f.closed
    finally:
        f.close()


def test_a_text_mode_file_is_refused(fixtures):
    with open(fixtures / "lines.txt") as f, pytest.raises(TypeError, match="binary mode"):
        with open_read(f):
            pass


def test_a_file_uri_is_read_and_written_like_a_path(tmp_path):
    uri = (tmp_path / "sub" / "x.txt.gz").as_uri()
    assert write_lines(uri, ["a", "b"]) == 2
    assert gzip.decompress((tmp_path / "sub" / "x.txt.gz").read_bytes()) == b"a\nb\n"
    assert list(read_lines(uri)) == ["a", "b"]


def test_progress_counts_raw_bytes_of_the_file(fixtures):
    path = fixtures / "lines.txt.gz"
    with open_read(path) as f:
        assert f.streams == ["gz"]
        assert f.raw_size == path.stat().st_size
        assert f.read() == b"line 1\nline 2\nline 3\n"
        assert f.raw_bytes_read == path.stat().st_size


@pytest.mark.usefixtures("ciphers")
@pytest.mark.parametrize("name", ["big.bin.gz", "big.bin.enc", "big.bin.gz.enc", "big.bin.zip"])
def test_read_returns_at_most_the_size_asked_for(tmp_path, name):
    path = tmp_path / name
    data = os.urandom(1000) * 3000
    with open_write(path) as f:
        f.write(data)
    with open_read(path) as f:
        sizes = []
        while chunk := f.read(100_000):
            sizes.append(len(chunk))
    assert max(sizes) <= 100_000 and sum(sizes) == len(data)
    with open_read(path) as f:
        buffered = io.BufferedReader(f)
        assert buffered.read(10) == data[:10] and buffered.read() == data[10:]


# --------------------------------------------------------------------------- round trips

ROUND_TRIP_NAMES = [
    "out.txt",
    "out.csv.gz",
    "out.csv.gzip",
    "out.csv.bz2",
    "out.csv.xz",
    "out.csv.zst",
    "out.csv.zip",
    "out.csv.enc",
    "out.csv.gz.enc",
    "out.csv.zip.enc",
    "out.csv.bz2.enc",
    "out.csv.enc.gz",
    "out.csv.xz.zst",
    "out.csv.zst.zip",
]


@pytest.mark.usefixtures("ciphers")
@pytest.mark.parametrize("name", ROUND_TRIP_NAMES)
def test_what_is_written_reads_back_equal(tmp_path, name):
    lines = [f"{i},name {i},\"q\"\"{i}\"" for i in range(5000)] + ["", "last é ✓"]
    target = tmp_path / name
    assert write_lines(target, lines) == len(lines)
    assert list(read_lines(target, embedded_within=None)) == lines


@pytest.mark.usefixtures("ciphers")
@pytest.mark.parametrize("name", ["e.txt", "e.txt.gz", "e.txt.zip", "e.txt.enc", "e.txt.gz.enc", "e.txt.zst"])
def test_an_empty_file_round_trips_to_zero_lines(tmp_path, name):
    assert write_lines(tmp_path / name, []) == 0
    assert list(read_lines(tmp_path / name)) == []


@pytest.mark.usefixtures("ciphers")
def test_streams_override_writes_and_reads_any_name(tmp_path):
    path = tmp_path / "myfile.ze"
    write_lines(path, ["a", "b"], streams=["zip", "enc"])
    assert list(read_lines(path, streams=["zip", "enc"])) == ["a", "b"]
    with pytest.raises(DecodingError):  # without the streams it is encrypted bytes, not text
        list(read_lines(path))


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("x.txt.gz", ["gzip", "-dc"]),
        ("x.txt.bz2", ["bzip2", "-dc"]),
        ("x.txt.xz", ["xz", "-dc"]),
        ("x.txt.zst", ["zstd", "-qdc"]),
        ("x.txt.zip", ["unzip", "-p"]),
    ],
)
def test_the_real_tools_read_what_we_write(tmp_path, name, command):
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    write_lines(tmp_path / name, ["alpha", "beta"])
    out = subprocess.run([*command, str(tmp_path / name)], capture_output=True, check=True)
    assert out.stdout == b"alpha\nbeta\n"


def test_zip_written_through_a_path_names_its_entry_after_the_file(tmp_path):
    write_lines(tmp_path / "report.csv.zip", ["a"])
    with zipfile.ZipFile(tmp_path / "report.csv.zip") as zf:
        assert zf.namelist() == ["report.csv"]
        assert zf.testzip() is None


def test_zip_written_to_a_stream_that_cannot_seek_is_valid():
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)

    pipe = Pipe()
    write_lines(pipe, ["one", "two"], file_name="p.txt.zip")
    with zipfile.ZipFile(io.BytesIO(bytes(pipe.data))) as zf:
        assert zf.read("p.txt") == b"one\ntwo\n"


@pytest.mark.usefixtures("ciphers")
def test_enc_after_a_compressor_is_not_compressed_twice(tmp_path):
    write_lines(tmp_path / "a.csv.gz.enc", ["x"])
    write_lines(tmp_path / "a.csv.enc", ["x"])
    assert (tmp_path / "a.csv.gz.enc").read_bytes()[5] == 0x60  # Ruby would write 0xE0 here
    assert (tmp_path / "a.csv.enc").read_bytes()[5] == 0xE0


# --------------------------------------------------------------------------- atomic writes


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.csv.gz"
    write_lines(target, ["old"])
    before = target.read_bytes()

    def lines():
        yield "new 1"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_lines(target, lines())
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv.gz"]


def test_a_failed_first_write_creates_no_file(tmp_path):
    with pytest.raises(ValueError):
        with open_write(tmp_path / "new.txt.zip") as f:
            f.write(b"partial")
            raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []


def test_writing_creates_parent_directories_and_keeps_permissions(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    write_lines(target, ["x"])
    assert target.read_text() == "x\n"
    os.chmod(target, 0o640)
    write_lines(target, ["y"])
    assert target.read_text() == "y\n"
    assert target.stat().st_mode & 0o777 == 0o640


def test_nothing_is_visible_at_the_target_until_the_write_finishes(tmp_path):
    target = tmp_path / "slow.txt"
    with open_write(target) as f:
        f.write(b"hello\n")
        assert not target.exists()
    assert target.read_bytes() == b"hello\n"
