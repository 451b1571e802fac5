"""Pictures → MNIST-style digits: real test digits enlarged, inverted and moved come back as MNIST has them,
and a trained model reads them as well as the originals; bad pictures are refused with the reason."""
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mnist_utils.classifier import Classifier
from mnist_utils.preprocess import (MAX_BYTES, MIN_SIDE, WORKING_SIZE, ImageError, _square_max, decode, preprocess,
                                    read_image_file, to_mnist)
from pictures import blank, closeness, encoded, png_header_only

SUBSET = range(0, 10_000, 25)  # 400 fixed test digits, every class represented


def test_an_enlarged_inverted_off_centre_digit_comes_back_close_to_the_original(mnist, make_picture, step3_checkpoint):
    classifier = Classifier.load(step3_checkpoint)
    original, label = mnist.test.images[0], int(mnist.test.labels[0])
    data = make_picture(original, size=140, canvas=(400, 300), at=(230, 20), dark_ink=True)
    digit = preprocess(data)

    assert digit.pixels.shape == (28, 28) and digit.pixels.dtype == torch.uint8
    assert digit.inverted and digit.source_size == (400, 300)
    assert closeness(digit.pixels, original) > 0.9
    assert (digit.pixels.float() - original.float()).abs().mean() < 0.05 * 255
    unrelated = mnist.test.images[1]  # a 2: the measure must tell digits apart
    assert closeness(digit.pixels, unrelated) < 0.5
    answers = classifier.answers(torch.stack([digit.pixels, original]))
    assert answers[0]["digit"] == answers[1]["digit"] == label


def test_the_centre_of_mass_lands_where_mnist_has_it(mnist, make_picture):
    for index in range(5):
        for at in ((0, 0), (160, 80)):
            pixels = preprocess(make_picture(mnist.test.images[index], size=120, canvas=(280, 200), at=at)).pixels
            weights = pixels.double()
            rows = (weights.sum(1) * torch.arange(28)).sum() / weights.sum()
            cols = (weights.sum(0) * torch.arange(28)).sum() / weights.sum()
            assert abs(rows - 14) <= 0.5 and abs(cols - 14) <= 0.5
            ink = torch.nonzero(pixels > 0)
            assert (ink.max(0).values - ink.min(0).values + 1).max() <= 22  # fitted in 20×20, plus the blur's edge


def test_a_trained_model_keeps_98_percent_of_its_clean_accuracy_on_transformed_digits(mnist, make_picture,
                                                                                       step3_checkpoint):
    classifier = Classifier.load(step3_checkpoint)
    index = torch.tensor(SUBSET)
    images, labels = mnist.test.images[index], mnist.test.labels[index]
    generator = torch.Generator().manual_seed(0)
    pixels = []
    for n, image in enumerate(images):
        size = int(torch.randint(56, 241, (1,), generator=generator))  # 2× to 8.6× enlarged
        width, height = size + int(torch.randint(0, 200, (1,), generator=generator)), size + 60
        at = (int(torch.randint(0, width - size + 1, (1,), generator=generator)),
              int(torch.randint(0, height - size + 1, (1,), generator=generator)))
        data = make_picture(image, size=size, canvas=(width, height), at=at, dark_ink=n % 2 == 0,
                            fmt="JPEG" if n % 3 == 0 else "PNG", mode="RGB" if n % 4 == 0 else "L")
        pixels.append(preprocess(data).pixels)
    def accuracy(digits: torch.Tensor) -> float:
        return float((torch.tensor([a["digit"] for a in classifier.answers(digits)]) == labels).double().mean())

    clean, transformed = accuracy(images), accuracy(torch.stack(pixels))
    print(f"clean {clean:.2%}, transformed {transformed:.2%} on {len(labels)} test digits")
    assert clean > 0.97, "the fixture's model should be a good one"
    assert transformed >= 0.98 * clean


def test_light_ink_on_dark_paper_is_kept_as_it_is(mnist, make_picture):
    light = preprocess(make_picture(mnist.test.images[3], dark_ink=False))
    dark = preprocess(make_picture(mnist.test.images[3], dark_ink=True))
    assert not light.inverted and dark.inverted
    assert closeness(light.pixels, dark.pixels) > 0.99


def test_strokes_on_a_transparent_sheet_are_read_whatever_their_colour(mnist):
    original = mnist.test.images[0]
    alpha = Image.fromarray(original.numpy()).resize((112, 112), Image.Resampling.BICUBIC)
    for ink in ((0, 0, 0), (255, 255, 255)):
        sheet = Image.new("RGBA", (112, 112), (*ink, 0))
        sheet.putalpha(alpha)  # the strokes are opaque, the sheet transparent
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG")
        assert closeness(preprocess(buffer.getvalue()).pixels, original) > 0.9


def test_a_large_photo_is_reduced_before_the_digit_is_looked_for(mnist, make_picture):
    data = make_picture(mnist.test.images[0], size=1500, canvas=(4000, 3000), at=(1200, 700), fmt="JPEG")
    digit = preprocess(data)
    assert digit.source_size == (4000, 3000)
    assert closeness(digit.pixels, mnist.test.images[0]) > 0.85
    # JPEG's draft decoding alone stops at 1000×750 here: the rest of the way to the working size is a resize.
    grey, _ = decode(data)
    assert tuple(grey.shape) == (WORKING_SIZE * 3 // 4, WORKING_SIZE)


def test_a_large_png_is_reduced_to_the_working_size_keeping_its_shape():
    sheet = Image.new("L", (900, 600), 255)
    sheet.paste(0, (300, 100, 420, 500))  # a bar, so the reduction has something to keep
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    grey, size = decode(buffer.getvalue(), working_size=90)  # PNG has no draft mode: only the resize reduces it
    assert size == (900, 600) and tuple(grey.shape) == (60, 90)
    assert float(grey[10:50, 30:42].max()) == 0 and float(grey[:, :25].min()) == 255, "the bar, a tenth the size"


def letter_l(width: int = 120, height: int = 160) -> Image.Image:
    """A dark "L" on white paper: turned a quarter, it is a different shape."""
    sheet = Image.new("L", (width, height), 255)
    sheet.paste(0, (30, 20, 50, 140))  # the upright stroke
    sheet.paste(0, (30, 120, 95, 140))  # the foot, to the right
    return sheet


@pytest.mark.parametrize("orientation, stored_turn", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)])
def test_a_photo_stored_sideways_is_read_the_way_its_exif_orientation_says(orientation, stored_turn):
    # Phones save the sensor's pixels as they are and record in EXIF how to turn them (6: a quarter clockwise,
    # 8: a quarter anticlockwise); the digit must be read as the photographer saw it.
    upright = letter_l()
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = upright.transpose(stored_turn)
    expected = preprocess(encoded(upright)).pixels
    assert not torch.equal(preprocess(encoded(stored)).pixels, expected), "without EXIF it is another shape"
    digit = preprocess(encoded(stored, exif=exif))
    assert torch.equal(digit.pixels, expected)
    assert digit.source_size == stored.size, "the size is the file's, as stored"


def test_a_palette_picture_with_a_transparent_colour_is_read_as_the_strokes_on_it(mnist):
    # GIFs and small PNGs keep a palette, one entry of it transparent: here the sheet is transparent black and
    # the strokes opaque black, so only the transparency tells the strokes from the sheet.
    enlarged = Image.fromarray(mnist.test.images[0].numpy()).resize((112, 112), Image.Resampling.BICUBIC)
    strokes = np.asarray(enlarged) > 127
    sheet = Image.fromarray(strokes.astype(np.uint8), mode="P")
    sheet.putpalette([0, 0, 0] * 2)
    on_paper = io.BytesIO()  # the same strokes, black on white paper
    Image.fromarray(np.where(strokes, 0, 255).astype(np.uint8)).save(on_paper, format="PNG")
    expected = preprocess(on_paper.getvalue()).pixels
    for fmt in ("PNG", "GIF"):
        buffer = io.BytesIO()
        sheet.save(buffer, format=fmt, transparency=0)
        reopened = Image.open(io.BytesIO(buffer.getvalue()))
        assert reopened.mode == "P" and reopened.info["transparency"] == 0, "a palette with a transparent colour"
        digit = preprocess(buffer.getvalue())
        assert digit.inverted, "dark strokes: the sheet is read as light paper"
        assert torch.equal(digit.pixels, expected)


@pytest.mark.parametrize("data, kind", [
    (b"", "empty"),
    (b"GIF89a but not really an image", "not_image"),
    (b"%PDF-1.7\n" + b"0" * 100, "not_image"),
    (blank(255), "blank"),
    (blank(0), "blank"),
    (blank(128), "blank"),
    (png_header_only(8_000, 8_000), "too_many_pixels"),  # above our limit, below Pillow's own
    (png_header_only(100_000, 100_000), "too_many_pixels"),  # far above Pillow's own
    (b"\0" * (MAX_BYTES + 1), "too_large"),
], ids=["empty", "text", "pdf", "white", "black", "grey", "64-megapixels", "10-gigapixels", "over-5-MB"])
def test_bad_pictures_are_refused_with_the_reason(data, kind):
    with pytest.raises(ImageError) as refused:
        preprocess(data)
    assert refused.value.kind == kind
    assert str(refused.value).endswith(".") and len(str(refused.value)) > 30


def test_a_truncated_picture_is_refused(mnist, make_picture):
    data = make_picture(mnist.test.images[0])
    with pytest.raises(ImageError) as refused:
        preprocess(data[: len(data) // 2])
    assert refused.value.kind == "not_image" and "truncated" in str(refused.value)


def test_a_picture_too_small_to_hold_a_digit_is_refused_and_the_smallest_allowed_is_read(mnist):
    """A few pixels of noise read as some digit: a picture under MIN_SIDE on its longer side is refused, saying how
    large to make it; one MIN_SIDE wide (an MNIST digit shrunk to fit) is read, and so is a narrow one that tall."""
    noise = torch.Generator().manual_seed(0)
    for width, height in ((1, 1), (2, 2), (MIN_SIDE - 1, MIN_SIDE - 1), (MIN_SIDE - 1, 2)):
        pixels = (torch.rand(height, width, generator=noise) * 255).to(torch.uint8).numpy()
        with pytest.raises(ImageError) as refused:
            preprocess(encoded(Image.fromarray(pixels)))
        assert refused.value.kind == "too_small"
        assert f"only {width}×{height} pixels" in str(refused.value) and f"at least {MIN_SIDE} pixels" in str(refused.value)
    digit = Image.fromarray(mnist.test.images[0].numpy())
    for size in ((MIN_SIDE, MIN_SIDE), (2, MIN_SIDE)):
        assert preprocess(encoded(digit.resize(size, Image.Resampling.BOX))).source_size == size


def test_image_files_missing_unreadable_or_too_large_are_refused(tmp_path):
    (tmp_path / "big.png").write_bytes(b"\0" * (MAX_BYTES + 1))
    for path, kind in ((tmp_path / "missing.png", "missing"), (tmp_path, "unreadable"),
                       (tmp_path / "big.png", "too_large")):
        with pytest.raises(ImageError) as refused:
            read_image_file(path)
        assert refused.value.kind == kind and str(path) in str(refused.value)
    assert f"is {MAX_BYTES + 1:,} bytes, more than the {MAX_BYTES:,} (5 MB)" in str(refused.value), "one byte too many"


def test_to_mnist_leaves_an_mnist_digit_as_it_is(mnist):
    """An MNIST digit is already in the form the preprocessing makes: it must come back nearly unchanged."""
    for index in range(20):
        original = mnist.test.images[index]
        pixels, inverted = to_mnist(original.float())
        assert not inverted
        assert closeness(pixels, original) > 0.95


def test_a_16_bit_greyscale_scan_reads_like_its_8_bit_picture(mnist, make_picture):
    picture = Image.open(io.BytesIO(make_picture(mnist.test.images[0], dark_ink=True))).convert("L")
    wide = (np.asarray(picture, dtype=np.uint32) * 257).astype(np.uint16)  # 0-255 → 0-65535: the same tones
    scan = io.BytesIO()
    Image.fromarray(wide).save(scan, format="PNG")
    assert Image.open(io.BytesIO(scan.getvalue())).mode == "I;16", "a real 16-bit file"
    narrow = io.BytesIO()
    picture.save(narrow, format="PNG")
    assert torch.equal(preprocess(scan.getvalue()).pixels, preprocess(narrow.getvalue()).pixels)


def test_a_16_bit_scan_twice_the_working_size_or_more_reads_like_its_8_bit_picture(mnist, make_picture):
    # Pillow cannot reduce a 16-bit picture 2× or more: a 2,048-pixel scan was refused as a damaged file
    picture = Image.open(io.BytesIO(make_picture(mnist.test.images[0], dark_ink=True))).convert("L")
    picture = picture.resize((2048, 2048), Image.Resampling.NEAREST)
    scan, narrow = io.BytesIO(), io.BytesIO()
    Image.fromarray((np.asarray(picture, dtype=np.uint32) * 257).astype(np.uint16)).save(scan, format="PNG")
    picture.save(narrow, format="PNG")
    read, reference = preprocess(scan.getvalue()), preprocess(narrow.getvalue())
    assert read.inverted == reference.inverted and (read.pixels - reference.pixels).abs().max() <= 1


@pytest.mark.parametrize("bits", [9, 10, 12, 14])
def test_a_scan_of_fewer_bits_stored_in_16_reads_like_its_8_bit_picture(bits, mnist, make_picture):
    # a 12-bit scanner's white is 4095: scaled as 16 bits it was 16 of 255, a blank picture, while 255 read whole
    picture = Image.open(io.BytesIO(make_picture(mnist.test.images[0], dark_ink=True))).convert("L")
    tones = np.asarray(picture, dtype=np.float64)
    scan = io.BytesIO()
    Image.fromarray(np.round(tones * (2 ** bits - 1) / 255).astype(np.uint16)).save(scan, format="PNG")
    narrow = io.BytesIO()
    picture.save(narrow, format="PNG")
    read, reference = preprocess(scan.getvalue()), preprocess(narrow.getvalue())
    assert read.pixels.shape == reference.pixels.shape and read.inverted == reference.inverted
    assert (read.pixels.int() - reference.pixels.int()).abs().max() <= 1, "the same tones, to the scan's levels"


def test_no_mnist_test_digit_as_it_is_is_taken_for_dark_ink(mnist):
    # the sheet rule must leave MNIST's own digits alone: a loop's ring (6, 8, 9, 0) once covered enough rows and
    # columns at a lower share to be cut as a sheet, its hole read as the ink
    assert [i for i, image in enumerate(mnist.test.images) if to_mnist(image)[1]] == []


def test_the_running_maximum_is_max_pooling_in_fewer_passes():
    # the paper's level under uneven light comes from squares a tenth of the picture wide: max-pooling's cost grows
    # with the square, the blocked running maximum's does not; both must give the same levels, at every size
    generator = torch.Generator().manual_seed(0)
    for height, width in ((410, 512), (3, 7), (1, 1), (600, 5)):
        grey = torch.rand(height, width, generator=generator) * 255
        for side in (3, 5, 31, 51):
            pooled = F.max_pool2d(grey[None, None], (side, 1), stride=1, padding=(side // 2, 0))
            pooled = F.max_pool2d(pooled, (1, side), stride=1, padding=(0, side // 2))[0, 0]
            assert torch.equal(_square_max(grey, side), pooled), (height, width, side)
