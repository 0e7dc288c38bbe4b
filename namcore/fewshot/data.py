"""Few-shot data made on the spot: a procedural stroke-image generator and scikit-learn's digits.

Nothing is downloaded. :func:`synthetic` draws one stroke prototype per class (two to
four line segments on a small canvas) and renders every sample of the class from it
with its own distortions: a small rotation, scaling and shift of the whole figure,
jittered stroke ends, stroke width and brightness, and pixel noise. :func:`digits`
splits scikit-learn's bundled ``load_digits`` (1,797 images of 8x8 pixels, ten
classes) into base and novel classes. Both return a :class:`FewShotData` whose images
are flattened rows of float32 pixels in [0, 1].

Examples
--------
>>> data = synthetic(n_base=4, n_novel=2, base_train=5, base_test=3, novel_per_class=6)
>>> data.base_train_x.shape, data.novel_x.shape, data.image_shape
((20, 256), (12, 256), (16, 16))
>>> sorted(set(data.novel_y.tolist()))
[0, 1]
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DATASETS", "FewShotData", "digits", "render_strokes", "synthetic"]

#: The data sets :func:`namcore.fewshot.run` knows.
DATASETS = ("synthetic", "digits")


@dataclass(frozen=True)
class FewShotData:
    """Base and novel classes of a generalized few-shot problem.

    Parameters
    ----------
    name : str
        ``"synthetic"`` or ``"digits"``.
    base_train_x, base_train_y : ndarray
        Images (N, pixels) and labels in ``[0, n_base)`` that train stage 1 and from
        which stage 2 draws its episodes (some base classes play novel ones).
    base_test_x, base_test_y : ndarray
        Held-out images of the base classes: the base queries of test episodes.
    novel_x, novel_y : ndarray
        Images of the novel classes, labels in ``[0, n_novel)``; never seen in training.
    image_shape : tuple of int
        (height, width) of one image.
    """

    name: str
    base_train_x: np.ndarray
    base_train_y: np.ndarray
    base_test_x: np.ndarray
    base_test_y: np.ndarray
    novel_x: np.ndarray
    novel_y: np.ndarray
    image_shape: tuple[int, int]

    @property
    def n_base(self) -> int:
        return int(self.base_train_y.max()) + 1

    @property
    def n_novel(self) -> int:
        return int(self.novel_y.max()) + 1

    @property
    def n_pixels(self) -> int:
        return int(self.base_train_x.shape[1])


def _prototype(rng: np.random.Generator, size: int) -> np.ndarray:
    """Stroke ends (4, 4) of one class, ``(x0, y0, x1, y1)``; unused strokes are NaN."""
    n = int(rng.integers(2, 5))
    strokes = np.full((4, 4), np.nan)
    low, high = 2.0, size - 3.0
    for i in range(n):
        start = rng.uniform(low, high, 2)
        while True:  # strokes at least a third of the canvas long
            end = rng.uniform(low, high, 2)
            if np.hypot(*(end - start)) >= size / 3:
                break
        strokes[i] = (*start, *end)
    return strokes


def render_strokes(strokes: np.ndarray, width: np.ndarray, size: int) -> np.ndarray:
    """Render line segments as soft strokes on ``size`` x ``size`` canvases.

    Parameters
    ----------
    strokes : ndarray, shape (N, S, 4)
        Segment ends ``(x0, y0, x1, y1)`` in pixel units; NaN rows are skipped.
    width : ndarray, shape (N, S)
        Gaussian width (pixels) of each stroke's profile.
    size : int
        Canvas side.

    Returns
    -------
    ndarray, shape (N, size * size)
        Pixel intensities in [0, 1]: per pixel, the brightest stroke.

    Examples
    --------
    >>> img = render_strokes(np.array([[[1.0, 4.0, 6.0, 4.0]]]), np.array([[0.5]]), 8)
    >>> float(img.reshape(8, 8)[4, 3].round(3)), float(img.reshape(8, 8)[0, 3].round(3))
    (1.0, 0.0)
    """
    ys, xs = np.meshgrid(np.arange(size, dtype=float), np.arange(size, dtype=float), indexing="ij")
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=-1)  # (P, 2) as (x, y)
    a, b = strokes[..., None, :2], strokes[..., None, 2:]  # (N, S, 1, 2)
    ab = b - a
    t = np.sum((pixels - a) * ab, axis=-1) / np.maximum(np.sum(ab * ab, axis=-1), 1e-9)
    nearest = a + np.clip(t, 0.0, 1.0)[..., None] * ab
    dist2 = np.sum((pixels - nearest) ** 2, axis=-1)  # (N, S, P)
    ink = np.exp(-dist2 / (2.0 * width[..., None] ** 2))
    ink = np.where(np.isnan(ink), 0.0, ink)
    return ink.max(axis=1)


def _samples(
    prototype: np.ndarray, count: int, rng: np.random.Generator, size: int, noise: float
) -> np.ndarray:
    """``count`` distorted renderings (count, size * size) of one prototype."""
    centre = (size - 1) / 2.0
    angle = rng.normal(0.0, math.radians(10.0), count)
    scale = rng.uniform(0.88, 1.12, count)
    shift = rng.normal(0.0, 0.8, (count, 2))
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    ends = np.broadcast_to(prototype.reshape(1, 4, 2, 2), (count, 4, 2, 2))
    ends = ends + rng.normal(0.0, 0.5, ends.shape)  # jittered stroke ends
    x, y = ends[..., 0] - centre, ends[..., 1] - centre
    c, s = cos[:, None, None], sin[:, None, None]
    moved = np.stack([c * x - s * y, s * x + c * y], axis=-1) + centre + shift[:, None, None, :]
    width = rng.uniform(0.55, 0.95, (count, 4))
    brightness = rng.uniform(0.7, 1.0, (count, 1))
    images = render_strokes(moved.reshape(count, 4, 4), width, size) * brightness
    images = images + rng.normal(0.0, noise, images.shape)
    return np.clip(images, 0.0, 1.0)


def _render_classes(
    seed: int, classes: range, count: int, stream: int, size: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in classes:
        prototype = _prototype(np.random.default_rng((seed, 0, c)), size)
        rng = np.random.default_rng((seed, stream, c))
        xs.append(_samples(prototype, count, rng, size, noise))
        ys.append(np.full(count, c, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def synthetic(
    *,
    n_base: int = 64,
    n_novel: int = 20,
    base_train: int = 200,
    base_test: int = 40,
    novel_per_class: int = 60,
    size: int = 16,
    noise: float = 0.08,
    seed: int = 0,
) -> FewShotData:
    """Procedural stroke images: one prototype per class, distorted per sample.

    Class ``c``'s prototype depends only on ``(seed, c)``, and each split draws its
    samples from its own stream, so the same arguments give the same arrays and a
    bigger split never changes a smaller one's classes. Classes ``[0, n_base)`` are the
    base classes, the next ``n_novel`` the novel ones (relabelled from 0). The default
    sizes follow miniImageNet's protocol in classes (64 base classes, 5-way novel
    episodes drawn from 20 test classes), with small images so it runs on a CPU.

    Parameters
    ----------
    n_base, n_novel : int
        Numbers of base and novel classes.
    base_train, base_test, novel_per_class : int
        Samples per class of each split.
    size : int
        Image side in pixels. Default: 16.
    noise : float
        Standard deviation of the pixel noise. Default: 0.08.
    seed : int
        Seed of the prototypes and distortions.

    Returns
    -------
    FewShotData

    Examples
    --------
    >>> a = synthetic(n_base=3, n_novel=2, base_train=4, base_test=2, novel_per_class=5, seed=1)
    >>> b = synthetic(n_base=3, n_novel=2, base_train=4, base_test=2, novel_per_class=5, seed=1)
    >>> bool((a.base_train_x == b.base_train_x).all()), a.n_base, a.n_novel
    (True, 3, 2)
    """
    for name, value in (
        ("n_base", n_base),
        ("n_novel", n_novel),
        ("base_train", base_train),
        ("base_test", base_test),
        ("novel_per_class", novel_per_class),
        ("size", size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"synthetic: {name} must be a positive int, got {value!r}")
    if size < 8:
        raise ValueError(f"synthetic: size must be at least 8 pixels, got {size}")
    base = range(n_base)
    train_x, train_y = _render_classes(seed, base, base_train, 1, size, noise)
    test_x, test_y = _render_classes(seed, base, base_test, 2, size, noise)
    novel_x, novel_y = _render_classes(
        seed, range(n_base, n_base + n_novel), novel_per_class, 3, size, noise
    )
    return FewShotData(
        "synthetic", train_x, train_y, test_x, test_y, novel_x, novel_y - n_base, (size, size)
    )


def digits(*, n_base: int = 5, test_fraction: float = 0.3, seed: int = 0) -> FewShotData:
    """scikit-learn's bundled digits: classes ``0..n_base-1`` are base, the rest novel.

    The base classes are split per class into training and test images
    (``test_fraction`` held out); every image of a novel class is a novel sample.
    Pixels (0..16) are scaled to [0, 1].

    Parameters
    ----------
    n_base : int
        Number of base classes (the digits 0 to ``n_base - 1``); 2 to 8. Default: 5.
    test_fraction : float
        Share of each base class held out for base queries. Default: 0.3.
    seed : int
        Seed of the split.

    Returns
    -------
    FewShotData

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install 'namcore[fewshot]'``).

    Examples
    --------
    >>> data = digits()  # doctest: +SKIP
    >>> data.n_base, data.n_novel, data.image_shape  # doctest: +SKIP
    (5, 5, (8, 8))
    """
    try:  # (imported by name: scikit-learn ships no type information)
        load_digits = importlib.import_module("sklearn.datasets").load_digits
    except ImportError as error:
        raise ImportError(
            "the digits data set needs scikit-learn, which is not installed: "
            "pip install 'namcore[fewshot]'"
        ) from error
    if isinstance(n_base, bool) or not isinstance(n_base, int) or not 2 <= n_base <= 8:
        raise ValueError(f"digits: n_base must be an int in [2, 8], got {n_base!r}")
    bunch = load_digits()
    x = (np.asarray(bunch.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng((seed, 7))
    train, test = [], []
    for c in range(n_base):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut = round(len(idx) * test_fraction)
        test.append(idx[:cut])
        train.append(idx[cut:])
    tr, te = np.concatenate(train), np.concatenate(test)
    novel = np.flatnonzero(y >= n_base)
    return FewShotData("digits", x[tr], y[tr], x[te], y[te], x[novel], y[novel] - n_base, (8, 8))
