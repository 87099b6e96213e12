"""Decoding checks for uploaded images and metadata-free derivatives (thumbnails, export copies).

Plain Python over bytes: the file's name and declared content type are never trusted; only a full decode is.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "TIFF")


class ImageRejected(ValueError):
    """The reason an upload is not a usable field image, in words."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    format: str
    width: int
    height: int


def check_image(data: bytes, *, max_pixels: int, max_bytes: int) -> CheckedImage:
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"the file is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    with warnings.catch_warnings():
        # Pillow warns (then errors) about decompression bombs against its own global limit; ours is checked below
        # from the header, before any pixel is decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise ImageRejected("not a JPEG, PNG or TIFF image: the content could not be decoded") from None
            raise ImageRejected(
                f"the image declares too many pixels ({exc}); the limit is {max_pixels:,} pixels "
                "(decompression bomb protection)"
            ) from None
        except Exception as exc:
            raise ImageRejected(f"the image header is truncated or corrupt: {exc}") from None
        with image:
            if image.format not in ACCEPTED_FORMATS:
                raise ImageRejected(f"{image.format} images are not accepted; use JPEG, PNG or TIFF")
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ImageRejected(f"the image has no pixels ({width}x{height})")
            if width * height > max_pixels:
                raise ImageRejected(
                    f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,} pixels "
                    "(decompression bomb protection)"
                )
            try:
                image.load()
            except Exception as exc:
                raise ImageRejected(f"the image data is truncated or corrupt: {exc}") from None
            image_format = image.format
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), image_format, width, height)


def open_rgb(data: bytes) -> Image.Image:
    """The field as 8-bit RGB in its stored pixel grid.

    Boxes are in the stored pixel grid, so an EXIF orientation tag is deliberately not applied here.
    """
    return Image.open(io.BytesIO(data)).convert("RGB")


def encode_without_metadata(image: Image.Image, *, image_format: str = "JPEG", quality: int = 92) -> bytes:
    """Re-encode pixels only: no EXIF, no ICC profile, no text chunks survive."""
    buffer = io.BytesIO()
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    options = {"quality": quality} if image_format == "JPEG" else {}
    clean.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def make_thumbnail(data: bytes, size: int) -> bytes:
    image = open_rgb(data)
    image.thumbnail((size, size))
    return encode_without_metadata(image, quality=85)
