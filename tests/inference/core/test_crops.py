from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inference.core.crops import crop_cells, denormalise, field_to_tensor, render_crop, square_context_boxes

GREY = (0.5, 0.5, 0.5)
MEAN = (0.1, 0.2, 0.3)
STD = (0.5, 0.5, 0.5)


def field_with_red_square(x: int, y: int, side: int, width: int = 200, height: int = 160) -> np.ndarray:
    image = np.full((height, width, 3), 128, np.uint8)
    image[y : y + side, x : x + side] = (255, 0, 0)
    return image


def red_mask(crop: torch.Tensor) -> np.ndarray:
    """Pixels that are mostly red, from a (3, S, S) crop in [0, 1]."""
    r, g, b = crop.numpy()
    return (r > 0.75) & (g < 0.25) & (b < 0.25)


def test_square_context_boxes_keep_the_centre_and_use_the_longer_side() -> None:
    boxes = torch.tensor([[10.0, 20.0, 50.0, 40.0]])  # 40 wide, 20 high, centre (30, 30)
    # side = 40 * (1 + 2 * 0.25) = 60
    assert square_context_boxes(boxes, 0.25).tolist() == [[0.0, 0.0, 60.0, 60.0]]


def test_coloured_square_ends_up_centred_and_sized_by_the_margin() -> None:
    # A 40 px red square at (60, 50); margin 0.25 -> 60 px window; resampled to 30 px the square spans
    # 30 * 40 / 60 = 20 px in the middle, i.e. pixels 5..24.
    image = field_to_tensor(field_with_red_square(60, 50, 40))
    boxes = torch.tensor([[60.0, 50.0, 100.0, 90.0]])
    crops = crop_cells([image], [boxes], size=30, margin=0.25, mean=MEAN, std=STD)
    assert crops.shape == (1, 3, 30, 30)
    mask = red_mask(denormalise(crops, MEAN, STD)[0])
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 24, 5, 24)
    assert mask[5:25, 5:25].all()
    # The margin shows the grey field around the cell.
    np.testing.assert_allclose(denormalise(crops, MEAN, STD)[0, :, 1, 1].numpy(), [128 / 255] * 3, atol=1e-5)


def test_window_outside_the_field_is_filled_with_the_mean_colour() -> None:
    image = field_to_tensor(field_with_red_square(0, 0, 20))
    crops = crop_cells([image], [torch.tensor([[0.0, 0.0, 20.0, 20.0]])], size=20, margin=0.5, mean=MEAN, std=STD)
    # The 40 px window spans -10..30: its top-left quarter lies outside the field -> exactly 0 after normalising.
    assert torch.count_nonzero(crops[0, :, :4, :4]) == 0
    seen = denormalise(crops, MEAN, STD)[0]
    np.testing.assert_allclose(seen[:, 0, 0].numpy(), MEAN, atol=1e-6)
    assert red_mask(seen)[10, 10]


def test_crops_follow_field_then_box_order_across_fields_of_different_sizes() -> None:
    small = field_to_tensor(field_with_red_square(10, 10, 20, width=80, height=60))
    large = field_to_tensor(np.zeros((90, 120, 3), np.uint8))
    boxes = [torch.tensor([[10.0, 10.0, 30.0, 30.0], [50.0, 30.0, 70.0, 50.0]]), torch.tensor([[5.0, 5.0, 25.0, 25.0]])]
    crops = denormalise(crop_cells([small, large], boxes, size=16, margin=0.0, mean=GREY, std=STD), GREY, STD)
    assert crops.shape == (3, 3, 16, 16)
    assert red_mask(crops[0]).all()
    assert not red_mask(crops[1]).any()
    assert crops[2].max() == 0.0  # the black field


def test_empty_box_lists_give_an_empty_batch() -> None:
    image = field_to_tensor(np.zeros((20, 20, 3), np.uint8))
    assert crop_cells([image], [torch.zeros(0, 4)], size=8, margin=0.1).shape == (0, 3, 8, 8)


def test_strong_shrinking_averages_instead_of_aliasing() -> None:
    # Stripes one pixel on, two off, shrunk 8x: every output pixel must be within 0.1 of the average (1/3); point
    # sampling without pooling would return values anywhere between 0 and 1.
    stripes = np.zeros((96, 96, 3), np.uint8)
    stripes[:, ::3] = 255
    crops = crop_cells([field_to_tensor(stripes)], [torch.tensor([[0.0, 0.0, 96.0, 96.0]])], size=12, margin=0.0)
    seen = denormalise(crops)[0]
    np.testing.assert_allclose(seen[:, 1:-1, 1:-1].numpy(), 1 / 3, atol=0.1)


def test_render_crop_shows_exactly_the_model_input() -> None:
    field = field_with_red_square(60, 50, 40)
    box_xywh = (60.0, 50.0, 40.0, 40.0)
    rendered = render_crop(field, box_xywh, size=30, margin=0.25, mean=MEAN, std=STD)
    assert isinstance(rendered, Image.Image)
    assert rendered.size == (30, 30)
    model_input = crop_cells(
        [field_to_tensor(field)], [torch.tensor([[60.0, 50.0, 100.0, 90.0]])], size=30, margin=0.25, mean=MEAN, std=STD
    )
    expected = denormalise(model_input, MEAN, STD)[0].permute(1, 2, 0).numpy() * 255
    np.testing.assert_allclose(np.asarray(rendered, dtype=np.float64), expected, atol=0.51)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (4, 3), (255, 0, 0)),
        np.full((3, 4, 3), (255, 0, 0), np.uint8),
        np.full((3, 4, 4), (255, 0, 0, 7), np.uint8),
        np.full((3, 4, 3), (1.0, 0.0, 0.0), np.float32),
    ],
)
def test_field_to_tensor_accepts_the_usual_formats(image: object) -> None:
    tensor = field_to_tensor(image)
    assert tensor.shape == (3, 3, 4)
    assert tensor.dtype == torch.float32
    assert tensor[0].min() == 1.0
    assert tensor[1:].max() == 0.0


def test_field_to_tensor_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match="RGB"):
        field_to_tensor(np.zeros((3, 4, 5), np.uint8))
