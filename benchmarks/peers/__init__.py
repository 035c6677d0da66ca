"""Peer side of rjbatch's benchmarks: the same workloads run on the systems users compare
rjbatch with (huey, RQ, Celery, Dask), as importable functions.

* :mod:`benchmarks.peers.jobs_peers` -- job queues (Huey/SQLite, RQ/Redis, Celery/Redis):
  drain rate and pickup latency of no-op jobs. Result type :class:`JobsResult`.
* :mod:`benchmarks.peers.batch_peers` -- batch processing of a large file (plain Python,
  ``multiprocessing.Pool``, Dask bag): lines and CSV workloads. Result type
  :class:`BatchResult`; data generators in :mod:`benchmarks.peers.data`.

Modules import their third-party packages (huey, rq, redis, dask, celery) lazily, inside
the functions that need them, so importing this package needs only ``psutil``.
"""
