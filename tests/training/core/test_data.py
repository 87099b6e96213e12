import numpy as np
import pytest
import torch
from PIL import Image

from inference.core.crops import crop_cells, field_to_tensor
from training.core.data import (
    Augment,
    CropDataset,
    CropSpec,
    DetectionDataset,
    SeededSampler,
    balanced_weights,
    clip_boxes,
    colour_jitter,
    flip_rotate,
    window_crop,
    zoom,
)
from training.core.records import CellRecord, FieldRecord, classifier_items, countability_items


def _image_with_rectangle(height=48, width=64, box=(10, 5, 30, 20)):
    image = torch.zeros(3, height, width)
    x0, y0, x1, y1 = box
    image[:, y0:y1, x0:x1] = 1.0
    return image, torch.tensor([box], dtype=torch.float32)


def _bright_bounds(image, threshold=0.5):
    ys, xs = torch.nonzero(image[0] > threshold, as_tuple=True)
    return torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)


@pytest.mark.parametrize("hflip", [False, True])
@pytest.mark.parametrize("vflip", [False, True])
@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_flip_rotate_moves_boxes_with_pixels(hflip, vflip, turns):
    image, boxes = _image_with_rectangle()
    out, out_boxes = flip_rotate(image, boxes, hflip, vflip, turns)
    expected_shape = (48, 64) if turns % 2 == 0 else (64, 48)
    assert tuple(out.shape[-2:]) == expected_shape
    assert torch.equal(out_boxes, _bright_bounds(out))


@pytest.mark.parametrize("scale", [0.7, 1.0, 1.3])
def test_zoom_moves_boxes_with_pixels(scale):
    image, boxes = _image_with_rectangle(box=(24, 16, 40, 32))
    gen = torch.Generator().manual_seed(3)
    out, out_boxes = zoom(image, boxes, scale, gen)
    assert out.shape == image.shape
    assert torch.allclose(out_boxes, _bright_bounds(out), atol=1.5)


def test_clip_boxes_drops_slivers():
    boxes = torch.tensor([[-50.0, 0, 10, 10], [5, 5, 20, 20], [62, 0, 72, 10], [-2, 0, 10, 10]])
    kept = clip_boxes(boxes, 64, 64)
    assert kept.tolist() == [[5.0, 5.0, 20.0, 20.0], [0.0, 0.0, 10.0, 10.0]]


def test_colour_jitter_stays_in_range_and_is_seeded():
    image = torch.rand(3, 16, 16)
    a = colour_jitter(image.clone(), Augment(), torch.Generator().manual_seed(1))
    b = colour_jitter(image.clone(), Augment(), torch.Generator().manual_seed(1))
    c = colour_jitter(image.clone(), Augment(), torch.Generator().manual_seed(2))
    assert a.shape == image.shape
    assert float(a.min()) >= 0
    assert float(a.max()) <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.allclose(a, image)


def test_seeded_sampler():
    first = list(SeededSampler(10, seed=5))
    assert list(SeededSampler(10, seed=5)) == first
    assert sorted(i for i, _ in first) == list(range(10))
    assert list(SeededSampler(10, seed=6)) != first
    weighted = [i for i, _ in SeededSampler(4000, seed=0, weights=[1.0] * 2000 + [3.0] * 2000)]
    share = sum(1 for i in weighted if i >= 2000) / len(weighted)
    assert 0.72 < share < 0.78


def test_balanced_weights():
    weights = balanced_weights([0, 0, 0, 1], 1.0)
    assert weights == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])
    assert balanced_weights([0, 0, 1], 0.0) == [1.0, 1.0, 1.0]


@pytest.fixture
def one_field(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    path = tmp_path / "f.png"
    Image.fromarray(pixels).save(path)
    cells = (
        CellRecord((5.0, 6.0, 20.0, 18.0), True, 12),
        CellRecord((30.0, 10.5, 52.0, 39.0), False, None),
        CellRecord((40.0, 0.0, 56.0, 12.0), True, 5),
    )
    return pixels, FieldRecord("field:1", str(path), 56, 40, "P", "train", cells)


def test_crops_are_the_pipeline_crops(one_field):
    pixels, field = one_field
    spec = CropSpec(size=24, margin=0.15, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    items = classifier_items([field], 21)
    assert [i.label for i in items] == [12, 5]
    dataset = CropDataset([field], items, spec)
    boxes = torch.tensor([c.box for c in field.cells if c.class_index is not None])
    expected = crop_cells([field_to_tensor(pixels)], [boxes], size=24, margin=0.15, mean=spec.mean, std=spec.std)
    for index in range(len(items)):
        crop, label = dataset[index]
        assert torch.allclose(crop, expected[index], atol=1e-4)  # float rounding of the shifted coordinates
        assert label == items[index].label
    assert [i.label for i in countability_items([field])] == [1, 0, 1]


def test_augmented_crop_is_seeded(one_field):
    _, field = one_field
    spec = CropSpec(size=24, margin=0.15, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    dataset = CropDataset([field], countability_items([field]), spec, augment=Augment())
    a, _ = dataset[(0, 11)]
    b, _ = dataset[(0, 11)]
    c, _ = dataset[(0, 12)]
    plain, _ = dataset[0]
    assert a.shape == (3, 24, 24)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, plain)


def test_class_index_out_of_range(one_field):
    _, field = one_field
    bad = FieldRecord("k", field.image_path, 56, 40, "P", "train", (CellRecord((0, 0, 5, 5), True, 30),))
    with pytest.raises(ValueError, match="class_index 30"):
        classifier_items([bad], 21)


def test_detection_dataset_shrinks_and_augments(one_field):
    pixels, field = one_field
    plain = DetectionDataset([field])
    image, target = plain[0]
    assert torch.allclose(image, field_to_tensor(pixels))
    assert target["boxes"].tolist() == [list(c.box) for c in field.cells]
    assert target["labels"].tolist() == [1, 1, 1]
    shrunk_image, shrunk = DetectionDataset([field], input_size=(20, 28))[0]
    assert tuple(shrunk_image.shape[-2:]) == (20, 28)
    assert torch.allclose(shrunk["boxes"], target["boxes"] / 2)
    # A fixed-size model (SSD) sees every field at exactly its size, each axis scaled on its own.
    fixed_image, fixed = DetectionDataset([field], fixed_size=(28, 10))[0]
    assert tuple(fixed_image.shape[-2:]) == (10, 28)
    assert torch.allclose(fixed["boxes"], target["boxes"] * torch.tensor([0.5, 0.25, 0.5, 0.25]))
    augmented = DetectionDataset([field], augment=Augment())
    for seed in range(10):
        image, target = augmented[(0, seed)]
        height, width = image.shape[-2:]
        boxes = target["boxes"]
        assert len(boxes) == len(target["labels"])
        assert bool((boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width).all())
        assert bool((boxes[:, 1] >= 0).all() and (boxes[:, 3] <= height).all())
        assert bool((boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all())


@pytest.mark.parametrize("size", [8, 24, 64])
def test_window_crop_equals_the_whole_field_crop(size):
    rng = np.random.default_rng(1)
    pixels = torch.from_numpy(rng.integers(0, 255, (3, 120, 150), dtype=np.uint8))
    spec = CropSpec(size=size, margin=0.15, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    boxes = [(10.3, 20.7, 60.2, 75.9), (0.0, 0.0, 33.0, 21.0), (120.5, 90.0, 150.0, 120.0), (-20, -20, 5, 5)]
    for box in boxes:
        b = torch.tensor([box], dtype=torch.float32)
        whole = crop_cells([pixels.float() / 255], [b], size=size, margin=0.15, mean=spec.mean, std=spec.std)
        assert torch.allclose(window_crop(pixels, b, spec), whole, atol=1e-4), box
