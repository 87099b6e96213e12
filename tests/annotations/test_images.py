import io
import struct
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from annotations.images import (
    EXPORT_EXTENSIONS,
    ImageRejected,
    check_image,
    export_copy,
    jpeg_without_metadata,
    make_thumbnail,
)
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


# --- metadata-free export copies ---------------------------------------------------------------------------------


def _exif(**tags: str) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = tags.get("make", "SecretCam")  # Make
    exif[0x9003] = tags.get("taken", "2024:01:01 10:00:00")  # DateTimeOriginal
    return exif.tobytes()


def _pixels(data: bytes) -> list[tuple[int, ...]]:
    return list(Image.open(io.BytesIO(data)).convert("RGB").getdata())


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_export_copy_drops_exif_and_comments_and_keeps_every_pixel(progressive: bool) -> None:
    original = image_bytes(
        80, 60, image_format="JPEG", seed=3, exif=_exif(), comment=b"patient Jane Doe", progressive=progressive
    )
    assert b"SecretCam" in original
    assert b"Jane Doe" in original
    copy = export_copy(original, "JPEG")
    assert b"SecretCam" not in copy
    assert b"Jane Doe" not in copy
    reopened = Image.open(io.BytesIO(copy))
    assert reopened.format == "JPEG"
    assert not reopened.getexif()
    assert _pixels(copy) == _pixels(original)  # no re-encoding: the decoded pixels are identical


def test_jpeg_without_metadata_is_copied_byte_for_byte() -> None:
    clean = image_bytes(40, 30, image_format="JPEG", seed=4)
    assert export_copy(clean, "JPEG") == clean


def test_png_export_copy_drops_text_and_exif_chunks_and_keeps_every_pixel() -> None:
    info = PngInfo()
    info.add_text("Patient", "Jane Doe")
    original = image_bytes(30, 20, image_format="PNG", seed=5, pnginfo=info, exif=_exif())
    copy = export_copy(original, "PNG")
    assert b"Jane Doe" not in copy
    assert b"SecretCam" not in copy
    assert Image.open(io.BytesIO(copy)).info == {}
    assert _pixels(copy) == _pixels(original)


def test_tiff_export_copy_is_a_png_with_the_same_pixels_and_no_tags() -> None:
    original = image_bytes(30, 20, image_format="TIFF", seed=6, exif=_exif())
    copy = export_copy(original, "TIFF")
    assert Image.open(io.BytesIO(copy)).format == "PNG"
    assert b"SecretCam" not in copy
    assert _pixels(copy) == _pixels(original)
    assert EXPORT_EXTENSIONS["TIFF"] == "png"


def test_a_jpeg_the_parser_cannot_walk_is_re_encoded_without_metadata() -> None:
    original = image_bytes(40, 30, image_format="JPEG", seed=7, exif=_exif())
    # A stray byte before a marker: decoders skip it, the segment walk cannot.
    quantisation = original.index(b"\xff\xdb")
    sloppy = original[:quantisation] + b"\x00" + original[quantisation:]
    with pytest.raises(ValueError, match="expected a JPEG marker"):
        jpeg_without_metadata(sloppy)
    copy = export_copy(sloppy, "JPEG")
    assert Image.open(io.BytesIO(copy)).format == "JPEG"
    assert b"SecretCam" not in copy
    assert not Image.open(io.BytesIO(copy)).getexif()
