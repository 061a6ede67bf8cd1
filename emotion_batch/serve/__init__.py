"""Serving the classifier over HTTP: an upload page and a JSON API (FastAPI, extra ``[api]``)."""

from __future__ import annotations

from .app import create_app, serve, serve_model
from .batcher import MicroBatcher
from .settings import ServeSettings

__all__ = ["MicroBatcher", "ServeSettings", "create_app", "serve", "serve_model"]
