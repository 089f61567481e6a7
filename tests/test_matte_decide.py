"""matte.decide: where two models disagree, each region is decided, not averaged into grey."""

from __future__ import annotations

import cv2
import numpy as np

from alphacut.matte.decide import decide_mattes
from alphacut.matte.fuse import fuse_mattes

SURE_FG, SURE_BG, GHOST = np.float32(0.999), np.float32(1e-4), np.float32(0.05)


def _disc(size: int, centre: tuple[int, int], radius: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    cv2.circle(m, centre, radius, 1, -1)
    return m > 0


def test_a_confident_interior_stays_opaque_where_the_other_model_punched_a_hole() -> None:
    """The teddy's scarf: the primary is sure of the whole subject, the helper misses a patch
    inside it. Adding log-odds leaves a grey hole there; deciding keeps the subject whole."""
    body = _disc(256, (128, 128), 90)
    scarf = _disc(256, (128, 150), 30)
    primary = np.where(body, SURE_FG, SURE_BG)
    helper = np.where(body & ~scarf, SURE_FG, SURE_BG)
    assert fuse_mattes(primary, helper)[150, 128] < 0.5  # what adding log-odds did: a hole
    out = decide_mattes(primary, helper)
    assert out[body].min() >= 0.99
    assert out[~body].max() <= 0.01


def test_a_ghost_body_part_attached_to_the_subject_is_decided_opaque() -> None:
    """The dog: the primary keeps the head and leaves the body as a faint ghost (0.05) that the
    helper is sure of. The body is attached to the agreed head: it becomes opaque, not 0.05."""
    head = _disc(256, (128, 60), 40)
    body = _disc(256, (128, 160), 70) & ~head
    primary = np.where(head, SURE_FG, np.where(body, GHOST, SURE_BG))
    helper = np.where(head | body, SURE_FG, SURE_BG)
    out = decide_mattes(primary, helper)
    assert out[body].mean() > 0.95 and out[head].min() > 0.99
    assert out[~(head | body)].max() <= 0.01


def test_a_detached_island_is_kept_against_a_doubtful_no_not_against_a_sure_one() -> None:
    """A region only the helper sees, detached from the subject. Against the primary's faint
    "no" (0.05: it half saw it, a second flower) the helper's sure "yes" keeps it: misses are
    commoner than inventions. Against the primary's sure "no" (1e-4: a reflection in the lake,
    a crowd behind the dancer) it stays out, and so does a claim the helper is only leaning to."""
    subject = _disc(256, (80, 80), 40)
    island = _disc(256, (190, 190), 40)
    helper = np.where(subject | island, np.float32(0.999), SURE_BG)
    faint = decide_mattes(np.where(subject, SURE_FG, np.where(island, GHOST, SURE_BG)), helper)
    assert faint[island].min() > 0.99 and faint[subject].min() > 0.99
    primary = np.where(subject, SURE_FG, SURE_BG)
    sure = decide_mattes(primary, helper)
    assert sure[island].max() <= 0.01 and sure[subject].min() > 0.99
    leaning = decide_mattes(primary, np.where(subject, SURE_FG, np.where(island, np.float32(0.75), SURE_BG)))
    assert leaning[island].max() <= 0.01


def test_edge_slivers_follow_the_primary_and_soft_values_survive() -> None:
    """A helper at a coarser resolution draws the edge a few pixels off: that sliver is not a
    region to decide; where the primary is confident its value stands, and a soft band the
    primary is unsure about stays soft (log-odds with the helper's opinion)."""
    primary = np.where(_disc(256, (128, 128), 80), SURE_FG, SURE_BG)
    helper = np.where(_disc(256, (130, 128), 80), SURE_FG, SURE_BG)  # shifted 2 px
    out = decide_mattes(primary, helper)
    np.testing.assert_array_equal(out, primary)
    soft = primary.copy()
    soft[120:136, :] = np.float32(0.5)  # a semi-transparent band the primary is unsure of
    both = decide_mattes(soft, np.full_like(soft, np.float32(0.5)))
    assert np.allclose(both[120:136, 60:200], 0.5, atol=1e-3)


def test_the_helper_may_be_at_another_resolution() -> None:
    primary = np.where(_disc(256, (128, 128), 80), SURE_FG, SURE_BG)
    helper = cv2.resize(primary, (80, 80), interpolation=cv2.INTER_AREA)
    out = decide_mattes(primary, helper)
    assert out.shape == primary.shape and out.dtype == np.float32
    assert out[128, 128] > 0.99 and out[5, 5] < 0.01


def test_the_photos_edges_decide_a_claim_the_models_leave_open() -> None:
    """A red disc on blue; the helper also claims a blue patch beside the disc (0.8), the
    primary does not (0.2). The models' votes, the connectivity and the tie-break lean to the
    subject; the photo does not: the patch's border with the disc is the strong red/blue edge
    and its border with the background runs through flat blue — so it is background."""
    size = 256
    disc = _disc(size, (100, 128), 60)
    patch = np.zeros((size, size), bool)
    patch[98:158, 160:215] = True
    patch &= ~disc
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = (30, 60, 200)
    image[disc] = (210, 40, 30)
    primary = np.where(disc, SURE_FG, np.where(patch, np.float32(0.2), SURE_BG))
    helper = np.where(disc | patch, np.float32(0.8), SURE_BG)
    helper[disc] = SURE_FG
    blind = decide_mattes(primary, helper)
    assert blind[patch].mean() > 0.7  # without the photo the claim is kept
    seeing = decide_mattes(primary, helper, image)
    assert seeing[patch].max() < 0.25 and seeing[disc].min() > 0.99
    # the same patch painted red (the disc's colour, no edge between them) is kept
    image[patch] = (210, 40, 30)
    assert decide_mattes(primary, helper, image)[patch].mean() > 0.7


def test_a_model_that_saw_no_subject_has_no_say() -> None:
    """A rock with a climber the primary sees (0.8) where the helper found nothing at all (its
    min-max normalised frame reads 0 everywhere): that blanket "no" is no judgement, and the
    cutout is not left empty."""
    rock = _disc(256, (100, 160), 90)
    primary = np.where(rock, np.float32(0.8), SURE_BG)
    out = decide_mattes(primary, np.zeros((80, 80), np.float32))
    assert out[rock].min() >= 0.79 and out[~rock].max() <= 0.01


def test_touching_claims_of_the_two_kinds_are_decided_apart() -> None:
    """The primary is sure of a rock; the helper claims the sky above it instead. The two
    disagreements touch, but they are two claims: the rock stays, the sky goes."""
    rock = np.zeros((256, 256), bool)
    rock[128:, 40:200] = True
    sky = np.zeros((256, 256), bool)
    sky[20:128, 40:200] = True
    primary = np.where(rock, np.float32(0.994), np.where(sky, np.float32(1e-3), SURE_BG))
    helper = np.where(sky, np.float32(0.9), np.float32(0.01))
    out = decide_mattes(primary, helper)
    assert out[rock].min() > 0.98 and out[sky].max() < 0.1


def test_a_relative_helpers_floor_does_not_outvote_the_primarys_sure_part() -> None:
    """Far elephants the primary is sure of (0.96), apart from the agreed subject (a tree),
    where the helper reads its frame's floor (U²-Netp is min-max normalised: 1e-4 there means
    "least salient here", not "surely background"). Read as a probability, that floor outvotes
    the primary and the elephants are dropped; read as relative (clipped like the helper's
    "yes"), they stay. The helper's sure "yes" against the primary's sure "no" is untouched."""
    tree = _disc(256, (70, 128), 40)
    herd = _disc(256, (200, 200), 30)
    primary = np.where(tree | herd, np.float32(0.96), SURE_BG)
    helper = np.where(tree, SURE_FG, SURE_BG)
    assert decide_mattes(primary, helper)[herd].max() <= 0.01  # the floor read as a probability
    out = decide_mattes(primary, helper, other_relative=True)
    assert out[herd].min() >= 0.95 and out[tree].min() >= 0.95
    assert out[~(tree | herd)].max() <= 0.01
    crowd = np.where(tree | herd, SURE_FG, SURE_BG)  # the helper's claim on a crowd the primary rejects
    assert decide_mattes(np.where(tree, SURE_FG, SURE_BG), crowd, other_relative=True)[herd].max() <= 0.01
