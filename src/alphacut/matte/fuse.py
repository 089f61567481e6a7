"""Log-odds arithmetic on mattes: adding two models' opinions, averaging one model's views.

Each model's matte is read as the probability that a pixel is foreground. Adding two models'
log-odds (a naive-Bayes product of the opinions) lets a confident model overrule an unsure one
and makes a shared edge crisper; ``matte.decide`` adds them where the models agree and decides
the regions where they disagree (adding log-odds there turns a sure "yes" against a sure "no"
into grey).

Measured (no band matting, alphamatting-dev and its composites), adding log-odds everywhere:
IS-Net alone SAD 62.6, edge 14.1; IS-Net + U²-Netp 52.4, 11.2. Averaging the mattes instead:
54.5, 13.0; the maximum (union): 38.7, 9.8 on this set, but it adds every false positive of
either model (DAVIS IoU 0.734 vs 0.765 for IS-Net alone). Fusing at the models' own
resolution and upsampling once is as good as fusing two full-resolution mattes, and cheaper.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["logit", "sigmoid", "fuse_mattes"]

#: probabilities are clipped to [CLIP, 1 - CLIP] before the log-odds (|logit| <= 9.2)
CLIP = 1e-4


def logit(m: np.ndarray) -> np.ndarray:
    """float32 log-odds of a 0..1 matte."""
    p = np.clip(np.asarray(m, dtype=np.float32), np.float32(CLIP), np.float32(1 - CLIP))
    return np.log(p / (np.float32(1) - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """float32 probability of log-odds ``z`` (computed in place on a float32 copy)."""
    out = np.negative(np.asarray(z, dtype=np.float32))
    np.exp(out, out=out)
    out += np.float32(1)
    return np.reciprocal(out, out=out)


def fuse_mattes(primary: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``sigmoid(logit(primary) + logit(other))`` at ``primary``'s shape; ``other`` (any
    resolution, the same framing) is resized bilinearly. float32 (h, w) in 0..1."""
    h, w = primary.shape
    if other.shape != (h, w):
        other = cv2.resize(np.asarray(other, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return sigmoid(logit(primary) + logit(other))
