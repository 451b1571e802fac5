"""Pictures the tests of the page's reading share: how close two digits are, how many a model reads right, a digit
cut to its ink, a picture's file, a blank picture and a PNG that claims more pixels than it holds."""
import io
import struct
import zlib

import torch
from PIL import Image


def closeness(a: torch.Tensor, b: torch.Tensor) -> float:
    """Correlation of two images' pixels: 1 for the same picture, ~0 for unrelated ones."""
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def read_right(classifier, pixels: torch.Tensor, labels: torch.Tensor) -> int:
    """How many of the digits `pixels` (N, 28, 28) `classifier` (a classifier.Classifier) reads as their `labels`."""
    return sum(answer["digit"] == int(label) for answer, label in zip(classifier.answers(pixels), labels))


def cropped_to_ink(image: torch.Tensor) -> torch.Tensor:
    """`image` cut to the box around its ink (its nonzero pixels): ink on every side."""
    (top, left), (bottom, right) = torch.nonzero(image).min(0).values, torch.nonzero(image).max(0).values + 1
    return image[top:bottom, left:right]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` pixels, with almost no data: a decompression bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    """`image` as the bytes of a file of format `fmt` (Pillow's save `options` passed on)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def blank(colour: int, size=(280, 280)) -> bytes:
    """A PNG of `size` in one grey `colour`: a picture with no digit on it."""
    return encoded(Image.new("L", size, colour))
