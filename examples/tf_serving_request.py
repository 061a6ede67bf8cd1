"""Send the faces of one photo to TensorFlow Serving's REST API (the SavedModel from `emotion-batch export-model`).

    emotion-batch export-model --out export --format savedmodel      # writes export/<name>/1/
    docker run --rm -p 8501:8501 -v "$PWD/export/<name>:/models/<name>" -e MODEL_NAME=<name> tensorflow/serving
    python examples/tf_serving_request.py photo.jpg --model <name>
    python examples/tf_serving_request.py photo.jpg --print-body > body.json   # the JSON only, for curl

The signature ``serving_default`` takes ``pixels``: float32 ``(n, size, size, channels)`` with values 0..255
(the model rescales itself) and returns ``probabilities`` ``(n, 7)`` in the order of ``EMOTIONS``.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

import numpy as np

from emotion_batch.faces import DETECTORS, build_detector
from emotion_batch.imaging import decode_image
from emotion_batch.labels import EMOTIONS
from emotion_batch.preprocess import faces_to_tensors


def request_body(image_path: str, *, size: int = 48, channels: int = 1) -> dict:
    """TF Serving's row format: one instance per face, each a ``size x size x channels`` nested list."""
    decoded = decode_image(Path(image_path).read_bytes(), name=image_path)
    detector = build_detector(DETECTORS[0])  # the batch job's default, framed by its crop contract
    faces = detector.detect(decoded.rgb)
    tensors = faces_to_tensors(decoded.rgb, faces, detector=detector.name, size=size, channels=channels)
    return {"signature_name": "serving_default",
            "instances": [{"pixels": t.astype(np.float32).tolist()} for t in tensors]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--model", default="vgg_gap_small_v1", help="MODEL_NAME given to tensorflow/serving")
    parser.add_argument("--url", default="http://localhost:8501", help="TF Serving's REST address")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--print-body", action="store_true", help="print the request body and send nothing")
    args = parser.parse_args()
    body = request_body(args.image, size=args.size, channels=args.channels)
    if args.print_body:
        print(json.dumps(body))
        return
    request = urllib.request.Request(f"{args.url}/v1/models/{args.model}:predict", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        predictions = json.load(response)["predictions"]
    for i, p in enumerate(predictions):
        print(f"face {i}: {EMOTIONS[int(np.argmax(p))]}  " + "  ".join(f"{k} {v:.3f}" for k, v in zip(EMOTIONS, p)))


if __name__ == "__main__":
    main()
