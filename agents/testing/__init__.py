"""Fakes that users and our tests share, starting with the Elasticsearch stand-in.

`agents.testing.elasticsearch.StandIn` is the stand-in (also `python -m
agents.testing.elasticsearch`); `agents.testing.processes` runs it and logship as real
processes. Nothing is imported here, so a fake costs only its own module's imports.
"""
