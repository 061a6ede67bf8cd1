"""The API's request limits and response bodies, as pydantic models (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field, create_model

from ..labels import EMOTIONS

Emotion = Literal[EMOTIONS]  # type: ignore[valid-type]

#: Campaign and ad names: what a folder name can be in the batch job (no slashes, no control characters).
NAME_PATTERN = r"^[^\x00-\x1f\x7f/\\]+$"


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. too_large, unsupported_media_type, unreadable_image.")
    message: str = Field(description="What was wrong, naming the file and the limit.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Box(BaseModel):
    """A face box in pixels of the original image, after EXIF orientation."""

    x: float
    y: float
    w: float
    h: float


Probabilities = create_model(
    "Probabilities", __doc__="The seven class probabilities (they sum to 1).",
    **{name: (float, Field(ge=0.0, le=1.0)) for name in EMOTIONS},
)


class FaceResult(BaseModel):
    index: int = Field(description="Faces are ordered left to right, then top to bottom.")
    box: Box
    detection_score: float = Field(ge=0.0, le=1.0)
    probabilities: Probabilities  # type: ignore[valid-type]
    top_emotion: Emotion


class Stored(BaseModel):
    campaign: str
    ad: str
    image_id: int
    path: str


class ImageResult(BaseModel):
    filename: str
    status: Literal["ok", "no_face", "rejected"] = Field(
        description="ok: faces found; no_face: none found; rejected: the file could not be used (see error).")
    media_type: Optional[str] = Field(default=None, description="Sniffed from the content, not the name.")
    width: Optional[int] = None
    height: Optional[int] = None
    faces: list[FaceResult] = Field(default_factory=list)
    error: Optional[ErrorBody] = None
    stored: Optional[Stored] = None


class PredictResponse(ImageResult):
    model_id: str
    detector: str


class BatchResponse(BaseModel):
    model_id: str
    detector: str
    images: list[ImageResult]


class Health(BaseModel):
    status: Literal["ok"]
    model_id: str
    detector: str
    batching: dict


class ModelCard(BaseModel):
    model_id: str
    name: str
    classes: list[str]
    input: dict
    device: str
    detector: str
    bundled: bool
    test_accuracy: Optional[float] = None
    test_macro_f1: Optional[float] = None
    test_labels: Optional[str] = Field(default=None, description="What the test figures were measured against: "
                                       "original (FER2013's labels) or ferplus-majority (the FER+ annotators' majority).")
    per_class: Optional[dict] = None
    flip_gate: Optional[float] = Field(default=None, description="Faces whose top probability is below this are "
                                       "classified again mirrored and the two answers averaged (the model's flip "
                                       "gate); null: one pass, or flip averaging built into the file.")
    card: Optional[str] = Field(default=None, description="The model card (Markdown), for a bundled model.")
    note: str
