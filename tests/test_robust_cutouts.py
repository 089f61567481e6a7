"""The whole subject and nothing else, with the real models: a part one model misses is kept,
and no tier needs a model that was not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alphacut.api import Remover
from alphacut.models.store import ModelStore
from alphacut.second_opinion import helper_loader

from conftest import EVAL

#: a real 12 MP phone photo (libavif test data, BSD-2-Clause): a shaggy dog in a hat on grass.
#: IS-Net alone leaves its white chest and dark front leg as a faint ghost (alpha 0.05, 0.02).
DOG = EVAL / "formats" / "jpeg_odd" / "libavif" / "dog_exif_extended_xmp_icc.jpg"
#: regions in upright pixel coordinates (3024 x 4032 after the EXIF rotation): y0, y1, x0, x1
CHEST, LEG, GRASS = (3050, 3950, 1250, 2000), (3200, 3800, 850, 1100), (600, 1500, 0, 600)


def _mean(matte: np.ndarray, box: tuple[int, int, int, int]) -> float:
    y0, y1, x0, x1 = box
    return float(matte[y0:y1, x0:x1].mean())


@pytest.mark.skipif(not DOG.is_file(), reason="../shared/eval is not here")
@pytest.mark.parametrize("quality", ["fast", "best"])
def test_the_dogs_body_stays_opaque_and_the_grass_clear(isnet: Remover, quality: str) -> None:
    result = isnet.remove(DOG, quality=quality)
    m = result.matte
    assert m.shape == (4032, 3024)
    assert _mean(m, CHEST) >= 0.95 and _mean(m, LEG) >= 0.95, (quality, _mean(m, CHEST), _mean(m, LEG))
    assert _mean(m, GRASS) <= 0.02
    assert not result.warnings


def test_a_missing_helper_is_a_warning_never_a_download(tmp_path: Path) -> None:
    """An empty store: the second opinion is not fetched behind the user's back; the cutout is
    told why it ran alone, and how to add the helper."""
    store = ModelStore(tmp_path / "home", offline=False)
    found, why = helper_loader(store)("isnet")
    assert found is None
    assert why is not None and "u2netp is not installed" in why and "alphacut models pull u2netp" in why
    assert not store.info("u2netp").installed
    assert not any((tmp_path / "home").rglob("*u2netp*"))
    assert helper_loader(store)("u2netp") == (None, None)  # a model without a helper asks nobody


#: a frangipani flower among leaves (Pillow's test images, MIT-CMU): IS-Net is sure of the
#: whole flower; U²-Netp sees only its centre. The best tier used to add the two opinions'
#: log-odds (and IS-Net's 768² view): 15% of the petals IS-Net was sure of came out grey.
FLOWER = Path(__file__).parent / "data" / "corpus" / "jpeg_odd" / "flower.jpg"


def test_what_the_main_model_is_sure_of_stays_opaque_in_both_tiers(isnet: Remover) -> None:
    import cv2

    from alphacut.api import picture_from
    from alphacut.matte.predict import predict_matte
    from alphacut.models.catalog import get_spec

    rgb = picture_from(FLOWER).rgb
    alone = predict_matte(isnet.session, rgb, get_spec("isnet"))
    sure = cv2.resize(alone, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR) > 0.98
    sure = cv2.erode(sure.view(np.uint8), np.ones((9, 9), np.uint8)) > 0  # the interior, not the edge
    assert sure.sum() > 500
    for quality in ("best", "fast"):
        result = isnet.remove(FLOWER, quality=quality)
        assert not result.warnings
        inside = result.matte[sure]
        assert (inside >= 0.9).mean() >= 0.995, (quality, float((inside >= 0.9).mean()))
        assert float(inside.mean()) >= 0.97
