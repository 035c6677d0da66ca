"""The worker runtime: picking work, the worker loop, and the supervising server."""
