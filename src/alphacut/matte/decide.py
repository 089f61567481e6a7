"""Fusing two models' mattes by *deciding* where they disagree, not averaging.

Adding two models' log-odds (``fuse.fuse_mattes``) is right where they agree or where one is
unsure, but where both are sure and disagree it averages them into grey: a hole in a teddy
bear's scarf that IS-Net had right, a straw broom turned half-transparent. And a per-pixel rule
cannot see the shape of a mistake: IS-Net sometimes leaves a whole part of a subject as a faint
ghost (a dog's chest at alpha 0.05) that U²-Netp has at 0.999.

So the decision is made per *region*:

1. Where the models agree, or where they disagree only along a sliver of an edge (narrower than
   ``SLIVER_FRACTION`` of the long side: the 320² helper draws edges coarser), their log-odds
   are added, as before — but where the primary model is confident (``|logit| > KEEP_LOGIT``,
   alpha outside 0.1..0.9) its value is kept, so a sure interior never turns grey.
2. Every larger connected region where one model says foreground and the other background is
   decided as a whole, from the evidence at hand:
   - the models' own confidence: the mean over the region of each one's log-odds, the "yes"
     clipped to ``VOTE_CLIP`` (a ghost at 0.05 is a weak "no", a background at 1e-4 a sure one);
     in the best tier a min-max normalised helper's "no" is clipped too (``other_relative``:
     its floor is the frame's least salient pixel, not a sure background);
   - what kind of mistake is likelier: models miss parts of subjects far more often than they
     invent them (alphamatting-dev and sod-dev: IS-Net loses 22% and 27% of the subject and
     keeps 4% and 2% extra; U²-Netp 12% and 25% against 5% and 5%), so the model that says
     "background" counts ``NO_WEIGHT`` of its log-odds, and a tie goes to
     the subject (``TIE_BREAK``): a user can erase a kept scrap in one click, but cannot
     restore a lost leg;
   - connectivity to the subject: the share of the region's outline that touches what both
     models call foreground, against what both call background (a part attached to the
     subject is more likely the subject; an island of one model's is more likely its mistake);
   - what the photo's edges say (when the photo is given): if the region is part of the
     subject, its border with the agreed background is the subject's outline and lies on a
     strong edge, while its border with the agreed subject runs through the subject's inside;
     if it is background wrongly claimed, the other way round. The log-ratio of the photo's
     gradient (CIE Lab) along the two borders votes (``EDGE_WEIGHT``; clipped to ±2).
   The region then takes the deciding model's own values (the maximum of the two mattes where
   it is decided foreground, the minimum where background): decided, not left half-transparent.

Tried and dropped (``bench/quality.py``, sod-dev and alphamatting-dev): a colour model of the
agreed foreground and background as a vote — reflections in water and fur over a warm
background share the subject's colours, and it decided as many regions wrongly as rightly.
"""

from __future__ import annotations

import cv2
import numpy as np

from .fuse import logit, sigmoid

__all__ = ["decide_mattes"]

#: where the primary model's |log-odds| exceeds this (alpha < 0.1 or > 0.9) its value is kept
#: outside the decided regions
KEEP_LOGIT = 2.2
#: disagreements narrower than this share of the long side are edge slivers, not regions
SLIVER_FRACTION = 0.01
#: a model's "yes" on a region is its log-odds clipped to this (alpha 0.982): one model's
#: near-1 output is no surer than another's 0.98
VOTE_CLIP = 4.0
#: the "no" of the model that says "background" counts this much of its full log-odds
#: (misses are commoner than inventions). Not clipped: IS-Net's faint ghost over a part it
#: missed (0.05, -2.9) and its sure background (1e-4, -9.2) are different statements — clipped
#: alike, U²-Netp's sure claims on a crowd behind a dancer or a railing beside a runner were
#: kept (davis2016-video, fast: IoU 0.813 -> 0.826 unclipped; sod-dev objects 0.745 -> 0.737)
NO_WEIGHT = 0.5
#: with ``other_relative``, the other model's "no" is clipped at this (alpha 0.018), like its
#: "yes": a min-max normalised output's zero is the frame's least salient pixel, not a
#: probability, so its "sure" no is no surer than its yes. A part IS-Net is sure of and U²-Netp
#: reads as its floor (a drum before two musicians, far elephants, a tree beside a rock) was
#: dropped. Measured in the best tier (sod-dev objects: IoU 0.745 -> 0.752, gross 42 -> 39;
#: alphamatting-dev and the dog unchanged) at a cost on davis2016-video (0.814 -> 0.807: a
#: railing and a jump fence IS-Net claims), which is why the fast tier does not ask for it
RELATIVE_NO_CLIP = 4.0
#: added to every region's score: a tie is decided for the subject
TIE_BREAK = 1.0
#: weight of the edge vote (log-ratio of gradients along the region's two borders, ±2)
EDGE_WEIGHT = 1.0
#: a model whose foreground covers less of the frame than this saw no subject at all: its "no"
#: is the absence of an opinion (U²-Netp's output is min-max normalised, so when it finds
#: nothing its whole frame reads as a sure "no"), and it does not count
SAW_NOTHING = 0.002
#: the edge may lie this many model pixels off the models' contour
EDGE_REACH = 2
#: weight of the connectivity vote, in log-odds: +1 for a region wholly bordered by the agreed
#: subject, -1 for one wholly bordered by the agreed background
ADJACENCY_WEIGHT = 1.0


def decide_mattes(primary: np.ndarray, other: np.ndarray, image: np.ndarray | None = None, *,
                  other_relative: bool = False) -> np.ndarray:
    """The fused matte at ``primary``'s shape (float32 (h, w), 0..1); ``other`` frames the same
    picture at any resolution and is resized bilinearly; ``image`` (RGB, any size, the same
    framing) adds the photo's edges to the evidence. ``other_relative``: ``other`` is min-max
    normalised (U²-Netp), so its "no" is clipped at ``RELATIVE_NO_CLIP``."""
    primary = np.asarray(primary, dtype=np.float32)
    h, w = primary.shape
    if other.shape != (h, w):
        other = cv2.resize(np.asarray(other, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    za, zb = logit(primary), logit(other)
    fused = sigmoid(za + zb)  # where they agree: the two opinions' log-odds added (fuse_mattes)
    sure = np.abs(za) > KEEP_LOGIT
    fused[sure] = primary[sure]

    fa, fb = primary >= 0.5, other >= 0.5
    disagree = (fa ^ fb).astype(np.uint8)
    k = max(3, int(round(SLIVER_FRACTION * max(h, w))) | 1)
    core = cv2.morphologyEx(disagree, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if not core.any():
        return fused
    n, labels, stats = _regions(fa & ~fb, ~fa & fb)
    regions = np.unique(labels[core > 0])
    regions = regions[regions > 0]
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n).astype(np.float64)
    # in a disagreement region one model says yes and the other no: the "yes" is clipped at
    # VOTE_CLIP, the "no" counts NO_WEIGHT of its full log-odds (a relative model's clipped
    # at RELATIVE_NO_CLIP first)
    yes_no = np.minimum(za, np.float32(VOTE_CLIP)), np.minimum(zb, np.float32(VOTE_CLIP))
    yes_no[0][~fa] *= np.float32(_no_weight(fa))
    if other_relative:
        np.maximum(yes_no[1], np.float32(-RELATIVE_NO_CLIP), out=yes_no[1])
    yes_no[1][~fb] *= np.float32(_no_weight(fb))
    votes = yes_no[0] + yes_no[1]
    model_vote = np.bincount(flat, votes.ravel(), minlength=n) / np.maximum(area, 1.0)
    agreed_fg = (fa & fb).view(np.uint8)
    agreed_bg = (~fa & ~fb).view(np.uint8)
    ring_kernel = np.ones((3, 3), np.uint8)
    gradient: np.ndarray | None = None  # the photo's edges, computed once, when first needed
    for i in regions:
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        x0, y0, x1, y1 = max(0, x - 1), max(0, y - 1), min(w, x + bw + 1), min(h, y + bh + 1)
        region = labels[y0:y1, x0:x1] == i
        ring = (cv2.dilate(region.view(np.uint8), ring_kernel) > 0) & ~region
        touch_fg = int(agreed_fg[y0:y1, x0:x1][ring].sum())
        touch_bg = int(agreed_bg[y0:y1, x0:x1][ring].sum())
        attached = (touch_fg - touch_bg) / max(1, touch_fg + touch_bg)  # -1 .. 1
        score = model_vote[i] + ADJACENCY_WEIGHT * attached + TIE_BREAK
        # the edge vote is at most ±2·EDGE_WEIGHT: asked only where it could turn the decision
        if (image is not None and EDGE_WEIGHT and abs(score) <= 2 * EDGE_WEIGHT
                and touch_fg > 10 and touch_bg > 10):
            if gradient is None:
                gradient = _edge_strength(image, (w, h))
            g = gradient[y0:y1, x0:x1]
            on_subject = float(g[ring & (agreed_fg[y0:y1, x0:x1] > 0)].mean())
            on_background = float(g[ring & (agreed_bg[y0:y1, x0:x1] > 0)].mean())
            score += EDGE_WEIGHT * float(np.clip(np.log((on_background + 1) / (on_subject + 1)), -2, 2))
        keep = score > 0
        pick = np.maximum if keep else np.minimum
        view = fused[y0:y1, x0:x1]
        view[region] = pick(primary[y0:y1, x0:x1][region], other[y0:y1, x0:x1][region])
    return fused


def _regions(only_primary: np.ndarray, only_other: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Connected regions where only the primary says yes, and apart from them those where only
    the other model does, in one label image (count, labels, stats as OpenCV gives them): a
    region of each kind that touches one of the other kind is still two claims, decided apart."""
    na, la, sa, _ = cv2.connectedComponentsWithStats(only_primary.view(np.uint8), connectivity=8)
    nb, lb, sb, _ = cv2.connectedComponentsWithStats(only_other.view(np.uint8), connectivity=8)
    labels = np.where(lb > 0, lb + (na - 1), la).astype(np.int32)
    return na + nb - 1, labels, np.concatenate([sa, sb[1:]])


def _no_weight(says_yes: np.ndarray) -> float:
    """How much a model's "no" counts: ``NO_WEIGHT``, or nothing when it saw no subject."""
    return NO_WEIGHT if float(says_yes.mean()) >= SAW_NOTHING else 0.0


def _edge_strength(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """The photo's gradient magnitude in CIE Lab at the mattes' size, spread ``EDGE_REACH``
    pixels (a model's contour may sit a pixel or two off the real edge)."""
    img = image[..., :3]
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) * np.float32(255.0 / 65535.0)).round().astype(np.uint8)
    small = img if img.shape[1::-1] == tuple(size_wh) else cv2.resize(img, size_wh, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    squared = cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy))  # OpenCV: 5x NumPy's speed here
    magnitude = cv2.sqrt(cv2.transform(squared, np.ones((1, 3), np.float32)))
    reach = 2 * EDGE_REACH + 1
    return cv2.dilate(magnitude, np.ones((reach, reach), np.uint8))
