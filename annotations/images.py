"""Decoding checks for uploaded images and metadata-free derivatives (thumbnails, export copies).

Plain Python over bytes: the file's name and declared content type are never trusted; only a full decode is.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import simplejpeg
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
    _check_nothing_hidden(data, image_format)
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), image_format, width, height)


def _check_nothing_hidden(data: bytes, image_format: str) -> None:
    """A JPEG or PNG must end where its image ends: bytes after the end-of-image marker are how polyglot files hide
    an HTML page, a script or a ZIP archive inside something that decodes as a picture. Zero padding is allowed."""
    try:
        if image_format == "JPEG":
            end = jpeg_length(data)
        elif image_format == "PNG":
            end = png_length(data)
        else:
            return
    except ValueError as exc:
        raise ImageRejected(f"the {image_format} structure is malformed: {exc}") from None
    trailing = data[end:]
    if trailing.strip(b"\x00"):
        raise ImageRejected(
            f"{len(trailing):,} bytes follow the end of the {image_format} image; a file that hides other content "
            "(HTML, a script, an archive) after the picture is refused"
        )


def open_rgb(data: bytes) -> Image.Image:
    """The field as 8-bit RGB in its stored pixel grid.

    Boxes are in the stored pixel grid, so an EXIF orientation tag is deliberately not applied here.
    """
    return Image.open(io.BytesIO(data)).convert("RGB")


def decode_rgb(data: bytes) -> np.ndarray:
    """The field's pixels as an (H, W, 3) uint8 array in its stored pixel grid (no EXIF rotation, as `open_rgb`).

    JPEG goes through libjpeg-turbo directly (simplejpeg: about twice as fast as Pillow's decode plus RGB
    conversion, and it releases the GIL, so decode threads run in parallel); whatever it refuses (CMYK, a
    corrupt stream) goes to Pillow, whose error, if any, is the one reported."""
    if data[:2] == b"\xff\xd8":
        try:
            pixels: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB")
            return pixels
        except ValueError:
            pass
    return np.array(open_rgb(data))


def encode_without_metadata(image: Image.Image, *, image_format: str = "JPEG", quality: int = 92) -> bytes:
    """Re-encode pixels only: no EXIF, no ICC profile, no text chunks survive."""
    buffer = io.BytesIO()
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    options = {"quality": quality} if image_format == "JPEG" else {}
    clean.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def make_thumbnail(data: bytes, size: int) -> bytes:
    image: Image.Image = Image.open(io.BytesIO(data))
    scale = size / max(image.size)
    if scale < 1:
        # A JPEG is decoded straight at the smallest DCT scale still covering the thumbnail, which is its final size
        # for the usual 2:1, 4:1 ratios (several times faster than decoding it whole and resampling); no-op
        # otherwise. Asked for (size, size), a landscape field would keep its full size: the short side is shorter.
        image.draft("RGB", (max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    image = image.convert("RGB")
    image.thumbnail((size, size))
    return encode_without_metadata(image, quality=85)


# --- metadata-free copies for exports ------------------------------------------------------------------------------
#
# Exports must carry no EXIF (camera serials, capture times), XMP, ICC descriptions or comments. Re-encoding a JPEG
# would strip them too, but every export would then lose pixel quality a training set needs; so JPEG and PNG files
# are copied with their metadata segments/chunks left out (pixels byte-identical, same file type) and only TIFF,
# whose tags are its structure, is re-encoded (to lossless PNG). A JPEG this parser cannot walk is re-encoded.

# The file extension of an exported field by stored format: it depends on the format only, so an export can name
# every file in its JSON before any image is read.
EXPORT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "TIFF": "png"}

_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = 0xD8, 0xD9, 0xDA
# APP0 holds the JFIF header and APP14 the Adobe colour transform that decoders need; other APPn and COM are metadata.
_JPEG_KEPT_APP_PREFIX = {0xE0: b"JFIF\x00", 0xEE: b"Adobe"}
_JPEG_COM = 0xFE
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that define the pixels or their colour; text, time, EXIF, ICC and everything else is dropped.
_PNG_KEPT_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"sBIT"})
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


def _jpeg_is_metadata(marker: int, payload: bytes) -> bool:
    if marker == _JPEG_COM:
        return True
    if 0xE0 <= marker <= 0xEF:
        prefix = _JPEG_KEPT_APP_PREFIX.get(marker)
        return prefix is None or not payload.startswith(prefix)
    return False


def _jpeg_scan_end(data: bytes, start: int) -> int:
    """The offset of the marker that ends the entropy-coded data starting at `start`."""
    position = start
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            raise ValueError("the JPEG scan data is truncated")
        following = data[position + 1]
        if following == 0xFF:  # fill byte before a marker
            position += 1
        elif following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed 0xFF or a restart marker
            position += 2
        else:
            return position


def jpeg_length(data: bytes) -> int:
    """The offset just after the JPEG's end-of-image marker, found by walking its segments and scans."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG stream")
    position = 2
    while position < len(data):
        if data[position] != 0xFF:
            raise ValueError(f"expected a JPEG marker at byte {position}")
        while position < len(data) and data[position] == 0xFF:
            position += 1
        if position >= len(data):
            break
        marker = data[position]
        position += 1
        if marker == _JPEG_EOI:
            return position
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, _JPEG_SOI):
            continue
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2 or position + length > len(data):
            raise ValueError(f"a JPEG segment at byte {position} overruns the file")
        position += length
        if marker == _JPEG_SOS:
            position = _jpeg_scan_end(data, position)
    raise ValueError("the JPEG has no end-of-image marker")


def png_length(data: bytes) -> int:
    """The offset just after the PNG's IEND chunk."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG stream")
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        position += 12 + length
        if position > len(data):
            raise ValueError(f"the PNG chunk {kind!r} overruns the file")
        if kind == b"IEND":
            return position
    raise ValueError("the PNG has no IEND chunk")


def jpeg_without_metadata(data: bytes) -> bytes:
    """The JPEG with its APPn (except JFIF/Adobe) and COM segments and any bytes after EOI left out."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG stream")
    parts = [data[:2]]
    position = 2
    while position < len(data):
        if data[position] != 0xFF:
            raise ValueError(f"expected a JPEG marker at byte {position}")
        while position < len(data) and data[position] == 0xFF:
            position += 1
        if position >= len(data):
            break
        marker = data[position]
        position += 1
        if marker == _JPEG_EOI:
            parts.append(b"\xff\xd9")
            return b"".join(parts)
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, _JPEG_SOI):
            parts.append(bytes((0xFF, marker)))
            continue
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2 or position + length > len(data):
            raise ValueError(f"a JPEG segment at byte {position} overruns the file")
        payload = data[position + 2 : position + length]
        if not _jpeg_is_metadata(marker, payload):
            parts.append(data[position - 2 : position + length])
        position += length
        if marker == _JPEG_SOS:
            end = _jpeg_scan_end(data, position)
            parts.append(data[position:end])
            position = end
    raise ValueError("the JPEG has no end-of-image marker")


def png_without_metadata(data: bytes) -> bytes:
    """The PNG with only the chunks that define its pixels and colours."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG stream")
    parts = [_PNG_SIGNATURE]
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            raise ValueError(f"the PNG chunk {kind!r} overruns the file")
        if kind in _PNG_KEPT_CHUNKS:
            parts.append(data[position:end])
        position = end
        if kind == b"IEND":
            return b"".join(parts)
    raise ValueError("the PNG has no IEND chunk")


def export_copy(data: bytes, image_format: str) -> bytes:
    """A metadata-free file of the stored field image, of the type EXPORT_EXTENSIONS names for its format."""
    if image_format == "JPEG":
        try:
            return jpeg_without_metadata(data)
        except ValueError:
            return encode_without_metadata(open_rgb(data), image_format="JPEG", quality=95)
    if image_format == "PNG":
        try:
            return png_without_metadata(data)
        except ValueError:
            pass
    image: Image.Image = Image.open(io.BytesIO(data))
    if image.mode not in _PNG_MODES:
        image = image.convert("RGB")
    return encode_without_metadata(image, image_format="PNG")
