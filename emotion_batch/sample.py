"""The sample campaign and benchmark inputs, built at run time from public-domain photos that the
scikit-image package ships: ``astronaut`` (NASA portrait of Eileen Collins) and ``camera`` (the
cameraman), both marked free of copyright restrictions in scikit-image's data README, plus ``coffee``
and ``rocket`` as photos without faces. Nothing is downloaded."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from .portraits import _FACES, head  # noqa: F401  (head: part of this module's face for benchmarks and tests)
from .portraits import source as _source

#: scikit-image photos without faces, used as scenes behind the pasted faces (``background="scene"``)
SCENES = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "brick", "grass", "gravel")
BACKGROUNDS = ("gradient", "scene")


def synthetic_photo(rng: np.random.Generator, width: int, height: int, faces: int, *, profile_share: float = 0.0,
                    boxes: list | None = None, background: str = "gradient") -> Image.Image:
    """A ``width x height`` RGB photo with ``faces`` real faces pasted, varied in size, mirror, light
    and background, placed on a grid so they never overlap.

    ``profile_share`` of the faces are the cameraman seen in profile (a hard case for detectors); the
    rest are the frontal astronaut portrait. When ``boxes`` is a list, the true face box
    ``(x, y, w, h, is_profile)`` of every pasted face is appended to it. ``background`` is ``gradient``
    (a smooth two-colour ramp with light noise, cheap for every detector) or ``scene`` (a random crop of a
    real photo without faces, as cluttered as a real ad photo; see ``SCENES``).
    """
    if background == "gradient":
        top_color = rng.integers(40, 220, 3)
        bottom_color = rng.integers(40, 220, 3)
        ramp = np.linspace(0, 1, height)[:, None, None]
        canvas = (top_color * (1 - ramp) + bottom_color * ramp) * np.ones((1, width, 1))
        canvas += rng.normal(0, 6, canvas.shape)
        photo = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    elif background == "scene":
        scene = _source(SCENES[int(rng.integers(len(SCENES)))])
        photo = ImageOps.fit(scene, (width, height), Image.Resampling.BILINEAR,
                             centering=(float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))))
        if rng.random() < 0.5:
            photo = ImageOps.mirror(photo)
    else:
        raise ValueError(f"background must be one of {list(BACKGROUNDS)}. Received: background={background!r}")
    cols = int(np.ceil(np.sqrt(faces * width / height))) if faces else 1
    rows = int(np.ceil(faces / cols)) if faces else 1
    cell_w, cell_h = width // cols, height // rows
    sources = [("astronaut", head("astronaut")), ("camera", head("camera"))]
    for i in range(faces):
        name, src = sources[1] if rng.random() < profile_share else sources[0]
        side = int(min(cell_w, cell_h) * rng.uniform(0.55, 0.9))
        face = src.resize((side, int(side * src.height / src.width)), Image.Resampling.BILINEAR)
        mirrored = rng.random() < 0.5
        if mirrored:
            face = ImageOps.mirror(face)
        face = ImageEnhance.Brightness(face).enhance(rng.uniform(0.75, 1.25))
        face = ImageEnhance.Contrast(face).enhance(rng.uniform(0.8, 1.2))
        r, c = divmod(i, cols)
        x = c * cell_w + int(rng.integers(0, max(1, cell_w - face.width)))
        y = r * cell_h + int(rng.integers(0, max(1, cell_h - face.height)))
        photo.paste(face.crop((0, 0, min(face.width, width - x), min(face.height, height - y))), (x, y))
        if boxes is not None:
            k = side / src.width
            fx, fy, fw, fh = _FACES[name]
            if face is not None and mirrored:
                fx = src.width - fx - fw
            boxes.append((x + fx * k, y + fy * k, fw * k, fh * k, name == "camera"))
    return photo


def no_face_photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    name = "coffee" if rng.random() < 0.5 else "rocket"
    return ImageOps.fit(_source(name), (width, height))


def jpeg_bytes(image: Image.Image, *, quality: int = 90, orientation: int | None = None) -> bytes:
    """JPEG bytes; with ``orientation``, the pixels are stored rotated and the EXIF tag says how to undo it."""
    out = io.BytesIO()
    if orientation is None:
        image.save(out, "JPEG", quality=quality)
        return out.getvalue()
    undo = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.transpose(undo[orientation]).save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def make_sample_campaigns(dest: str | Path, *, seed: int = 7, videos: bool = False) -> dict[str, int]:
    """Write the sample campaign tree under ``dest`` and return the number of files per ad folder.

    Layout: ``dest/spring_launch/{hero_video_stills, banner_b}/...`` and ``dest/autumn_teaser/social_cut/``,
    with one-face and group photos, an EXIF-rotated photo, a PNG, a photo without a face, a corrupt file
    and a non-image, so a first run shows every outcome. With ``videos``, ``autumn_teaser/social_cut`` also
    gets two short viewer recordings (``emotion_batch.video.synthetic.make_viewer_video``), the second with
    a sidecar saying the ad starts 1 s in (counted among the ad's files; the JSON sidecar is not).
    """
    rng = np.random.default_rng(seed)
    root = Path(dest)
    plan = {
        ("spring_launch", "hero_video_stills"): [(640, 480, 1)] * 10 + [(1280, 720, 4), (1280, 720, 3)],
        ("spring_launch", "banner_b"): [(640, 480, 1)] * 6 + [(960, 640, 2)] * 3,
        ("autumn_teaser", "social_cut"): [(480, 640, 1)] * 5 + [(800, 600, 2)],
    }
    counts: dict[str, int] = {}
    for (campaign, ad), shots in plan.items():
        folder = root / campaign / ad
        folder.mkdir(parents=True, exist_ok=True)
        for i, (w, h, n) in enumerate(shots):
            photo = synthetic_photo(rng, w, h, n, profile_share=0.2)
            if i == 1:
                (folder / f"frame_{i:03d}_rotated.jpg").write_bytes(jpeg_bytes(photo, orientation=6))
            elif i == 2:
                photo.save(folder / f"frame_{i:03d}.png")
            else:
                (folder / f"frame_{i:03d}.jpg").write_bytes(jpeg_bytes(photo))
        no_face_photo(rng, 640, 480).save(folder / "packshot_no_face.jpg", quality=90)
        counts[f"{campaign}/{ad}"] = len(shots) + 1
    broken = root / "spring_launch" / "banner_b"
    (broken / "truncated.jpg").write_bytes(jpeg_bytes(synthetic_photo(rng, 640, 480, 1))[:2000])
    (broken / "notes.txt").write_text("not an image: skipped and counted\n")
    counts["spring_launch/banner_b"] += 1
    if videos:
        from .video.synthetic import make_viewer_video

        folder = root / "autumn_teaser" / "social_cut"
        make_viewer_video(folder / "viewer_01.mp4", seconds=8.0, seed=seed)
        make_viewer_video(folder / "viewer_02.mp4", seconds=9.0, seed=seed + 1)
        (folder / "viewer_02.json").write_text('{"ad_offset_s": 1.0}\n')
        counts["autumn_teaser/social_cut"] += 2
    return counts
