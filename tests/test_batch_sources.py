"""Batch uploads from databases and URIs, and encrypted slices."""

from __future__ import annotations

import os
import sqlite3

import pytest

import rjbatch
from rjbatch.batch import BatchJob
from rjbatch.testing import work_all


class CollectJob(BatchJob):
    collect_output = True
    destroy_on_complete = False
    slice_size = 4

    def perform(self, record):
        return record


@pytest.fixture
def people(tmp_path):
    connection = sqlite3.connect(tmp_path / "people.db")
    connection.execute("CREATE TABLE people (id INTEGER, name TEXT)")
    connection.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"n{i}") for i in range(1, 11)])
    connection.commit()
    yield connection
    connection.close()


def test_upload_query_from_a_dbapi_cursor_one_column_gives_bare_values(people):
    job = CollectJob()
    cursor = people.execute("SELECT id FROM people ORDER BY id")
    assert job.upload_query(cursor) == 10
    job.save()
    work_all()
    assert list(job.reload().output()) == list(range(1, 11))


def test_upload_query_from_sql_text_and_a_connection_several_columns_give_lists(people):
    job = CollectJob()
    assert job.upload_query("SELECT id, name FROM people WHERE id <= ? ORDER BY id", people, params=(3,)) == 3
    job.save()
    work_all()
    assert list(job.reload().output()) == [[1, "n1"], [2, "n2"], [3, "n3"]]


def test_upload_query_from_an_sqlalchemy_selectable(tmp_path, people):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'people.db'}")
    table = sqlalchemy.Table("people", sqlalchemy.MetaData(), autoload_with=engine)
    job = CollectJob()
    with engine.connect() as connection:
        query = sqlalchemy.select(table.c.name).where(table.c.id > 8).order_by(table.c.id)
        assert job.upload_query(query, connection) == 2
    job.save()
    work_all()
    assert list(job.reload().output()) == ["n9", "n10"]


def test_upload_from_a_pymongo_collection_with_filter_and_projection():
    mongomock = pytest.importorskip("mongomock")
    collection = mongomock.MongoClient().db.people
    collection.insert_many([{"zip": f"0{i}", "name": f"n{i}", "age": i} for i in range(6)])
    job = CollectJob()
    assert job.upload_mongo_query(collection, filter={"age": {"$gte": 3}}, projection=["zip"]) == 3
    pair = CollectJob()
    assert pair.upload_mongo_query(collection, filter={"age": 0}, projection=["zip", "name"]) == 1
    for each in (job, pair):
        each.save()
    work_all()
    assert sorted(job.reload().output()) == ["03", "04", "05"]
    assert list(pair.reload().output()) == [["00", "n0"]]


def test_upload_from_a_file_uri_and_a_binary_file_object(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("a\nb\nc\n")
    job = CollectJob()
    assert job.upload(f"file://{path}") == 3
    with open(path, "rb") as handle:
        assert job.upload(handle) == 3
    job.save()
    work_all()
    assert list(job.reload().output()) == ["a", "b", "c", "a", "b", "c"]


def test_encrypted_slices_hold_no_plain_text_and_process_normally():
    rjbatch.configure(ciphers=[rjbatch.Cipher(key=os.urandom(32), iv=os.urandom(16), version=3)])

    class Secret(CollectJob):
        input_categories = [{"name": "main", "serializer": "encrypt", "slice_size": 2}]
        output_categories = [{"name": "main", "serializer": "encrypt"}]

    job = Secret()
    job.upload(["social security 123", "card 4111"])
    job.save()
    [piece] = list(job.input.slices())
    assert b"4111" not in piece["data"] and piece["serializer"] == "encrypt"
    work_all()
    assert list(job.reload().output()) == ["social security 123", "card 4111"]
    stored = job._store().read_output_slices(job.id, "main")
    assert all(b"4111" not in s["data"] for s in stored)


def test_bzip2_output_category_downloads_as_one_bzip2_file(tmp_path):
    import bz2

    class Compressed(CollectJob):
        output_categories = [{"name": "main", "serializer": "bzip2"}]

    job = Compressed()
    job.upload([f"line{i}" for i in range(1, 6)])
    job.save()
    work_all()
    target = tmp_path / "out.txt.bz2"
    assert job.reload().download(target) == 5
    assert bz2.decompress(target.read_bytes()) == b"line1\nline2\nline3\nline4\nline5\n"
