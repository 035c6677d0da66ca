"""Remote URIs go through smart_open for raw bytes only; our chain is applied on top."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from rjbatch.codecs import open_read, read_lines, streams_for
from rjbatch.codecs.remote import display_name, is_uri, local_path, uri_file_name


@pytest.fixture
def http_base(fixtures):
    """A local HTTP server (127.0.0.1 only) serving the fixture folder."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(fixtures))
    handler.log_message = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_gzip_file_is_decompressed_by_our_chain(http_base):
    assert list(read_lines(f"{http_base}/lines.txt.gz")) == ["line 1", "line 2", "line 3"]


def test_smart_open_does_not_decompress_on_its_own(http_base):
    with open_read(f"{http_base}/lines.txt.gz", streams=[]) as f:
        assert f.read(2) == b"\x1f\x8b"  # still gzip: only our chain decodes


def test_a_remote_zip_is_spooled_and_read(http_base):
    assert list(read_lines(f"{http_base}/folder_first.zip")) == ["a,b", "1,2", "other"]


def test_uri_names_ignore_query_strings():
    uri = "s3://bucket/dir/in.csv.gz?versionId=3#x"
    assert is_uri(uri) and not is_uri("C:\\data\\in.csv") and not is_uri("/tmp/in.csv")
    assert uri_file_name(uri) == "in.csv.gz"
    assert streams_for(uri) == ["gz"]


def test_messages_do_not_show_credentials_in_uris():
    assert display_name("sftp://user:secret@host/in.csv?token=abc") == "sftp://host/in.csv"


def test_file_uris_map_to_local_paths():
    assert local_path("file:///tmp/a%20b.csv") == "/tmp/a b.csv"
    assert local_path("s3://bucket/a.csv") is None
