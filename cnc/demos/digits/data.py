"""The demo data set: scikit-learn's bundled 8x8 handwritten digits (no network needed).

The split is seeded and stratified so every build and every app start sees the same test set.
Each instance also gets categorical subgroup attributes computed from its pixels, so the
Behaviors view can show whether compression hurts some kinds of handwriting more than others.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_SIZE = 0.3
CLASS_NAMES = [str(d) for d in range(10)]
INK_LEVELS = ("low", "medium", "high")
STROKE_LEVELS = ("thin", "medium", "thick")


@dataclass(frozen=True)
class DigitsSplit:
    """One split: images [N,1,8,8] in 0..1, int64 labels, and per-instance attributes."""

    x: torch.Tensor
    y: torch.Tensor
    attributes: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.y)


def ink_density(images: np.ndarray) -> np.ndarray:
    """Total ink per image: how much of the 8x8 canvas the writer covered."""
    return images.reshape(len(images), -1).sum(axis=1)


def stroke_intensity(images: np.ndarray) -> np.ndarray:
    """Mean intensity of the inked pixels.

    Each 8x8 pixel counts the "on" pixels of a 4x4 block of the original 32x32 bitmap, so a thick
    pen fills the blocks it touches (high values) while a thin one only grazes them (low values),
    independently of how large the digit is drawn.
    """
    flat = images.reshape(len(images), -1)
    inked = flat > 0
    return (flat * inked).sum(axis=1) / np.maximum(inked.sum(axis=1), 1)


def _tertile_labels(values: np.ndarray, edges: np.ndarray, names: tuple[str, str, str]) -> list[str]:
    return [names[i] for i in np.digitize(values, edges)]


@lru_cache(maxsize=4)
def load_splits(seed: int = 0, test_size: float = TEST_SIZE) -> tuple[DigitsSplit, DigitsSplit]:
    """(train, test) splits; attribute thresholds are the train split's tertiles."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed
    )
    ink_edges = np.quantile(ink_density(images[idx_train]), [1 / 3, 2 / 3])
    stroke_edges = np.quantile(stroke_intensity(images[idx_train]), [1 / 3, 2 / 3])

    def split(idx: np.ndarray) -> DigitsSplit:
        imgs = images[idx]
        return DigitsSplit(
            x=torch.from_numpy(imgs).unsqueeze(1).contiguous(),
            y=torch.from_numpy(labels[idx]),
            attributes={
                "ink density": _tertile_labels(ink_density(imgs), ink_edges, INK_LEVELS),
                "stroke width": _tertile_labels(stroke_intensity(imgs), stroke_edges, STROKE_LEVELS),
            },
        )

    return split(idx_train), split(idx_test)
