"""Revisions, oldest first: 0001 baseline (the schema before migrations), 0002 analyst views and indexes."""
