import dataclasses

import pytest
import torch
import torch.nn.functional as F

from mnist_utils.augment import Augment, affine_grid, random_affine, random_erasing
from mnist_utils.recipes import load_config


def digits(mnist, n=64):
    return mnist.test.images[:n].unsqueeze(1).float() / 255


def centre_of_mass(images):
    """(row, col) centre of mass of each image, in pixels."""
    h, w = images.shape[-2:]
    mass = images.sum(dim=(-1, -2)).squeeze(1)
    rows = (images.sum(dim=-1).squeeze(1) * torch.arange(h)).sum(1) / mass
    cols = (images.sum(dim=-2).squeeze(1) * torch.arange(w)).sum(1) / mass
    return torch.stack([rows, cols], dim=1)


def test_identity_parameters_return_the_input(mnist):
    x = digits(mnist)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(Augment()(x, g), x)
    assert torch.equal(random_affine(x, g), x)
    assert torch.equal(random_erasing(x, g, p=0.0), x)
    # The full resampling path with a zero-range transform is also the identity (up to rounding).
    assert torch.allclose(random_affine(x, g, scale=(1.0, 1.0 + 1e-9)), x, atol=1e-5)


def test_rotation_keeps_the_centre_of_mass_near_the_centre(mnist):
    x = digits(mnist)
    rotated = random_affine(x, torch.Generator().manual_seed(1), rotation=30)
    assert not torch.allclose(rotated, x), "30° rotations must change the images"
    # MNIST digits are centred by centre of mass; rotating about the image centre keeps it there.
    centre = torch.tensor([13.5, 13.5])
    before = (centre_of_mass(x) - centre).norm(dim=1)
    after = (centre_of_mass(rotated) - centre).norm(dim=1)
    assert after.max() < 1.5 and (after - before).abs().max() < 1.0
    assert rotated.sum().item() == pytest.approx(x.sum().item(), rel=0.03), "rotation keeps the ink"


def test_translation_moves_digits_by_at_most_the_allowed_shift(mnist):
    x = digits(mnist)
    shifted = random_affine(x, torch.Generator().manual_seed(2), translate=0.1)
    moved = (centre_of_mass(shifted) - centre_of_mass(x)).abs()
    assert moved.max() <= 0.1 * 28 + 0.5
    assert moved.max() > 1.0, "some digits must move by more than a pixel"


def test_same_seed_same_batch_other_seed_other_batch(mnist):
    x = digits(mnist)
    recipe = Augment(rotation=10, translate=0.1, scale=(0.9, 1.1), shear=10, erase_p=0.5)
    a = recipe(x, torch.Generator().manual_seed(7))
    b = recipe(x, torch.Generator().manual_seed(7))
    c = recipe(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_erasing_blanks_one_rectangle_of_the_asked_size():
    x = torch.ones(200, 1, 28, 28)
    erased = random_erasing(x, torch.Generator().manual_seed(3), p=1.0, area=(0.05, 0.1))
    blank_fraction = (erased == 0).float().mean(dim=(1, 2, 3))
    assert (blank_fraction > 0).all(), "p=1 erases every image"
    assert blank_fraction.min() >= 0.03 and blank_fraction.max() <= 0.13
    untouched = random_erasing(x, torch.Generator().manual_seed(3), p=0.5)
    assert 40 < ((untouched == 0).flatten(1).any(1)).sum() < 160, "p=0.5 erases about half"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_result_on_cuda(mnist):
    x = digits(mnist)
    recipe = Augment(rotation=10, translate=0.1, erase_p=0.5)
    on_cpu = recipe(x, torch.Generator().manual_seed(5))
    on_gpu = recipe(x.cuda(), torch.Generator().manual_seed(5)).cpu()
    assert torch.allclose(on_cpu, on_gpu, atol=1e-4)


def test_describe_names_what_is_on():
    assert Augment().describe() == "none" and not Augment().enabled
    assert Augment(rotation=7, translate=0.1).describe() == "rotation ±7°, shift ±10%"


@pytest.mark.parametrize("size", [(28, 28), (20, 36)])
def test_the_sampling_grid_is_torchs_affine_grid(size):
    theta = torch.randn(5, 2, 3, dtype=torch.float64)
    expected = F.affine_grid(theta, [5, 1, *size], align_corners=False)
    assert torch.allclose(affine_grid(theta, size), expected, rtol=0, atol=1e-12)


def ink_radius(images):
    """Root-mean-square distance of the ink from the image centre, in pixels: how far a digit spreads."""
    h, w = images.shape[-2:]
    rows = torch.arange(h, dtype=images.dtype).view(h, 1) - (h - 1) / 2
    cols = torch.arange(w, dtype=images.dtype).view(1, w) - (w - 1) / 2
    ink = images.squeeze(1)
    return ((ink * (rows ** 2 + cols ** 2)).sum(dim=(1, 2)) / ink.sum(dim=(1, 2))).sqrt()


@pytest.mark.parametrize("zoom", [1.2, 0.8])
def test_a_fixed_zoom_scales_each_digits_extent_by_that_factor(mnist, zoom):
    x = digits(mnist)
    zoomed = random_affine(x, torch.Generator().manual_seed(4), scale=(zoom, zoom))
    # The zoom is about the image centre, so a digit's spread around it grows (or shrinks) by `zoom`; the few
    # digits reaching near the border lose a little ink over the edge when enlarged.
    ratio = ink_radius(zoomed) / ink_radius(x)
    assert ratio.median().item() == pytest.approx(zoom, abs=0.01)
    assert (ratio - zoom).abs().max() < 0.15
    ink = zoomed.sum().item() / x.sum().item()
    assert ink == pytest.approx(zoom ** 2, rel=0.05), "the ink's area scales by zoom²"


def test_shear_slants_a_vertical_bar_by_at_most_the_allowed_angle():
    bar = torch.zeros(200, 1, 28, 28)
    bar[:, :, 4:24, 13:15] = 1
    sheared = random_affine(bar, torch.Generator().manual_seed(6), shear=30)
    # x-shear moves each row sideways in proportion to its height: the bar's column drifts by tan(angle) a row.
    rows = torch.arange(28, dtype=torch.float32)
    cols = (sheared.squeeze(1) * torch.arange(28)).sum(2) / sheared.squeeze(1).sum(2).clamp_min(1e-9)
    ink_rows = slice(8, 20)  # rows well inside the bar: its ends are blurred by the resampling
    centred = rows[ink_rows] - rows[ink_rows].mean()
    slope = ((cols[:, ink_rows] - cols[:, ink_rows].mean(1, keepdim=True)) * centred).sum(1) / (centred ** 2).sum()
    limit = torch.tan(torch.deg2rad(torch.tensor(30.0)))
    assert slope.abs().max() <= limit + 0.02, "no slant beyond ±30°"
    assert slope.max() > 0.8 * limit and slope.min() < -0.8 * limit, "slants both ways, up to nearly ±30°"


@pytest.mark.parametrize("recipe, message", [
    (Augment(shear=90), "shear: degrees in [0, 90), got 90"),
    (Augment(shear=-5), "shear: degrees in [0, 90), got -5"),
    (Augment(erase_area=(0, 0.1)), "erase_area: [smallest, largest] share of the image, within (0, 1], got [0, 0.1]"),
    (Augment(erase_area=(0.2, 0.1)), "erase_area: [smallest, largest] share of the image, within (0, 1], "
                                     "got [0.2, 0.1]"),
    (Augment(erase_area=(0.1, 1.5)), "erase_area: [smallest, largest] share of the image, within (0, 1], "
                                     "got [0.1, 1.5]"),
    (Augment(erase_ratio=(0, 3.3)), "erase_ratio: [smallest, largest] aspect ratio, above 0 and finite, got [0, 3.3]"),
    (Augment(erase_ratio=(3.3, 0.3)), "erase_ratio: [smallest, largest] aspect ratio, above 0 and finite, "
                                    "got [3.3, 0.3]"),
], ids=["shear-90", "shear-negative", "area-0", "area-reversed", "area-above-1", "ratio-0", "ratio-reversed"])
def test_out_of_range_shear_and_erasing_are_named_with_their_range(recipe, message):
    assert recipe.problems() == [message]


def test_the_edges_of_each_range_are_accepted():
    assert Augment(rotation=180, shear=89.9, translate=0.5, scale=(10, 10), erase_p=1,
                   erase_area=(1e-3, 1), erase_ratio=(1e-3, 1e3)).problems() == []


FIELDS = [field.name for field in dataclasses.fields(Augment)]  # a field added to Augment is tested here by itself
SHAPES_ANOTHER = {"erase_area": "erase_p", "erase_ratio": "erase_p"}  # fields that only shape another's transform


def test_a_transform_left_off_draws_no_random_number(mnist):
    """A transform added to Augment changes no batch of a recipe that leaves it off (nor any figure recorded from
    one) only if, off, it leaves the generator as it found it: nothing drawn with every transform off, and with
    Step 3's (rotation, shift, zoom) the affine's five numbers per image, no more."""
    for augment, per_image in ((Augment(), 0), (load_config("step3").augment, 5)):
        generator, expected = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        augment(digits(mnist, 8), generator)
        torch.rand(8 * per_image, generator=expected, dtype=torch.float64)
        assert torch.equal(generator.get_state(), expected.get_state()), f"{augment.describe()}: another draw"


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_out_of_range_is_refused_by_its_name_and_on_is_described(name):
    value = getattr(Augment(), name)
    wrong = (2.0, 1.0) if isinstance(value, tuple) else -1.0  # a range the wrong way round, a negative amount
    assert any(problem.startswith(f"{name}: ") for problem in Augment(**{name: wrong}).problems()), \
        f"Augment.problems() says nothing of {name}={wrong}: check its range there"
    switch = SHAPES_ANOTHER.get(name, name)  # the transform, or the one it shapes: on, by a valid amount
    on = Augment(**{switch: (0.9, 1.1) if isinstance(getattr(Augment(), switch), tuple) else 0.5})
    assert on.problems() == [] and on.describe() != "none", f"Augment.describe() does not say {name} is on"
