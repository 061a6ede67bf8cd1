"""Classify the faces in one photo with a TFLite export, through the LiteRT interpreter (no TensorFlow).

    emotion-batch export-model --out export --format tflite          # writes export/<name>.tflite
    python examples/litert_predict.py export/<name>.tflite photo.jpg

Faces are found and cropped with emotion_batch's own detector and preprocessing (the one function the
batch job and training use), so the numbers match `emotion-batch run` and the API. Needs `ai-edge-litert`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from emotion_batch.faces import DETECTORS, build_detector
from emotion_batch.imaging import decode_image
from emotion_batch.labels import EMOTIONS
from emotion_batch.preprocess import faces_to_tensors


def main(model_path: str, image_path: str) -> list[dict]:
    interpreter = Interpreter(model_path=model_path, num_threads=2)
    pixels = interpreter.get_input_details()[0]  # float32 (n, size, size, channels), values 0..255
    _, size, _, channels = pixels["shape"]
    decoded = decode_image(Path(image_path).read_bytes(), name=image_path)
    detector = build_detector(DETECTORS[0])  # the batch job's default, framed by its crop contract
    faces = detector.detect(decoded.rgb)
    if not faces:
        return []
    batch = faces_to_tensors(decoded.rgb, faces, detector=detector.name, size=int(size), channels=int(channels))
    interpreter.resize_tensor_input(pixels["index"], list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(pixels["index"], batch.astype(np.float32))
    interpreter.invoke()
    probs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return [{"box": [round(v * decoded.scale, 1) for v in f.box],
             "top_emotion": EMOTIONS[int(p.argmax())],
             "probabilities": {name: round(float(v), 5) for name, v in zip(EMOTIONS, p)}}
            for f, p in zip(faces, probs)]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python examples/litert_predict.py MODEL.tflite IMAGE")
    print(json.dumps(main(sys.argv[1], sys.argv[2]), indent=2))
