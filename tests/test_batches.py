import pytest
import torch
import torch.nn.functional as F

from mnist_utils.augment import Augment
from mnist_utils.batches import Batches
from mnist_utils.data import MNIST_MEAN, MNIST_STD, ImageSet


@pytest.fixture
def numbered():
    """100 images whose pixel values and labels name their index."""
    idx = torch.arange(100)
    return ImageSet(idx.to(torch.uint8).view(100, 1, 1).expand(100, 28, 28).contiguous(), idx)


def test_one_pass_covers_every_image_once(numbered):
    batches = Batches(numbered, 32, shuffle=True, seed=0)
    labels = torch.cat([y for _, y in batches])
    assert len(batches) == 4
    assert sorted(labels.tolist()) == list(range(100))
    assert labels.tolist() != list(range(100)), "shuffled"


def test_augmentation_comes_before_normalisation_so_what_it_fills_in_is_background():
    # white digits, a rectangle erased from each and shifted: what comes in is black (0) before normalising, so
    # after it reads -mean/std; erased after normalising, it would read 0, a grey
    white = ImageSet(torch.full((8, 28, 28), 255, dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
    for augment in (Augment(erase_p=1.0), Augment(translate=0.3)):
        x, _ = next(iter(Batches(white, 8, augment=augment, seed=0)))
        background, digit = -MNIST_MEAN / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD
        near_background = (x - background).abs() < 1e-4
        assert near_background.flatten(1).any(dim=1).all(), f"{augment}: every image has background filled in"
        assert not (x.abs() < 1e-4).any(), f"{augment}: nothing reads 0, normalised space's grey"
        assert ((x - digit).abs() < 1e-4).flatten(1).any(dim=1).all()


def test_images_stay_paired_with_labels_and_are_normalised(numbered):
    for x, y in Batches(numbered, 16, shuffle=True, seed=1):
        expected = (y.float() / 255 - MNIST_MEAN) / MNIST_STD
        assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
        assert torch.allclose(x[:, 0, 0, 0], expected)


def test_same_seed_same_batches_every_pass(numbered):
    recipe = Augment(rotation=10, erase_p=0.5)
    a, b = Batches(numbered, 10, shuffle=True, seed=4, augment=recipe), Batches(numbered, 10, shuffle=True, seed=4, augment=recipe)
    passes = []
    for _ in range(2):  # two epochs: the second pass differs from the first but matches its twin
        seen = []
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
            seen.append(xa)
        passes.append(torch.cat(seen))
    assert not torch.equal(passes[0], passes[1]), "each pass draws a new order and new augmentation"
    first = torch.cat([y for _, y in Batches(numbered, 10, shuffle=True, seed=4)])
    other = torch.cat([y for _, y in Batches(numbered, 10, shuffle=True, seed=5)])
    assert not torch.equal(first, other)


def test_unshuffled_order_drop_last_and_resize(numbered):
    batches = Batches(numbered, 30, drop_last=True, size=32)
    assert len(batches) == 3
    labels = torch.cat([y for _, y in batches])
    assert labels.tolist() == list(range(90))
    x, _ = next(iter(batches))
    assert x.shape == (30, 1, 32, 32)


def test_resizing_scales_the_picture_rather_than_framing_it(numbered, mnist):
    # A uniform image stays uniform at any size: no border of padding, no edge effects.
    for x, y in Batches(numbered, 50, size=56):
        assert x.shape[-2:] == (56, 56)
        expected = ((y.float() / 255 - MNIST_MEAN) / MNIST_STD).view(-1, 1, 1, 1).expand_as(x)
        assert torch.allclose(x, expected, atol=1e-5)
    # A digit doubled in size is the same digit, bilinearly interpolated: averaging each 2×2 block of it
    # brings back the 28-px digit.
    digits = mnist.test.head(8)
    original = next(iter(Batches(digits, 8)))[0] * MNIST_STD + MNIST_MEAN
    doubled = next(iter(Batches(digits, 8, size=56)))[0] * MNIST_STD + MNIST_MEAN
    expected = F.interpolate(original, size=(56, 56), mode="bilinear", align_corners=False)
    assert torch.allclose(doubled, expected, atol=1e-5)
    assert (F.avg_pool2d(doubled, 2) - original).abs().max() < 0.35
    assert (F.avg_pool2d(doubled, 2) - original).abs().mean() < 0.03


def test_bad_arguments_are_refused(numbered):
    with pytest.raises(ValueError, match="batch_size"):
        Batches(numbered, 0)
    with pytest.raises(ValueError, match="empty"):
        Batches(numbered.head(0), 8)
    with pytest.raises(ValueError, match="make no whole batch of 8.*lower batch_size"):
        Batches(numbered.head(7), 8, drop_last=True)


def test_augment_passes_augments_only_the_first_passes(mnist):
    augment = Augment(rotation=15, translate=0.1)
    batches = Batches(mnist.train.head(64), 64, augment=augment, augment_passes=2)
    clean = next(iter(Batches(mnist.train.head(64), 64)))[0]
    passes = [next(iter(batches))[0] for _ in range(3)]
    assert not torch.allclose(passes[0], clean) and not torch.allclose(passes[1], clean)
    assert torch.equal(passes[2], clean), "the third pass is not augmented"
