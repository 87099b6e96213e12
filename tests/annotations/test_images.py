import io
import struct
import zlib

import pytest
from PIL import Image

from annotations.images import ImageRejected, check_image, make_thumbnail
from tests.factories import image_bytes

LIMITS = {"max_pixels": 50_000_000, "max_bytes": 10_000_000}


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares width x height pixels (a decompression bomb's shape) with a few bytes of data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "TIFF"])
def test_accepts_the_three_formats_and_hashes_the_exact_bytes(image_format: str) -> None:
    data = image_bytes(40, 30, image_format=image_format)
    checked = check_image(data, **LIMITS)
    assert (checked.format, checked.width, checked.height) == (image_format, 40, 30)
    assert checked.data is data
    import hashlib

    assert checked.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"patient: Jane Doe\nthis is text, not a picture\n" * 10, "could not be decoded"),
        (image_bytes(image_format="GIF"), "GIF images are not accepted"),
        (image_bytes(200, 200)[:400], "header is truncated or corrupt"),
        (image_bytes(400, 300, quality=100)[:-800], "data is truncated or corrupt"),
        (png_header_only(20000, 20000), "limit is 50,000,000 pixels"),
        (png_header_only(8000, 8000), "8000x8000 = 64,000,000 pixels; the limit is 50,000,000"),
    ],
    ids=["empty", "text-renamed", "gif", "truncated-header", "truncated-jpeg", "png-bomb", "png-too-large"],
)
def test_refuses_bad_files_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected, match=reason):
        check_image(data, **LIMITS)


def test_refuses_files_over_the_byte_limit() -> None:
    data = image_bytes()
    with pytest.raises(ImageRejected, match="the limit is 100 bytes"):
        check_image(data, max_pixels=10**9, max_bytes=100)


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(ImageRejected, match="the limit is 1,000 pixels"):
        check_image(image_bytes(40, 30), max_pixels=1000, max_bytes=10**6)


def test_thumbnail_carries_no_exif() -> None:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x9286] = "patient Jane Doe"  # UserComment
    original = image_bytes(400, 300, exif=exif.tobytes())
    assert Image.open(io.BytesIO(original)).getexif()
    thumbnail = Image.open(io.BytesIO(make_thumbnail(original, 128)))
    assert max(thumbnail.size) == 128
    assert not thumbnail.getexif()
    assert "exif" not in thumbnail.info
