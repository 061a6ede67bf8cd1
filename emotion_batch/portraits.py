"""The public-domain portraits that scikit-image ships (nothing is downloaded): ``astronaut`` (NASA portrait of
Eileen Collins, frontal) and ``camera`` (the cameraman, in profile), with their head and face regions, for the
sample campaign, the sample viewer videos, tests and benchmarks."""

from __future__ import annotations

import numpy as np
from PIL import Image

#: head regions (left, top, right, bottom) in the source photos
_HEADS = {"astronaut": (120, 20, 340, 270), "camera": (160, 80, 290, 230)}
#: the face (x, y, w, h) inside each head region, for ground truth in benchmarks
_FACES = {"astronaut": (54, 50, 105, 110), "camera": (24, 40, 84, 84)}


def source(name: str) -> Image.Image:
    """One of scikit-image's photos by name, as RGB."""
    import skimage.data

    array = getattr(skimage.data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return Image.fromarray(array)


def head(name: str = "astronaut") -> Image.Image:
    """A head-and-shoulders crop of one of the bundled public-domain photos."""
    return source(name).crop(_HEADS[name])
