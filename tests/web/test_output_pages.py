"""A batch job's output in Mission Control: browsing it a page at a time, and downloading it."""

from __future__ import annotations

import gzip
import html
import io
import json
import logging
import re

import pytest

from rjbatch import Job
from rjbatch.batch import BatchJob, Result, Results, sliced
from rjbatch.batch.download import DownloadError
from rjbatch.job import WorkContext
from rjbatch.testing import work_all
from rjbatch.web import create_app, escaping
from rjbatch.web.pipe import Pipe
from tests.web.helpers import USERS, client

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class OutUpperJob(BatchJob):
    destroy_on_complete = False
    collect_output = True
    slice_size = 3

    def perform(self, line):
        return line.upper()


class OutEchoJob(BatchJob):
    destroy_on_complete = False
    collect_output = True
    slice_size = 2

    def perform(self, record):
        return record


class OutSplitJob(BatchJob):
    """Every line to ``main`` uppercased; the lines ending in 1 also, as they are, to ``odd``."""

    destroy_on_complete = False
    collect_output = True
    slice_size = 4
    output_categories = ["main", "odd"]

    def perform(self, line):
        if line.endswith("1"):
            return Results([Result(line.upper()), Result(line, "odd")])
        return line.upper()


class OutRowsJob(BatchJob):
    destroy_on_complete = False
    collect_output = True
    output_categories = [{"name": "main", "columns": ["name", "size"]}, "raw"]

    def perform(self, line):
        name, size = line.split(":")
        return Results([Result({"name": name, "size": int(size)}), Result({"line": line}, "raw")])


class OutReportJob(BatchJob):
    destroy_on_complete = False
    output_categories = [{"name": "main", "file_name": "/data/reports/daily.csv.gz"}]

    def perform(self, line):
        return line[::-1]


class OutFailJob(BatchJob):
    destroy_on_complete = False
    collect_output = True
    slice_size = 2

    def perform(self, line):
        if line == "bad":
            raise ValueError("cannot take it")
        return line


class OutSlowJob(BatchJob):
    destroy_on_complete = False
    collect_output = True
    slice_size = 2
    slices_per_claim = 1

    def perform(self, line):
        return line.upper()


class OutNoteJob(Job):
    destroy_on_complete = False

    def perform(self):
        return None


@pytest.fixture
def app():
    return create_app(users=USERS)


@pytest.fixture
def admin(app):
    return client(app, ("ada", "secret"))


@pytest.fixture
def editor(app):
    return client(app, ("ed", "fix"))


def completed(job_class: type[BatchJob], records: list, **values) -> BatchJob:
    job = job_class(**values)
    job.upload(records)
    job.save()
    work_all()
    job.reload()
    assert job.state == "completed"
    return job


def shown_records(page: str) -> list[tuple[int, str]]:
    """(record number, content as shown) of each record row: tags dropped, entities decoded."""
    rows = re.findall(r'<tr class="record[^"]*" id="record-\d+">\s*<td>(\d+)</td>(.*?)</tr>', page, re.DOTALL)
    found = []
    for number, rest in rows:
        cells = re.findall(r'<code class="record[^"]*">(.*?)</code>', rest, re.DOTALL)
        found.append((int(number), " | ".join(html.unescape(re.sub(r"<[^>]+>", "", c)) for c in cells)))
    return found


def test_a_completed_jobs_output_is_shown_in_upload_order_a_page_at_a_time(admin):
    job = completed(OutUpperJob, [f"line {n:02}" for n in range(1, 26)])
    page = admin.get(f"/jobs/{job.id}/output?per=10&page=2")
    assert page.status_code == 200
    assert shown_records(page.text) == [(n, f"LINE {n:02}") for n in range(11, 21)]
    assert "Page 2 of 3" in page.text
    assert 'class="records">25</td>' in page.text  # the category's record count
    last = admin.get(f"/jobs/{job.id}/output?per=10&page=3")
    assert shown_records(last.text) == [(n, f"LINE {n:02}") for n in range(21, 26)]
    beyond = admin.get(f"/jobs/{job.id}/output?per=10&page=99")  # clamped to the last page
    assert shown_records(beyond.text) == shown_records(last.text)
    first = admin.get(f"/jobs/{job.id}/output")
    assert [n for n, _ in shown_records(first.text)] == list(range(1, 26))


def test_a_page_reads_only_the_slices_it_shows(admin, monkeypatch):
    job = completed(OutUpperJob, [f"r{n}" for n in range(1, 301)])  # 100 slices of 3
    store = job._store()
    reads, decodes = [], []
    read = store.read_output_slices
    decode = sliced.slice_codec.decode

    def counted_read(self, *args, **options):
        found = read(*args, **options)
        reads.extend(found)
        return found

    def counted_decode(*args):
        decodes.append(1)
        return decode(*args)

    monkeypatch.setattr(type(store), "read_output_slices", counted_read)
    monkeypatch.setattr(sliced.slice_codec, "decode", counted_decode)

    page = admin.get(f"/jobs/{job.id}/output?per=10&page=1")
    assert [n for n, _ in shown_records(page.text)] == list(range(1, 11))
    assert len(decodes) == 4  # records 1-10 lie in slices 1-4
    assert len(reads) <= 6

    reads.clear()
    decodes.clear()
    far = admin.get(f"/jobs/{job.id}/output?per=10&page=15")
    assert shown_records(far.text) == [(n, f"R{n}") for n in range(141, 151)]
    assert len(decodes) == 4  # slices 47-50: the 46 before were skipped by their counts, not decoded


def test_a_job_with_two_output_categories_lists_both_and_shows_each(admin):
    job = completed(OutSplitJob, [f"l{n}" for n in range(1, 23)])
    page = admin.get(f"/jobs/{job.id}/output")
    counts = dict(re.findall(r'category=(\w+)">\w+</a></td>\s*<td class="records">(\d+)</td>', page.text))
    assert counts == {"main": "22", "odd": "3"}
    assert [text for _, text in shown_records(page.text)] == [f"L{n}" for n in range(1, 23)]
    odd = admin.get(f"/jobs/{job.id}/output?category=odd")
    assert shown_records(odd.text) == [(1, "l1"), (2, "l11"), (3, "l21")]
    data = admin.get(f"/api/jobs/{job.id}/output?category=odd").json()
    assert data["output_categories"] == [{"name": "main", "records": 22, "slices": 6},
                                         {"name": "odd", "records": 3, "slices": 3}]
    assert [r["value"] for r in data["records"]] == ["l1", "l11", "l21"]
    assert data["total"] == 3 and data["contents_visible"] is True


def test_download_as_csv_and_csv_gz_gives_exactly_the_jobs_output(editor, caplog):
    job = completed(OutSplitJob, [f"l{n}" for n in range(1, 23)])
    expected = "".join(f"{line}\n" for line in job.output()).encode()
    caplog.set_level(logging.INFO, logger="rjbatch.web.audit")

    plain_csv = editor.get(f"/jobs/{job.id}/output/download?category=main&format=csv")
    assert plain_csv.status_code == 200
    assert plain_csv.content == expected
    assert plain_csv.headers["content-disposition"].startswith(
        f'attachment; filename="OutSplitJob-{job.id}-main.csv"')
    assert plain_csv.headers["content-type"].startswith("text/csv")

    packed = editor.get(f"/jobs/{job.id}/output/download?category=main&format=csv.gz")
    assert packed.status_code == 200
    assert packed.headers["content-type"] == "application/gzip"
    assert gzip.decompress(packed.content) == expected

    odd = editor.get(f"/jobs/{job.id}/output/download?category=odd&format=txt")
    assert odd.content == b"l1\nl11\nl21\n"
    lines = [r.getMessage() for r in caplog.records if "download_output" in r.getMessage()]
    assert len(lines) == 3
    assert f"user=ed role=editor action=download_output job={job.id}" in lines[0]
    assert "category=main" in lines[0] and "csv" in lines[0]


def test_download_names_the_file_after_the_categorys_configured_file_name(admin):
    job = completed(OutReportJob, ["abc", "xyz"])
    page = admin.get(f"/jobs/{job.id}/output")
    assert "<option value=\"\">daily.csv.gz</option>" in page.text
    default = admin.get(f"/jobs/{job.id}/output/download")
    assert 'filename="daily.csv.gz"' in default.headers["content-disposition"]
    assert gzip.decompress(default.content) == b"cba\nzyx\n"
    as_text = admin.get(f"/jobs/{job.id}/output/download?format=txt")
    assert 'filename="daily.txt"' in as_text.headers["content-disposition"]
    assert as_text.content == b"cba\nzyx\n"


def test_a_large_download_is_streamed_in_chunks_and_complete(admin, monkeypatch):
    monkeypatch.setattr(Pipe, "CHUNK", 1024)  # many chunks through the pipe
    job = completed(OutUpperJob, [f"record number {n}" for n in range(3000)])
    answer = admin.get(f"/jobs/{job.id}/output/download?format=csv.zip")
    import zipfile

    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        [entry] = archive.namelist()
        assert entry == f"OutUpperJob-{job.id}-main.csv"
        assert archive.read(entry).decode().splitlines() == [f"RECORD NUMBER {n}" for n in range(3000)]


def test_unprintable_bytes_and_backslashes_are_shown_escaped_and_round_trip(admin):
    tricky = "nul\x00esc\x1b tab\there back\\slash \\x41 caf\u00e9 zw\u200bsp"
    job = completed(OutEchoJob, [tricky, b"raw \xff\xfe bytes", "plain"])
    page = admin.get(f"/jobs/{job.id}/output")
    assert '<mark class="esc" title="NUL (0x00)">\\x00</mark>' in page.text
    assert '<mark class="esc" title="ESC (0x1b)">\\x1b</mark>' in page.text
    assert '<mark class="esc" title="a backslash">\\\\</mark>' in page.text
    assert 'title="U+200B ZERO WIDTH SPACE">\\xe2\\x80\\x8b</mark>' in page.text
    assert '<mark class="esc" title="0xff: not valid UTF-8">\\xff</mark>' in page.text
    shown = dict(shown_records(page.text))
    assert "\x00" not in shown[1] and "\x1b" not in shown[1]
    assert shown[1] == ("nul\\x00esc\\x1b tab\\x09here back\\\\slash \\\\x41 caf\u00e9 zw\\xe2\\x80\\x8bsp")
    assert escaping.unescape_text(shown[1]) == tricky
    assert escaping.unescape_bytes(shown[2]) == b"raw \xff\xfe bytes"
    assert shown[3] == "plain"
    api = admin.get(f"/api/jobs/{job.id}/output").json()["records"]
    assert api[0]["value"] == tricky
    assert api[1] == {"number": 2, "position": 2, "slice": 1, "value": "raw \\xff\\xfe bytes", "escaped_bytes": True}


def test_escaping_round_trips_every_kind_of_text():
    for value in ["", "a\\b", "\\x00 is not a NUL", "\x7f\x85\u2028", "emoji \U0001f600 and \U000e0001",
                  "\x00" * 3, "ünïcödé"]:
        assert escaping.unescape_text(escaping.escape_text(value)) == value
        assert escaping.escape_text(value).isprintable()
    for data in [b"\xff", b"a\xc3", b"\xc3\xa9\x80\\", bytes(range(256))]:
        assert escaping.unescape_bytes(escaping.escape_text(data)) == data
    record = {"k\x00": ["v\x1b", "\u2028", 1, None, "\\"]}
    shown = "".join(text for text, _ in escaping.json_segments(record))
    assert json.loads(shown) == record
    assert shown.isprintable()


def test_script_inside_a_record_is_escaped(admin):
    job = completed(OutEchoJob, ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>'])
    rows = completed(OutRowsJob, ["<b>bold</b>:1"])
    for path in (f"/jobs/{job.id}/output", f"/jobs/{rows.id}/output", f"/jobs/{rows.id}/output?category=raw"):
        page = admin.get(path)
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img" not in page.text and "<b>bold" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin.get(f"/jobs/{job.id}/output").text


def test_dict_records_are_shown_under_the_categorys_columns_or_as_json(admin):
    job = completed(OutRowsJob, ["apple:3", "pear:5"])
    page = admin.get(f"/jobs/{job.id}/output")
    assert "<th>name</th><th>size</th>" in page.text
    assert shown_records(page.text) == [(1, "apple | 3"), (2, "pear | 5")]
    raw = admin.get(f"/jobs/{job.id}/output?category=raw")
    assert shown_records(raw.text) == [(1, '{"line": "apple:3"}'), (2, '{"line": "pear:5"}')]
    api = admin.get(f"/api/jobs/{job.id}/output").json()
    assert api["columns"] == ["name", "size"]
    assert [r["value"] for r in api["records"]] == [{"name": "apple", "size": 3}, {"name": "pear", "size": 5}]


def test_a_failed_jobs_remaining_input_is_listed_and_its_failing_record_highlighted(admin):
    job = OutFailJob()
    job.upload(["a", "b", "c", "bad", "e"])
    job.save()
    work_all()
    job.reload()
    assert job.state == "failed"
    page = admin.get(f"/jobs/{job.id}/output")
    assert "?kind=input&amp;category=main" in page.text
    assert "failed: 1" in page.text
    assert "partial-note" in page.text  # the output lacks what the failed slice did not finish
    assert shown_records(page.text) == [(1, "a"), (2, "b"), (3, "c"), (4, "e")]  # "bad": its slice failed there
    left = admin.get(f"/jobs/{job.id}/output?kind=input&category=main")
    assert shown_records(left.text) == [(3, "c"), (4, "bad")]
    assert re.search(r'<tr class="record callout-failed failing" id="record-2">\s*<td>4</td>', left.text)
    assert admin.get(f"/jobs/{job.id}/output?kind=input&category=nope").status_code == 404


def test_a_viewer_sees_counts_but_no_contents_and_may_not_download(app):
    job = completed(OutUpperJob, ["secret one", "secret two"])
    for user in (("vic", "look"), ("otto", "ops")):  # view, and operator: the role just below editor
        viewer = client(app, user)
        page = viewer.get(f"/jobs/{job.id}/output")
        assert page.status_code == 200
        assert 'class="records">2</td>' in page.text
        assert "SECRET" not in page.text
        assert "output/download" not in page.text
        assert "shown to editors and admins only" in page.text
        assert viewer.get(f"/jobs/{job.id}/output/download?format=csv").status_code == 403
        data = viewer.get(f"/api/jobs/{job.id}/output").json()
        assert data["contents_visible"] is False and "records" not in data
        assert data["output_categories"] == [{"name": "main", "records": 2, "slices": 1}]
    editor = client(app, ("ed", "fix"))
    assert "SECRET ONE" in editor.get(f"/jobs/{job.id}/output").text
    assert editor.get(f"/jobs/{job.id}/output/download?format=csv").content == b"SECRET ONE\nSECRET TWO\n"


def test_a_non_batch_job_an_unknown_category_or_format_are_refused_clearly(admin):
    note = OutNoteJob.create()
    for path in (f"/jobs/{note.id}/output", f"/jobs/{note.id}/output/download"):
        answer = admin.get(path)
        assert answer.status_code == 404
        assert "not a batch job" in answer.text
    assert admin.get(f"/api/jobs/{note.id}/output").json() == {
        "error": f"Job {note.id} is a OutNoteJob, not a batch job: it has no output"}
    assert admin.get("/jobs/000000000000000000000000/output").status_code == 404
    job = completed(OutUpperJob, ["x"])
    for path in (f"/jobs/{job.id}/output?category=nope", f"/jobs/{job.id}/output/download?category=nope"):
        answer = admin.get(path)
        assert answer.status_code == 404
        assert "has no output category 'nope'" in answer.text
    bad = admin.get(f"/jobs/{job.id}/output/download?format=exe")
    assert bad.status_code == 400
    assert "choose one of txt, csv" in bad.text


def test_a_job_still_processing_is_downloaded_as_far_as_it_got(admin):
    job = OutSlowJob()
    job.upload(["a", "b", "c", "d", "e"])
    job.save()
    job.start("w:1:1")
    job.update(sub_state="processing")
    calls = iter([False, True])
    job.work(WorkContext("w:1:1", should_stop=lambda: next(calls, True)))  # one slice, then stop
    job.reload()
    assert job.state == "running" and job.sub_state == "processing"
    with pytest.raises(DownloadError):
        job.download(io.BytesIO(), file_name="out.csv")  # the library alone still refuses

    page = admin.get(f"/jobs/{job.id}/output")
    assert "slices processed so far" in page.text
    assert shown_records(page.text) == [(1, "A"), (2, "B")]
    answer = admin.get(f"/jobs/{job.id}/output/download?format=csv")
    assert answer.status_code == 200
    assert answer.content == b"A\nB\n"
    assert admin.get(f"/api/jobs/{job.id}/output").json()["complete"] is False


def test_the_job_page_links_to_the_output(admin):
    job = completed(OutUpperJob, ["x"])
    assert f'href="/jobs/{job.id}/output"' in admin.get(f"/jobs/{job.id}").text


def test_an_error_before_the_first_bytes_is_answered_409_and_nothing_is_sent(admin, monkeypatch):
    job = completed(OutUpperJob, ["x"])

    def refuse_download(self, *args, **options):
        raise DownloadError("the <disk> is full")

    monkeypatch.setattr(OutUpperJob, "download", refuse_download)
    answer = admin.get(f"/jobs/{job.id}/output/download?format=csv")
    assert answer.status_code == 409
    assert "content-disposition" not in answer.headers
    assert "Could not download category 'main'" in answer.text and "the <disk> is full" in answer.text
    assert answer.headers["content-type"].startswith("text/plain")


def test_the_download_pipe_stops_its_writer_when_the_client_goes_away_and_passes_errors_on():
    import threading

    wrote = []

    def endless(out):
        while True:
            out.write(b"x" * 1000)
            wrote.append(1)

    pipe = Pipe()
    pipe.CHUNK = 4096
    writer = threading.Thread(target=pipe.run, args=(endless,))
    writer.start()
    assert pipe.take() == b"x" * 5000  # the first chunk: 5 writes
    pipe.cancel()  # what the response does when the client disconnects
    writer.join(timeout=5)
    assert not writer.is_alive()
    assert len(wrote) < 5 * (Pipe.DEPTH + 3)  # bounded by the queue, not endless

    def failing(out):
        out.write(b"y" * 5000)
        raise DownloadError("gone")

    pipe = Pipe()
    pipe.CHUNK = 4096
    writer = threading.Thread(target=pipe.run, args=(failing,))
    writer.start()
    assert pipe.take() == b"y" * 5000
    with pytest.raises(DownloadError, match="gone"):
        pipe.take()
    writer.join(timeout=5)
