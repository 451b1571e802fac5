"""Any picture of a digit → an MNIST-style 28×28 image, the way the MNIST digits themselves were made.

MNIST's digits are light ink on black, fitted into a 20×20 box keeping their aspect ratio, and placed in a
28×28 field so that their centre of mass falls on its centre (pixel 14, 14). A picture from a camera, a
scanner or a canvas is brought to the same form:

1. decode (PNG, JPEG, WebP, GIF, BMP) after checking its size in bytes and its pixel count *before*
   decoding, so that a small file cannot unpack to gigabytes; reduce a large picture to a working size;
2. greyscale; transparent pixels become paper of the colour that contrasts with the ink;
3. polarity: the border's median is the paper; light paper (dark ink) is inverted;
4. the paper's level is taken away and the ink stretched to full range; faint texture is dropped. Where the
   light changes gradually along the border (a photo lit from one side, or darker at its corners), or at once
   between light stretches of it and shaded ones (a shadow's edge across the paper, a band of shade), the paper's
   level around each pixel is taken away instead, and the ink is whichever of dark and light strokes the picture
   has more of (this, not step 3, gives the polarity; beside a shadow, the light paper along the border does);
   faint marks away from the strokes, such as a ruled or squared sheet's lines, are taken away;
5. crop to the ink, fit into 20×20, paste into 28×28 with the centre of mass at the centre.

Everything after decoding works on whole tensors: no Python loop over pixels.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024  # an upload or image file larger than this is refused unread
FILE_MAX_BYTES = 50 * 1024 * 1024  # a file on this machine (`predict`): a phone's photo of 3-12 MB passes
MAX_PIXELS = 40_000_000  # width × height above which a picture is refused undecoded (a 40 MP photo passes)
MIN_SIDE = 7  # px on the longer side below which a picture is refused: MNIST's own digits shrunk smaller read wrong
# more often than right, and a picture of noise that small reads as some digit
# Pillow warns of pictures above half its own, far higher, limit; MAX_PIXELS refuses them first, with a message
# that says so plainly. Set once here: a filter set per call is not safe where the app decodes in threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
WORKING_SIZE = 512  # longest side a larger picture is reduced to before the digit is looked for
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # the only decoders Pillow may try

SIZE, BOX = 28, 20  # MNIST's field and the box its digits are fitted into
CENTRE = 14.0  # where MNIST's centres of mass lie (their mean over the test set is 14.0, 14.0)
INK_LEVEL = 0.25  # share of the strongest ink above which a pixel counts as ink when cropping
NOISE_LEVEL = 0.10  # share of the strongest ink below which a pixel is paper texture, set to 0
STRONG_INK = 0.5  # share of the strongest ink above which a pixel is a stroke's: a sheet's ruled lines are fainter
STROKE_REACH = 0.02  # of the shorter side (3 px at least): fainter ink this close to a stroke is its soft edge
MARK_WIDTH = 5  # px at WORKING_SIZE at most, where ruled lines are 1-3: fainter ink in thinner lines may be a mark
FAINT_MARKS = 0.02  # of the picture that faint marks cover at least where they are taken away
MIN_CONTRAST = 32.0  # grey levels between paper and the strongest ink below which a picture is blank
SHEET_SHARE = 0.5  # of a row (column) that a light sheet covers; a light digit's strokes cover far less
SHEET_INSET = 0.03  # of the sheet's box cut from each side: its edge, its shadow, the table at its corners
SHEET_EDGE_INK = 0.1  # of the cut sheet's frame that ink may cover; more, and the "sheet" is a light digit's strokes
UNEVEN_LIGHT = 16.0  # grey levels the border's may span and be one paper level (see _border_light)
LIGHT_STEP = 25.0  # grey levels the border's may change by over 1% of its length, where the light changes gradually
SHADE_SHARE = 0.1  # of the border's length that the shade of a shadow (and the light beside it) covers at least
SHADE_FLAT = 0.7  # of the shaded border at least within UNEVEN_LIGHT of its darkest level: strokes' crossings dip
SHEET_LIGHT = 0.75  # of a picture a turned sheet's paper covers at least: its table shows in its corners only
SHADE_LEVEL = 0.15  # of the light paper's level that paper in a shadow keeps at least; darker is ink or a dark ground
SHADOW_SIDE = 64  # pixels a picture with a shadow's edge has at least each way: smaller ones are crops and drawings
EDGE_SQUARE = 9  # px: where the paper's level steps by more than UNEVEN_LIGHT within this square lies a shadow's edge
EDGE_LINE = 3  # px: a dark line thinner than this along a shadow's edge is the edge's JPEG ringing, not a stroke
LIGHT_WINDOW = 0.1  # of the shorter side: strokes thinner than this are told from the paper under uneven light
NOISE_SQUARE = 3  # px: under uneven light a photo is averaged over this square first, its sensor noise with it
MAX_GAIN = 4.0  # ink in the shade counts up to this many times its contrast: more would raise the noise of near black


class ImageError(ValueError):
    """A picture that cannot be read as a digit. `kind` says why: 'empty', 'too_large', 'too_many_pixels',
    'not_image', 'too_small', 'blank', 'missing' or 'unreadable'; the message says what to do."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Digit:
    """A picture made to look like MNIST."""

    pixels: torch.Tensor  # uint8 (28, 28): light ink on black, as in MNIST
    inverted: bool  # the picture had dark ink on light paper
    source_size: tuple[int, int]  # (width, height) of the picture as uploaded


def _too_large(what: str, size: int, max_bytes: int) -> ImageError:
    """The error for `what` (a path, or 'The image'), `size` bytes against the `max_bytes` allowed: in bytes, which
    a rounded '5.0 MB, more than the 5 MB' would not tell apart."""
    return ImageError("too_large", f"{what} is {size:,} bytes, more than the {max_bytes:,} ({max_bytes / 2**20:g} MB) "
                                   "an image may have: crop or scale it down.")


def _too_many_pixels(size: str, max_pixels: int) -> ImageError:
    """The error for a picture of `size` pixels (its width×height, or 'far too many') against the `max_pixels`
    allowed."""
    return ImageError("too_many_pixels", f"The image has {size} pixels, more than the {max_pixels / 1e6:.0f} "
                                         "million allowed: scale it down.")


def read_image_file(path: Path | str, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of an image file, refusing a missing, unreadable or oversized one with an ImageError."""
    path = Path(path)
    if not path.exists():
        raise ImageError("missing", f"{path} does not exist: check the path of the image.")
    if path.is_dir():
        raise ImageError("unreadable", f"{path} is a folder: pass the path of a PNG or JPEG image, or its pictures "
                                       f"({path / '*.png'}).")
    if not path.is_file():
        raise ImageError("unreadable", f"{path} is not a regular file: pass the path of a PNG or JPEG image.")
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_large(str(path), size, max_bytes)
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageError("unreadable", f"{path} cannot be read ({error.strerror}): check its permissions.") from None


def decode(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
           working_size: int = WORKING_SIZE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Greyscale pixels (float32 (H, W), 0 black to 255 white) of an encoded picture, at most `working_size`
    on its longest side, and the picture's own (width, height)."""
    if not data:
        raise ImageError("empty", "The image is empty (0 bytes): choose a PNG or JPEG file, or draw a digit.")
    if len(data) > max_bytes:
        raise _too_large("The image", len(data), max_bytes)
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size  # read from the header: nothing is decoded yet
    except Image.DecompressionBombError:  # Pillow's own, far higher, limit
        raise _too_many_pixels("far too many", max_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImageError("not_image", "This is not an image that can be read as PNG, JPEG, WebP, GIF or BMP: "
                                      "use a picture of a digit.") from None
    if width * height > max_pixels:
        raise _too_many_pixels(f"{width}×{height}", max_pixels)
    if max(width, height) < MIN_SIDE:
        raise ImageError("too_small", f"The image is only {width}×{height} pixels, too small to hold a digit: use a "
                                      f"picture at least {MIN_SIDE} pixels on its longer side (MNIST's are 28×28).")
    try:
        image.draft("L", (working_size, working_size))  # JPEG: decode at a reduced scale, far less memory
        image = ImageOps.exif_transpose(image)  # phone photos store their rotation in EXIF
        # Pillow reduces no 16-bit picture 2× or more (a 2,048-pixel scan); 32-bit integers, the same tones, it does
        if image.mode.startswith("I;16"):
            image = image.convert("I")
        image.thumbnail((working_size, working_size), Image.Resampling.BOX)
        return _greyscale(image), (width, height)
    except (OSError, ValueError, SyntaxError):
        raise ImageError("not_image", "The image file is damaged or truncated and cannot be decoded: "
                                      "save it again as PNG or JPEG.") from None


def _greyscale(image: Image.Image) -> torch.Tensor:
    """Luminance as float32 (H, W); transparent pixels become paper contrasting with the opaque ink."""
    has_alpha = "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)
    if image.mode == "I":  # 16-bit greyscale (scanners), widened by `decode`: convert("L") clips it
        wide = np.asarray(image, dtype=np.float32)
        # Scanners and cameras store 10, 12 or 14 bits in 16: tones scale by the fewest bits that hold the brightest
        # (a 12-bit white, 4095, is 255), so that one grey level more at the top does not make the picture 257 times
        # darker. 8 bits or fewer stay as they are; 16 divide by 257 (65535 / 257 = 255).
        bits = max(8, int(np.ceil(np.log2(max(float(wide.max()), 0.0) + 1))))
        return torch.from_numpy(wide / ((2 ** bits - 1) / 255))
    if not has_alpha:
        return torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32).copy())
    rgba = image.convert("RGBA")
    luminance = torch.from_numpy(np.asarray(rgba.convert("L"), dtype=np.float32).copy())
    alpha = torch.from_numpy(np.asarray(rgba.getchannel("A"), dtype=np.float32).copy()) / 255
    opaque = alpha > 0.5
    # Strokes drawn on a transparent sheet carry no paper colour of their own: use the opposite of the ink's.
    paper = 255.0 if not opaque.any() or luminance[opaque].mean() < 128 else 0.0
    return luminance * alpha + paper * (1 - alpha)


def _frame_width(grey: torch.Tensor) -> int:
    """Pixels across the frame where the paper is read: 2% of the picture's shorter side, at least one."""
    return max(1, round(0.02 * min(grey.shape)))


def _frame(grey: torch.Tensor) -> torch.Tensor:
    """Whether each pixel lies in the frame (`_frame_width` wide)."""
    b = _frame_width(grey)
    frame = torch.ones_like(grey, dtype=torch.bool)
    frame[b:-b, b:-b] = False
    return frame


def _paper_level(grey: torch.Tensor) -> float:
    """The median of the frame: the paper, wherever the digit is."""
    return float(grey[_frame(grey)].median())


def _border_profile(grey: torch.Tensor) -> torch.Tensor:
    """The frame's level along its length, clockwise from the top left corner: the median across its width."""
    b = _frame_width(grey)
    return torch.cat([grey[:b].median(dim=0).values, grey[:, -b:].median(dim=1).values,
                      grey[-b:].median(dim=0).values.flip(0), grey[:, :b].median(dim=1).values.flip(0)])


def _border_light(grey: torch.Tensor) -> tuple[str, float]:
    """How the light falls along the picture's border, and the border's lightest level. The border's level
    (`_border_profile`, a running median over 2% of its length taking out strokes narrower than half that) is
    'even' where it spans UNEVEN_LIGHT at most: one paper level stands for the whole picture. Else it is 'gradual'
    where it changes by LIGHT_STEP at most over each 1% of the length (a photo lit from one side, a vignette). Else
    it changes at once, between light stretches and dark ones, and is 'split' where the dark ones are paper in the
    shade (at SHADE_LEVEL of the light level or more, in a picture of SHADOW_SIDE or more each way), by either rule:

    - one light stretch and one dark one, each at least SHADE_SHARE of the length: a shadow's edge across the paper,
      or a sheet's on a table;
    - dark stretches at one level (SHADE_FLAT), lighter than the picture's darkest pixel, its ink, by MIN_CONTRAST,
      each at least as long as the square `_ink` reads the paper in (`_light_window`), half the border at most
      together unless SHEET_LIGHT of the picture is light (a turned sheet's table shows in its corners only, where a
      board's chalk, even thick and cropped close, leaves more of it dark), and a lone one round a corner: a band of
      shade across the photo, a shaded corner, a turned sheet's table in its corners.

    It is 'crossed' otherwise, and read with one level, as an even border is: wide strokes reaching the border (their
    crossings dip to the ink's level, each to its own depth; a stroke's end touches one side), a light stroke along
    it on a dark ground, a digit cropped to its strokes, a light digit on a board that fills most of the border."""
    profile = _border_profile(grey)
    step = max(1, len(profile) // 100)
    loop = torch.cat([profile, profile[:2 * step]])  # the border closes on itself
    level = loop.unfold(0, 2 * step + 1, 1).median(dim=1).values  # level[i]: around profile[i + step]
    high, low = float(level.max()), float(level.min())
    if high - low <= UNEVEN_LIGHT:
        return "even", high
    if float((level.roll(-step) - level).abs().max()) <= LIGHT_STEP:
        return "gradual", high
    if low < SHADE_LEVEL * high or min(grey.shape) < SHADOW_SIDE:  # a dark ground, not shade; a crop, a drawing
        return "crossed", high
    middle = (high + low) / 2
    dark = level < middle
    starts = torch.nonzero(dark != dark.roll(1)).flatten().tolist()  # of each stretch, light or dark: two or more
    lengths = [(following - start) % len(level) for start, following in zip(starts, starts[1:] + starts[:1])]
    if len(starts) == 2 and min(lengths) >= SHADE_SHARE * len(level):  # one edge of shade
        return "split", high
    shaded = [length for start, length in zip(starts, lengths) if dark[start]]  # each dark stretch's length
    shade = level[dark]
    height, width = grey.shape
    corners = torch.tensor([0, width, width + height, 2 * width + height]) - step  # each side's start, in `level`
    bands = ((len(shade) <= len(level) / 2 or float((grey >= middle).float().mean()) >= SHEET_LIGHT)  # or mostly light
             and min(shaded) >= _light_window(grey)
             and (len(shaded) > 1 or bool(dark[corners].any()))
             and float(shade.min()) - float(grey.min()) >= MIN_CONTRAST
             and float((shade <= shade.min() + UNEVEN_LIGHT).float().mean()) >= SHADE_FLAT)
    return "split" if bands else "crossed", high


def _light_window(grey: torch.Tensor) -> int:
    """The side of the square around each pixel (odd: centred on it) in which `_ink` reads the paper where the light
    is uneven: LIGHT_WINDOW of the picture's shorter side."""
    return max(3, round(LIGHT_WINDOW * min(grey.shape)) // 2 * 2 + 1)


def _on_the_sheet(grey: torch.Tensor) -> tuple[torch.Tensor, float, tuple[str, float]]:
    """A photo of a light sheet on a darker table, its border the table's, cut to the sheet, so that the paper is
    read as the paper and not as light ink: light over more than half of at least 30% of the rows and of the
    columns, which a light digit on a dark ground seldom covers; and once cut, with ink over no more than
    SHEET_EDGE_INK of its frame, which a light digit cropped close to its strokes does cover (the dark ground between
    them). Where the border is split into light and dark stretches, by a sheet's edge or a shadow's, the cut must hold
    a digit too (a shadow's light side may hold none of it), unless the rest holds none either (an empty sheet). Any
    other picture as it is (one whose border is lit gradually too: `_ink` finds the strokes on a sheet there). With
    its paper level and the light along its border (`_border_light`)."""
    paper, border = _paper_level(grey), _border_light(grey)
    if paper > 127.5 or border[0] == "gradual":  # the border is paper already, or lit gradually
        return grey, paper, border
    light = grey > (paper + float(grey.max())) / 2
    rows = torch.nonzero(light.float().mean(dim=1) > SHEET_SHARE).flatten()
    cols = torch.nonzero(light.float().mean(dim=0) > SHEET_SHARE).flatten()
    if len(rows) < 0.3 * grey.shape[0] or len(cols) < 0.3 * grey.shape[1]:
        return grey, paper, border
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    dy, dx = round(SHEET_INSET * (bottom - top)), round(SHEET_INSET * (right - left))
    sheet = grey[top + dy:bottom - dy, left + dx:right - dx]
    sheet_paper = _paper_level(sheet)
    edge_ink = float((sheet[_frame(sheet)] < (sheet_paper + float(sheet.min())) / 2).float().mean())
    if edge_ink > SHEET_EDGE_INK:  # a light digit cropped close: its strokes, with the dark ground between them
        return grey, paper, border
    if border[0] == "split" and sheet_paper - float(sheet.min()) < MIN_CONTRAST:  # no digit: a shadow's light side?
        shade = grey[~light]  # the rest: the shade, with the digit, or a table
        if float(shade.median() - shade.min()) >= MIN_CONTRAST:
            return grey, paper, border
    return sheet, sheet_paper, _border_light(sheet)


def _running_max(x: torch.Tensor, side: int) -> torch.Tensor:
    """Each element's largest neighbour within `side` (odd, centred) along the last dimension, in the same few
    passes whatever `side` (van Herk's and Gil and Werman's method: in blocks of `side`, maxima running forwards
    and backwards; each window spans the end of one block and the start of the next). 13× faster than max-pooling
    for the squares of a 512-px photo."""
    reach, length = side // 2, x.shape[-1]
    padded_length = -(-(length + 2 * reach) // side) * side  # whole blocks
    blocks = F.pad(x, (reach, padded_length - length - reach), value=float("-inf")).unflatten(-1, (-1, side))
    forwards = blocks.cummax(-1).values.flatten(-2)
    backwards = blocks.flip(-1).cummax(-1).values.flip(-1).flatten(-2)
    return torch.maximum(backwards[..., :length], forwards[..., side - 1:side - 1 + length])


def _square_max(grey: torch.Tensor, side: int) -> torch.Tensor:
    """Each pixel's largest level within a `side`×`side` square around it (a row's maximum, then a column's)."""
    return _running_max(_running_max(grey, side).T, side).T


def _closing(grey: torch.Tensor, side: int) -> torch.Tensor:
    """Dark features thinner than `side` wiped out by the light around them (each pixel's lightest neighbour
    within the square, then the darkest of those); a gradient, and the edge of a shadow, are kept. The picture is
    first extended by its edge pixels: a square cut short by the edge would leave a band along it in a photo
    darker at its corners."""
    margin = side // 2 * 2  # both passes reach half a side beyond the pixel
    padded = F.pad(grey[None, None], (margin,) * 4, mode="replicate")[0, 0]
    return -_square_max(-_square_max(padded, side), side)[margin:-margin, margin:-margin]


def _ink(grey: torch.Tensor, paper: float, border: tuple[str, float]) -> tuple[torch.Tensor, bool]:
    """How far each pixel lies from the paper (`paper`, the frame's median), towards the ink, in grey levels; and
    whether the paper is light (dark ink: inverted). Where the light changes across the border (`border`, as
    `_border_light` reads it), gradually (a photo lit from one side or darker at its corners) or at a shadow's edges,
    not from one level: a photo is averaged over NOISE_SQUARE, then the paper at each pixel is what is left once
    strokes thinner than LIGHT_WINDOW of the shorter side are wiped out (`_closing`, or on the negative for light
    ink), and the ink is whichever of dark and light strokes there is more of. Beside a shadow the ink is dark where
    the border's lightest level is light (the lit paper's narrow wedges between strokes and the shade would count as
    light ink), and near a shadow's edge dark lines thinner than EDGE_LINE, which the edge leaves in a JPEG, are not
    ink. Light paper then counts as a share of the light falling there (ink in the shade is as dark a share of its
    paper as ink in the light, up to MAX_GAIN times its contrast), scaled to the border's lightest; a picture whose
    ink has less than MIN_CONTRAST is left so, blank (the gain would raise a dark table's noise into strokes)."""
    kind, high = border
    if kind in ("even", "crossed"):
        inverted = paper > 127.5
        return (paper - grey) if inverted else (grey - paper), inverted
    if min(grey.shape) >= SHADOW_SIDE:  # a photo's noise: its paper is read as the lightest level around each pixel,
        # which the noise raises, and the gain in the shade raises the rest of it (crops and drawings have none)
        padded = F.pad(grey[None, None], (NOISE_SQUARE // 2,) * 4, mode="replicate")
        grey = F.avg_pool2d(padded, NOISE_SQUARE, 1)[0, 0]
    side = _light_window(grey)
    light_paper, dark_ground = _closing(grey, side), -_closing(-grey, side)
    dark_ink, light_ink = light_paper - grey, grey - dark_ground
    if kind == "split":
        step = _square_max(light_paper, EDGE_SQUARE) + _square_max(-light_paper, EDGE_SQUARE)  # the paper's range
        dark_ink = torch.where(step > UNEVEN_LIGHT, -_closing(-dark_ink, EDGE_LINE), dark_ink)  # an opening there
        dark = high > 127.5
    else:
        dark = float(dark_ink.sum()) >= float(light_ink.sum())
    if not dark:
        return light_ink, False
    if float(dark_ink.max()) < MIN_CONTRAST:
        return dark_ink, True
    return dark_ink * (high / light_paper.clamp(min=1)).clamp_(max=MAX_GAIN), True


def _faint_marks(ink: torch.Tensor) -> torch.Tensor:
    """Whether each pixel of `ink` (0-1, the strongest 1) is a faint mark away from the strokes: fainter than
    STRONG_INK, in a line of such ink thinner than MARK_WIDTH (a weak part of a thick stroke and a blurred stroke's
    soft edge are broader) and farther than STROKE_REACH from any stroke, where such pixels cover FAINT_MARKS of the
    picture or more: a ruled or squared sheet's lines, which the crop would take in from edge to edge. Nowhere else
    (MNIST's own digits keep every speck and faint stroke)."""
    strong, faint = ink > STRONG_INK, (ink > 0) & (ink <= STRONG_INK)
    if float(faint.float().mean()) < FAINT_MARKS:  # too little faint ink for any: most pictures, at once
        return torch.zeros_like(faint)
    margin = MARK_WIDTH // 2  # no faint ink beyond the picture: a line touching its edge fits no square there
    outside = F.pad(faint.float()[None, None], (margin,) * 4)[0, 0]
    eroded = -_square_max(-outside, MARK_WIDTH)[margin:-margin, margin:-margin]
    broad = _square_max(eroded, MARK_WIDTH) > 0  # an opening: what a square fits in
    reach = max(3, round(STROKE_REACH * min(ink.shape)))
    marks = faint & ~broad & (_square_max(strong.float(), 2 * reach + 1) == 0)
    return marks if float(marks.float().mean()) >= FAINT_MARKS else torch.zeros_like(marks)


def to_mnist(grey: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Greyscale levels ((H, W), 0-255, any number type, either polarity, lit evenly or not; a photo of a sheet on a
    darker table is cut to the sheet) → (uint8 (28, 28) MNIST-style digit, inverted)."""
    grey = grey.float()  # any tensor of levels: uint8 and int64 too
    ink, inverted = _ink(*_on_the_sheet(grey))  # the picture, its paper and its border, each read once
    strongest = float(ink.max())
    if strongest < MIN_CONTRAST:
        raise ImageError("blank", "No digit found: the image is blank or has almost no contrast. "
                                  "Draw or photograph a digit in dark ink on light paper (or light on dark).")
    ink = (ink / strongest).clamp_(0, 1)
    ink[ink < NOISE_LEVEL] = 0
    ink[_faint_marks(ink)] = 0

    rows = torch.nonzero((ink > INK_LEVEL).any(dim=1)).flatten()
    cols = torch.nonzero((ink > INK_LEVEL).any(dim=0)).flatten()
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    height, width = crop.shape
    scale = BOX / max(height, width)
    fitted_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    # antialias: shrinking averages the covered pixels, as MNIST's own anti-aliased normalisation did
    fitted = F.interpolate(crop[None, None], size=fitted_size, mode="bilinear", antialias=True,
                           align_corners=False)[0, 0].clamp_(0, 1)

    # Whole-pixel shift putting the centre of mass at (14, 14), as in MNIST, kept inside the field.
    mass = fitted.sum()
    centre_y = float((fitted.sum(dim=1) * torch.arange(fitted.shape[0])).sum() / mass)
    centre_x = float((fitted.sum(dim=0) * torch.arange(fitted.shape[1])).sum() / mass)
    top = min(max(round(CENTRE - centre_y), 0), SIZE - fitted.shape[0])
    left = min(max(round(CENTRE - centre_x), 0), SIZE - fitted.shape[1])
    field = torch.zeros(SIZE, SIZE)
    field[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
    return field.mul_(255).round_().to(torch.uint8), inverted


def preprocess(data: bytes, **limits: int) -> Digit:
    """An encoded picture (PNG, JPEG, ...) → a `Digit`; an ImageError says what is wrong with a bad one.
    `limits`: max_bytes, max_pixels, working_size (see `decode`)."""
    grey, source_size = decode(data, **limits)
    pixels, inverted = to_mnist(grey)
    return Digit(pixels, inverted, source_size)


def pixels_png(pixels: torch.Tensor) -> bytes:
    """A uint8 (H, W) greyscale tensor as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.cpu().numpy()).save(buffer, format="PNG")
    return buffer.getvalue()
