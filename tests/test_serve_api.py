"""The HTTP API with FastAPI's TestClient: every endpoint, every error, parity with the batch job, storage."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402

from emotion_batch.faces.base import iou_matrix  # noqa: E402
from emotion_batch.imaging import decode_image  # noqa: E402
from emotion_batch.labels import EMOTIONS  # noqa: E402
from emotion_batch.preprocess import faces_to_tensors  # noqa: E402
from emotion_batch.sample import jpeg_bytes, synthetic_photo  # noqa: E402
from emotion_batch.serve import ServeSettings, create_app  # noqa: E402

from .serve_helpers import group_photo, packshot, png_bytes  # noqa: E402


@pytest.fixture(scope="module")
def client(tiny_classifier, blazeface):
    app = create_app(tiny_classifier, blazeface, settings=ServeSettings(max_image_bytes=2_000_000,
                                                                        max_request_bytes=3_000_000, max_files=4))
    with TestClient(app) as c:
        yield c


def _jpeg(name: str, data: bytes, media_type: str = "image/jpeg"):
    return {"file": (name, data, media_type)}


def _assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["error"]


def test_predict_finds_every_face_and_matches_the_batch_job(client, tiny_classifier, blazeface):
    data, truth = group_photo(seed=1, faces=2)
    response = client.post("/v1/predict", files=_jpeg("group.jpg", data))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["filename"] == "group.jpg" and body["media_type"] == "image/jpeg"
    assert (body["width"], body["height"]) == (640, 480)
    assert body["model_id"] == tiny_classifier.model_id and body["detector"] == "blazeface"
    assert body["stored"] is None
    faces = body["faces"]
    assert [f["index"] for f in faces] == [0, 1]
    boxes = np.array([[f["box"][k] for k in "xywh"] for f in faces])
    true = np.array([t[:4] for t in truth])
    assert (iou_matrix(boxes, true).max(axis=1) > 0.3).all()
    # the same numbers as the batch job's own functions give for this file
    decoded = decode_image(data, name="group.jpg")
    found = blazeface.detect(decoded.rgb)
    tensors = faces_to_tensors(decoded.rgb, found, detector=blazeface.name, size=tiny_classifier.size,
                               channels=tiny_classifier.channels)
    expected = tiny_classifier.predict(tensors)
    for face, p in zip(faces, expected):
        got = np.array([face["probabilities"][name] for name in EMOTIONS])
        np.testing.assert_allclose(got, p, atol=1e-4)
        assert abs(got.sum() - 1.0) < 1e-3
        assert face["top_emotion"] == EMOTIONS[int(np.argmax(p))]
        assert 0.5 <= face["detection_score"] <= 1.0


def test_exif_rotated_photo_gets_boxes_in_the_oriented_image(client):
    photo = synthetic_photo(np.random.default_rng(4), 640, 480, 1)
    body = client.post("/v1/predict", files=_jpeg("turned.jpg", jpeg_bytes(photo, orientation=6))).json()
    assert (body["width"], body["height"]) == (640, 480)  # stored turned 480x640, shown upright
    assert len(body["faces"]) == 1
    box = body["faces"][0]["box"]
    assert box["x"] + box["w"] <= 640.5 and box["y"] + box["h"] <= 480.5


def test_no_face_is_a_result_not_an_error(client):
    body = client.post("/v1/predict", files=_jpeg("packshot.jpg", packshot())).json()
    assert body["status"] == "no_face" and body["faces"] == []


def test_content_is_sniffed_not_the_name_or_the_declared_type(client):
    photo = synthetic_photo(np.random.default_rng(2), 320, 240, 1)
    ok = client.post("/v1/predict", files={"file": ("notes.txt", png_bytes(photo), "text/plain")})
    assert ok.status_code == 200 and ok.json()["media_type"] == "image/png"
    error = _assert_error(client.post("/v1/predict", files=_jpeg("photo.jpg", b"this is text, not a JPEG\n" * 4)),
                          415, "unsupported_media_type")
    assert "photo.jpg" in error["message"] and "image/jpeg" in error["message"]
    # formats Pillow could open but the service does not take (an EPS file would start Ghostscript)
    _assert_error(client.post("/v1/predict", files=_jpeg("x.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n" + b"0" * 64)),
                  415, "unsupported_media_type")


def test_broken_and_empty_images_are_422(client):
    data, _ = group_photo(seed=3, faces=1)
    error = _assert_error(client.post("/v1/predict", files=_jpeg("cut.jpg", data[: len(data) // 3])), 422,
                          "unreadable_image")
    assert "cut.jpg" in error["message"]
    _assert_error(client.post("/v1/predict", files=_jpeg("empty.jpg", b"")), 422, "unreadable_image")


def test_decompression_bomb_is_refused_before_decoding(client):
    bomb = png_bytes(Image.new("1", (12_000, 6_000)))  # 72 megapixels in a few kilobytes
    assert len(bomb) < 200_000
    error = _assert_error(client.post("/v1/predict", files={"file": ("bomb.png", bomb, "image/png")}), 422,
                          "unsupported_image")
    assert "50,000,000" in error["message"]


def test_upload_size_limits(client):
    big = b"\xff\xd8\xff" + b"\0" * 2_100_000  # over the 2 MB file limit, under the 3 MB request limit
    error = _assert_error(client.post("/v1/predict", files=_jpeg("big.jpg", big)), 413, "too_large")
    assert "big.jpg" in error["message"]
    huge = b"\xff\xd8\xff" + b"\0" * 3_200_000  # over the request limit: refused on Content-Length
    _assert_error(client.post("/v1/predict", files=_jpeg("huge.jpg", huge)), 413, "too_large")

    def chunks():  # no Content-Length: refused while the body streams in
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.jpg\"\r\n\r\n"
        for _ in range(40):
            yield b"\0" * 100_000

    streamed = client.post("/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    _assert_error(streamed, 413, "too_large")


def test_missing_and_malformed_fields_are_422(client):
    error = _assert_error(client.post("/v1/predict"), 422, "invalid_request")
    assert "file" in error["message"]
    _assert_error(client.post("/v1/predict", data={"file": "not a file"}), 422, "invalid_request")
    _assert_error(client.post("/v1/predict", content=b"{}", headers={"content-type": "application/json"}), 422,
                  "invalid_request")
    data, _ = group_photo(seed=1, faces=1)
    _assert_error(client.post("/v1/predict", files=_jpeg("a.jpg", data), data={"campaign": "c"}), 422,
                  "invalid_request")
    _assert_error(client.post("/v1/predict", files=_jpeg("a.jpg", data), data={"campaign": "a/b", "ad": "x"}), 422,
                  "invalid_request")


def test_storing_without_a_database_is_refused(client):
    data, _ = group_photo(seed=1, faces=1)
    error = _assert_error(client.post("/v1/predict", files=_jpeg("a.jpg", data), data={"campaign": "c", "ad": "a"}),
                          400, "storage_disabled")
    assert "database" in error["message"]


def test_batch_reports_each_file_and_matches_single_requests(client):
    group, _ = group_photo(seed=5, faces=3, size=(960, 540))
    files = [("files", ("group.jpg", group, "image/jpeg")), ("files", ("bad.jpg", b"GIF89a-but-broken", "image/jpeg")),
             ("files", ("packshot.jpg", packshot(), "image/jpeg"))]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200, response.text
    images = response.json()["images"]
    assert [(i["filename"], i["status"]) for i in images] == [("group.jpg", "ok"), ("bad.jpg", "rejected"),
                                                              ("packshot.jpg", "no_face")]
    assert images[1]["error"]["code"] == "unreadable_image" and images[1]["faces"] == []
    single = client.post("/v1/predict", files=_jpeg("group.jpg", group)).json()
    assert len(images[0]["faces"]) == len(single["faces"]) == 3
    for a, b in zip(images[0]["faces"], single["faces"]):
        assert a["box"] == b["box"]
        np.testing.assert_allclose([a["probabilities"][k] for k in EMOTIONS],
                                   [b["probabilities"][k] for k in EMOTIONS], atol=1e-4)


def test_batch_limits(client):
    data, _ = group_photo(seed=1, faces=1)
    error = _assert_error(client.post("/v1/predict/batch", files=[("files", (f"{i}.jpg", data, "image/jpeg"))
                                                                  for i in range(5)]), 413, "too_many_files")
    assert "4" in error["message"]
    _assert_error(client.post("/v1/predict/batch"), 422, "invalid_request")


def test_health_model_card_docs_and_unknown_routes(client, tiny_classifier):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model_id"] == tiny_classifier.model_id
    assert health["batching"]["enabled"] is True
    card = client.get("/v1/model").json()
    assert card["model_id"] == tiny_classifier.model_id and card["classes"] == list(EMOTIONS)
    assert card["input"] == {"size": 48, "channels": 1} and card["bundled"] is False
    assert "not what anyone feels" in card["note"]
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/batch", "/healthz", "/v1/model"} <= set(schema["paths"])
    assert "413" in schema["paths"]["/v1/predict"]["post"]["responses"]
    assert client.get("/docs").status_code == 200
    _assert_error(client.get("/nope"), 404, "not_found")
    _assert_error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_bundled_model_card_carries_the_manifest_metrics(blazeface):
    from emotion_batch.classifier import Classifier, bundled_models

    clf = Classifier.load(None, batch_size=8)
    app = create_app(clf, blazeface)
    with TestClient(app) as c:
        card = c.get("/v1/model").json()
    entry = bundled_models()["models"][bundled_models()["default"]]
    assert card["bundled"] is True and card["test_accuracy"] == entry["test_accuracy"]
    assert card["test_labels"] == entry.get("labels", "original")  # what those figures were measured against
    assert card["card"] and len(card["card"]) > 20


def test_upload_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "apparent expressions, not feelings" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must load nothing from other sites"
    assert "fetch(\"v1/predict/batch\"" in html
    nonce = re.search(r'<script nonce="([^"]+)"', html).group(1)
    csp = page.headers["content-security-policy"]
    assert f"'nonce-{nonce}'" in csp and "default-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


class _BrokenDetector:
    name = "broken"

    def detect(self, rgb):
        if rgb.shape[0] > 64:  # the start-up warm-up (64x64) passes; real images fail
            raise RuntimeError("secret internal detail /srv/app/weights")
        return []


def test_unexpected_errors_are_500_without_details(tiny_classifier):
    app = create_app(tiny_classifier, _BrokenDetector())
    with TestClient(app, raise_server_exceptions=False) as c:
        data, _ = group_photo(seed=1, faces=1)
        response = c.post("/v1/predict", files=_jpeg("a.jpg", data))
    _assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "RuntimeError" not in response.text


def test_results_are_stored_under_campaign_and_ad(db_url, tiny_classifier, blazeface):
    """On both engines (``db_url`` from tests/db_engines.py): the rows the batch job's views and reports read."""
    from sqlalchemy import text

    from emotion_batch.store.session import make_engine

    app = create_app(tiny_classifier, blazeface, settings=ServeSettings(db=db_url))
    data, _ = group_photo(seed=6, faces=2)
    form = {"campaign": "spring", "ad": "banner"}
    with TestClient(app) as c:
        assert 'id="campaign"' in c.get("/").text
        first = c.post("/v1/predict", files=_jpeg("hero.jpg", data), data=form).json()
        again = c.post("/v1/predict", files=_jpeg("hero.jpg", data), data=form).json()
        batch = c.post("/v1/predict/batch", files=[("files", ("shelf.jpg", packshot(), "image/jpeg"))], data=form).json()
    app.state.engine.dispose()
    stored = first["stored"]
    assert stored["campaign"] == "spring" and stored["ad"] == "banner" and stored["path"].startswith("api/")
    assert again["stored"]["path"] == stored["path"]
    assert batch["images"][0]["stored"]["path"].endswith("/shelf.jpg")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT image_path, status, faces FROM image_results "
                                     "WHERE campaign = 'spring' AND ad = 'banner'")).all()
            faces = conn.execute(text(
                "SELECT top_emotion, p_angry + p_disgust + p_fear + p_happy + p_neutral + p_sad + p_surprise, model_id "
                "FROM face_results WHERE image_path = :p"), {"p": stored["path"]}).all()
            run_ids = conn.execute(text("SELECT DISTINCT run_id FROM images")).all()
    finally:
        engine.dispose()
    # the same file sent twice is one row, not two
    assert sorted((r[1], r[2]) for r in rows) == [("no_face", 0), ("ok", 2)]
    assert len(faces) == 2 and all(abs(s - 1) < 1e-5 and m == tiny_classifier.model_id for _, s, m in faces)
    assert sorted(f["top_emotion"] for f in first["faces"]) == sorted(t for t, _, _ in faces)
    assert run_ids == [(None,)]


def test_concurrent_requests_share_model_calls(tiny_classifier, blazeface):
    import httpx

    app = create_app(tiny_classifier, blazeface, settings=ServeSettings(batch_wait_ms=200))
    data, _ = group_photo(seed=1, faces=1)

    async def main() -> tuple[list[int], dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            responses = await asyncio.gather(*(c.post("/v1/predict", files=_jpeg(f"{i}.jpg", data)) for i in range(6)))
            health = (await c.get("/healthz")).json()
        await app.state.batcher.stop()
        return [r.status_code for r in responses], health

    codes, health = asyncio.run(main())
    assert codes == [200] * 6
    stats = health["batching"]
    assert stats["requests"] == 6 and stats["faces"] == 6
    assert stats["calls"] < 6 and stats["largest_batch"] >= 2
