"""The FastAPI app: an upload page, ``POST /v1/predict`` and ``/v1/predict/batch``, ``GET /healthz`` and
``GET /v1/model``.

``create_app`` takes a ready classifier and detector (built once by ``serve_model``, the ``serve`` command's
function, or a tiny one in tests) and keeps no global state. Decoding and detection run in worker threads;
concurrent requests' faces reach the model together through a micro-batcher. Every error is a JSON
``{"error": {"code", "message"}}`` with a 4xx status; an unexpected one is a 500 with no details, logged on
the server.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at definition time,
# and they use names local to ``create_app``.
import asyncio
import logging
import os
import queue
import secrets
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Optional

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..assets import asset_dir
from ..classifier import load_classifier
from ..exceptions import ConfigError, DatabaseError, UploadError
from ..faces import DETECTORS, build_detector
from ..labels import EMOTIONS
from ..store.messages import safe_url
from ..store.session import init_db, make_engine
from .batcher import MicroBatcher
from .inference import ACCEPTED_TYPES, Analysed, analyse_upload, face_results, model_card, safe_filename
from .schemas import NAME_PATTERN, BatchResponse, ErrorResponse, Health, ModelCard, PredictResponse
from .settings import MIB, ServeSettings
from .storage import store_result, upload_path

log = logging.getLogger(__name__)

TEMPLATE = "serve_index.html"
#: The page runs only its own inline script (with a per-response nonce) and shows only local images.
PAGE_CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src blob: data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                     (b"x-frame-options", b"DENY")]


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


_ERRORS = {
    413: {"model": ErrorResponse, "description": "Too large: file, request body or number of files."},
    415: {"model": ErrorResponse, "description": "Not an accepted image type (sniffed from the content)."},
    422: {"model": ErrorResponse, "description": "Missing or invalid field, or an image that cannot be decoded."},
    400: {"model": ErrorResponse, "description": "Storing was asked for but this server stores nothing."},
    503: {"model": ErrorResponse, "description": "The results database cannot be written."},
}


class _Guard:
    """ASGI middleware: security headers on every response, and the request body limit.

    The limit is checked on ``Content-Length`` and again while the body streams in (chunked uploads), before
    the multipart parser spools anything to disk; going over it ends the request with a 413.
    """

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        received = 0

        def too_large(size: str) -> StarletteHTTPException:
            return StarletteHTTPException(413, detail={
                "code": "too_large",
                "message": f"The request body is larger than the limit of {limit / MIB:g} MiB. Received: {size}"})

        async def limited_receive():
            nonlocal received
            if declared.isdigit() and int(declared) > limit:
                raise too_large(f"Content-Length={int(declared):,}")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(f"more than {received:,} bytes")
            return message

        async def secured_send(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, limited_receive, secured_send)


def _warm_up(classifier, detector) -> None:
    """Trace the model and initialise the detector before the first request."""
    classifier.predict(np.zeros((1, classifier.size, classifier.size, classifier.channels), dtype=np.uint8))
    detector.detect(np.full((64, 64, 3), 128, dtype=np.uint8))


def create_app(classifier, detector, *, settings: ServeSettings | None = None) -> FastAPI:
    """Build the app around a ready classifier (``Classifier`` or anything with ``predict``, ``size``,
    ``channels`` and ``model_id``) and a face detector, or a sequence of identical detectors that serve
    requests in parallel threads (a detector is used by one thread at a time).

    Raises:
        ConfigError: a setting cannot be used, or the detectors differ.
        DatabaseError: ``settings.db`` is given but cannot be prepared.
    """
    settings = settings or ServeSettings()
    settings.validate()
    detectors = list(detector) if isinstance(detector, Sequence) else [detector]
    if not detectors or len({d.name for d in detectors}) != 1:
        raise ConfigError(f"detector must be one detector or several of one kind. "
                          f"Received: detectors={[d.name for d in detectors]}")
    detector = detectors[0]
    pool: queue.SimpleQueue = queue.SimpleQueue()
    for d in detectors:
        pool.put(d)
    factory = None
    engine = None
    if settings.db:
        engine = make_engine(settings.db)
        init_db(engine)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
    upstream = [0]  # requests decoding or detecting now: the batcher waits for them only
    batcher = (MicroBatcher(classifier.predict, max_batch=settings.max_batch, wait_ms=settings.batch_wait_ms,
                            more_coming=lambda: upstream[0] > 0) if settings.batching else None)
    card = model_card(classifier, detector.name)
    templates = Environment(loader=FileSystemLoader(str(asset_dir("templates"))),
                            autoescape=select_autoescape(["html"]))
    page_config = {
        "classes": list(EMOTIONS), "model_id": classifier.model_id, "detector": detector.name,
        "max_files": settings.max_files, "max_image_mib": round(settings.max_image_bytes / MIB, 1),
        "accepted": list(ACCEPTED_TYPES), "storing": factory is not None,
    }

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        for d in detectors:
            await asyncio.to_thread(_warm_up, classifier, d)
        if batcher is not None:
            await batcher.start()
        log.info("serving %s with %d %s detector(s)", classifier.model_id, len(detectors), detector.name)
        try:
            yield
        finally:
            if batcher is not None:
                await batcher.stop()

    app = FastAPI(
        title="emotion_batch",
        version=__version__,
        description=("Apparent facial expressions of the faces in uploaded images: boxes, detection scores and "
                     f"the probabilities of {', '.join(EMOTIONS)}. The scores describe what a face looks like "
                     "to a model, not what anyone feels."),
        lifespan=lifespan,
    )
    app.add_middleware(_Guard, max_bytes=settings.max_request_bytes)

    @app.exception_handler(UploadError)
    async def _upload_error(_request: Request, exc: UploadError):
        return _error(exc.http_status, exc.code, str(exc))

    @app.exception_handler(DatabaseError)
    async def _database_error(_request: Request, exc: DatabaseError):
        return _error(503, "database_unavailable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        if isinstance(exc.detail, dict):
            return _error(exc.status_code, exc.detail["code"], exc.detail["message"], exc.headers)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        return _error(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", "The server could not handle this request; the error is in its log.")

    async def probabilities(tensors: np.ndarray) -> np.ndarray:
        if len(tensors) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        if batcher is not None:
            return await batcher.predict(tensors)
        return await asyncio.to_thread(classifier.predict, tensors)

    def store_target(campaign: str | None, ad: str | None) -> tuple[str, str] | None:
        if campaign is None and ad is None:
            return None
        if campaign is None or ad is None:
            raise UploadError("campaign and ad must be given together, to store the result under that ad. "
                              f"Received: campaign={campaign!r}, ad={ad!r}", code="invalid_request")
        if factory is None:
            raise UploadError("This server stores no results (it was started without a database); "
                              "send no campaign or ad.", code="storage_disabled", http_status=400)
        return campaign, ad

    def store(analysed: Analysed, probs: np.ndarray, target: tuple[str, str]) -> dict:
        campaign, ad = target
        try:
            with factory.begin() as session:
                image_id = store_result(session, analysed, probs, campaign=campaign, ad=ad,
                                        model_id=classifier.model_id)
        except SQLAlchemyError as exc:
            log.error("storing %s failed: %s", analysed.filename, exc)
            raise DatabaseError(f"The result could not be stored in {safe_url(settings.db)}; try again later") from exc
        return {"campaign": campaign, "ad": ad, "image_id": image_id, "path": upload_path(analysed)}

    async def read_upload(upload: UploadFile) -> tuple[str, bytes]:
        name = safe_filename(upload.filename)
        return name, await upload.read(settings.max_image_bytes + 1)

    slots: list = [None, None]  # (event loop, semaphore): one semaphore per loop, as asyncio primitives are

    async def analyse_async(name: str, data: bytes) -> Analysed:
        """Decode and detect in a worker thread once a detector is free; waiting requests go first come,
        first served (an asyncio semaphore is fair; threads blocked on the pool would not be)."""
        loop = asyncio.get_running_loop()
        if slots[0] is not loop:
            slots[:] = [loop, asyncio.Semaphore(len(detectors))]
        upstream[0] += 1
        try:
            async with slots[1]:
                return await run_in_threadpool(analyse, name, data)
        finally:
            upstream[0] -= 1

    def analyse(name: str, data: bytes) -> Analysed:
        free = pool.get()  # never blocks for long: the semaphore admits at most one thread per detector
        try:
            return analyse_upload(data, filename=name, detector=free, size=classifier.size,
                                  channels=classifier.channels, settings=settings)
        finally:
            pool.put(free)

    def image_result(analysed: Analysed, probs: np.ndarray) -> dict:
        return {"filename": analysed.filename, "status": "ok" if analysed.faces else "no_face",
                "media_type": analysed.media_type, "width": analysed.width, "height": analysed.height,
                "faces": face_results(analysed.faces, probs)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = templates.get_template(TEMPLATE).render(config=page_config, nonce=nonce, version=__version__)
        return HTMLResponse(html, headers={"content-security-policy": PAGE_CSP.format(nonce=nonce),
                                           "cache-control": "no-store"})

    @app.get("/healthz", response_model=Health, summary="Liveness and readiness: the model is loaded")
    async def healthz() -> dict:
        stats = batcher.stats.as_dict() if batcher is not None else {}
        return {"status": "ok", "model_id": classifier.model_id, "detector": detector.name,
                "batching": {"enabled": batcher is not None, **stats}}

    @app.get("/v1/model", response_model=ModelCard, summary="The model card: id, classes, input, test metrics")
    async def model() -> dict:
        return card

    name_field = {"min_length": 1, "max_length": 255, "pattern": NAME_PATTERN}

    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS,
              summary="Faces and their apparent-expression probabilities in one image")
    async def predict(
        file: Annotated[UploadFile, File(description=f"One image ({', '.join(ACCEPTED_TYPES)}).")],
        campaign: Annotated[Optional[str], Form(description="Store the result under this campaign (with ad).",
                                                **name_field)] = None,
        ad: Annotated[Optional[str], Form(description="Store the result under this ad (with campaign).",
                                          **name_field)] = None,
    ) -> dict:
        target = store_target(campaign, ad)
        name, data = await read_upload(file)
        analysed = await analyse_async(name, data)
        probs = await probabilities(analysed.tensors)
        result = image_result(analysed, probs)
        if target is not None:
            result["stored"] = await run_in_threadpool(store, analysed, probs, target)
        return {**result, "model_id": classifier.model_id, "detector": detector.name}

    @app.post("/v1/predict/batch", response_model=BatchResponse, responses=_ERRORS,
              summary="Several images in one request; a file that cannot be used is reported, not fatal")
    async def predict_batch(
        files: Annotated[list[UploadFile], File(description=f"Up to {settings.max_files} images.",
                                                json_schema_extra={"minItems": 1, "maxItems": settings.max_files})],
        campaign: Annotated[Optional[str], Form(description="Store the results under this campaign (with ad).",
                                                **name_field)] = None,
        ad: Annotated[Optional[str], Form(description="Store the results under this ad (with campaign).",
                                          **name_field)] = None,
    ) -> dict:
        target = store_target(campaign, ad)
        if len(files) > settings.max_files:
            raise UploadError(f"Too many files in one request; the limit is {settings.max_files}. "
                              f"Received: files={len(files)}", code="too_many_files", http_status=413)
        uploads = [await read_upload(f) for f in files]

        async def one(name: str, data: bytes) -> Analysed | dict:
            try:
                return await analyse_async(name, data)
            except UploadError as exc:
                return {"filename": name, "status": "rejected", "error": {"code": exc.code, "message": str(exc)}}

        analysed = await asyncio.gather(*(one(name, data) for name, data in uploads))
        good = [a for a in analysed if isinstance(a, Analysed)]
        probs = await probabilities(np.concatenate([a.tensors for a in good]) if good else np.zeros((0,)))
        images, start = [], 0
        for item in analysed:
            if not isinstance(item, Analysed):
                images.append(item)
                continue
            p = probs[start : start + len(item.faces)]
            start += len(item.faces)
            result = image_result(item, p)
            if target is not None:
                result["stored"] = await run_in_threadpool(store, item, p, target)
            images.append(result)
        return {"model_id": classifier.model_id, "detector": detector.name, "images": images}

    app.state.settings = settings
    app.state.batcher = batcher
    app.state.engine = engine
    return app


def serve(classifier, detector, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info", limit_concurrency: int | None = 256) -> None:
    """Run the app under uvicorn (one process: the model is loaded once) until interrupted; ``detector`` is
    one detector or several of one kind (see ``create_app``)."""
    import uvicorn

    app = create_app(classifier, detector, settings=settings)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, limit_concurrency=limit_concurrency,
                    timeout_keep_alive=5, server_header=False)
    finally:
        if app.state.engine is not None:
            app.state.engine.dispose()


def serve_model(settings: ServeSettings, *, model: str | None = None, sha256: str | None = None,
                backend: str = "auto", detector: str = DETECTORS[0], min_score: float | None = None,
                min_face: float | None = None, detectors: int | None = None, host: str = "127.0.0.1",
                port: int = 8000, log_level: str = "info", announce: Callable[[str], None] = log.info) -> None:
    """Check ``settings``, load the model once (``classifier.load_classifier``, batches of ``max_batch``) and
    ``detectors`` detectors of one kind (default: one per core), tell ``announce`` what is served where, and
    ``serve`` them until interrupted."""
    settings.validate()
    classifier = load_classifier(model, sha256=sha256, batch_size=settings.max_batch, backend=backend)
    built = [build_detector(detector, min_score=min_score, min_face=min_face)
             for _ in range(detectors or os.cpu_count() or 1)]
    announce(f"serving {classifier.model_id} ({classifier.device}, {len(built)} x {detector} detector) "
             f"on http://{host}:{port}/")
    serve(classifier, built, settings, host=host, port=port, log_level=log_level)
