"""Decoding, checking and encoding single images (synthdata/data/images.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import png_bytes
from PIL import Image

from synthdata.data import images
from synthdata.data.images import array_to_uint8, decode_image, encode_png, fit_square, resize
from synthdata.errors import DataError

ORIGIN = "class_a/img-042.png"


def _encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _rgb(seed: int = 0, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


# --- decode_image: refusals -------------------------------------------------------------------


def _png16() -> bytes:
    image = Image.fromarray(np.zeros((8, 8), np.uint16))
    assert image.mode == "I;16"
    return _encode(image)


BAD = {
    "zero-byte": (lambda: b"", None, "zero-byte"),
    "not-an-image": (lambda: np.random.default_rng(1).bytes(200), None, "corrupt or truncated"),
    "truncated": (lambda: png_bytes(3)[: len(png_bytes(3)) // 2], None, "corrupt or truncated"),
    "16-bit": (_png16, None, "not 8-bit"),
    "rgba": (lambda: png_bytes(4, mode="RGBA"), None, "wrong channel count 4"),
    "la": (lambda: _encode(Image.new("LA", (8, 8))), None, "wrong channel count 2"),
    "rgb-declared-grey": (lambda: png_bytes(5), 1, "wrong channel count 3"),
    "grey-declared-rgb": (lambda: png_bytes(6, mode="L"), 3, "wrong channel count 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_decode_refuses_bad_input_naming_origin(case):
    make, channels, reason = BAD[case]
    with pytest.raises(DataError) as info:
        decode_image(make(), ORIGIN, channels=channels)
    message = str(info.value)
    assert ORIGIN in message
    assert reason in message
    assert "\n" not in message


def test_decode_refuses_decompression_bomb(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 16)
    data = _encode(Image.fromarray(_rgb(size=64)))
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(DataError) as info:
        decode_image(data, ORIGIN)
    assert ORIGIN in str(info.value)
    assert "decompression bomb" in str(info.value)
    assert "16 pixels" in str(info.value)
    # Pillow's global limit is restored afterwards.
    assert Image.MAX_IMAGE_PIXELS == before


def test_decode_refuses_image_just_over_the_limit(monkeypatch):
    # Between MAX_PIXELS and 2 * MAX_PIXELS Pillow only warns; that warning must be refused too.
    monkeypatch.setattr(images, "MAX_PIXELS", 48)
    data = _encode(Image.fromarray(_rgb(size=8)))  # 64 pixels: over 48, under 96
    with pytest.raises(DataError, match="decompression bomb"):
        decode_image(data, ORIGIN)


def test_decode_accepts_image_at_the_limit(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 64)
    array = decode_image(_encode(Image.fromarray(_rgb(size=8))), ORIGIN)
    assert array.shape == (8, 8, 3)


# --- decode_image: accepted images ------------------------------------------------------------


def test_decode_rgb_exact_pixels():
    pixels = _rgb(7)
    array = decode_image(_encode(Image.fromarray(pixels)), ORIGIN, channels=3)
    assert array.shape == (8, 8, 3)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, pixels)


def test_decode_grey_gives_one_channel():
    pixels = _rgb(8)[:, :, 0]
    array = decode_image(_encode(Image.fromarray(pixels, mode="L")), ORIGIN, channels=1)
    assert array.shape == (8, 8, 1)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array[:, :, 0], pixels)


def test_decode_non_square_keeps_height_and_width():
    pixels = np.random.default_rng(9).integers(0, 256, size=(5, 11, 3), dtype=np.uint8)
    array = decode_image(_encode(Image.fromarray(pixels)), ORIGIN)
    assert array.shape == (5, 11, 3)
    np.testing.assert_array_equal(array, pixels)


def test_decode_palette_expands_to_rgb():
    palette_image = Image.fromarray(_rgb(10)).quantize(colors=6)
    assert palette_image.mode == "P"
    expected = np.asarray(palette_image.convert("RGB"))
    array = decode_image(_encode(palette_image), ORIGIN, channels=3)
    assert array.shape == (8, 8, 3)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, expected)


def test_decode_bilevel_gives_grey():
    bits = np.random.default_rng(11).integers(0, 2, size=(8, 8)).astype(bool)
    array = decode_image(_encode(Image.fromarray(bits)), ORIGIN)
    assert array.shape == (8, 8, 1)
    np.testing.assert_array_equal(array[:, :, 0], np.where(bits, 255, 0))


# --- encode_png -------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_encode_png_is_deterministic_and_round_trips(channels):
    pixels = np.ascontiguousarray(_rgb(12)[:, :, :channels])
    first = encode_png(pixels)
    second = encode_png(pixels.copy())
    assert first == second
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = decode_image(first, ORIGIN, channels=channels)
    assert decoded.shape == (8, 8, channels)
    np.testing.assert_array_equal(decoded, pixels)


def test_encode_png_differs_for_different_pixels():
    pixels = _rgb(13)
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    assert encode_png(pixels) != encode_png(changed)


# --- array_to_uint8 ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_array_nan_or_inf_refused(bad):
    array = np.zeros((8, 8, 3), np.float32)
    array[2, 3, 1] = bad
    with pytest.raises(DataError) as info:
        array_to_uint8(array, ORIGIN)
    assert ORIGIN in str(info.value)
    assert "NaN" in str(info.value)


def test_array_float_unit_range_scales_to_255():
    array = np.array([[0.0, 1.0], [0.5, 0.25]], np.float64)
    out = array_to_uint8(array, ORIGIN)
    assert out.dtype == np.uint8
    assert out.shape == (2, 2, 1)
    np.testing.assert_array_equal(out[:, :, 0], [[0, 255], [128, 64]])


def test_array_float_pixel_range_kept():
    array = np.array([[0.0, 255.0], [17.0, 200.4]], np.float32)
    out = array_to_uint8(array, ORIGIN)
    np.testing.assert_array_equal(out[:, :, 0], [[0, 255], [17, 200]])


@pytest.mark.parametrize("value", [256, 40000, -1])
def test_array_int_out_of_range_refused(value):
    array = np.zeros((8, 8), np.int32)
    array[0, 0] = value
    with pytest.raises(DataError) as info:
        array_to_uint8(array, ORIGIN)
    assert ORIGIN in str(info.value)
    assert "outside [0, 255]" in str(info.value)


def test_array_float_out_of_range_refused():
    with pytest.raises(DataError, match="outside"):
        array_to_uint8(np.full((4, 4), 300.0), ORIGIN)


def test_array_int_in_range_converted_exactly():
    array = np.arange(64, dtype=np.int64).reshape(8, 8) * 4
    out = array_to_uint8(array, ORIGIN)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_array_hw_becomes_hw1():
    array = _rgb(14)[:, :, 0]
    out = array_to_uint8(array, ORIGIN)
    assert out.shape == (8, 8, 1)
    np.testing.assert_array_equal(out[:, :, 0], array)


@pytest.mark.parametrize("shape", [(8, 8, 4), (8, 8, 2), (2, 8, 8, 3), (8,)])
def test_array_bad_shape_refused(shape):
    with pytest.raises(DataError, match="shape"):
        array_to_uint8(np.zeros(shape, np.uint8), ORIGIN)


def test_array_channel_mismatch_refused():
    with pytest.raises(DataError, match="wrong channel count 3"):
        array_to_uint8(_rgb(15), ORIGIN, channels=1)


def test_array_unsupported_dtype_refused():
    with pytest.raises(DataError, match="dtype"):
        array_to_uint8(np.zeros((8, 8), np.complex64), ORIGIN)


# --- resize -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [4, 16])
def test_resize_square_size_keeps_channels(channels, size):
    array = np.ascontiguousarray(np.random.default_rng(16).integers(0, 256, size=(8, 12, channels), dtype=np.uint8))
    out = resize(array, size)
    assert out.shape == (size, size, channels)
    assert out.dtype == np.uint8


def test_resize_to_same_size_is_identity():
    array = _rgb(17)
    np.testing.assert_array_equal(resize(array, 8), array)


def test_resize_constant_image_stays_constant():
    array = np.full((8, 8, 3), 77, np.uint8)
    np.testing.assert_array_equal(resize(array, 20), np.full((20, 20, 3), 77, np.uint8))


def _bands(width: int, height: int) -> np.ndarray:
    """Red first column, blue last column, green between: where each policy puts the edges shows."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, :, 1] = 200
    array[:, 0], array[:, -1] = (255, 0, 0), (0, 0, 255)
    return array


def test_crop_keeps_the_centre_at_the_shorter_sides_scale():
    out = fit_square(_bands(6, 4), 4, "crop")
    assert out.shape == (4, 4, 3) and (out == (0, 200, 0)).all()  # both edge columns cut away
    tall = fit_square(_bands(6, 4).transpose(1, 0, 2), 4, "crop")  # 4 wide, 6 tall: rows 1..4 kept
    assert (tall == (0, 200, 0)).all()
    scaled = fit_square(_bands(8, 4), 2, "crop")
    expected = np.asarray(Image.fromarray(_bands(8, 4)).resize((4, 2), Image.Resampling.BICUBIC))[:, 1:3]
    assert (scaled == expected).all()


def test_pad_letterboxes_with_the_stated_fill():
    out = fit_square(_bands(6, 4), 6, "pad", fill=7)
    assert (out[0] == 7).all() and (out[5] == 7).all()
    assert (out[1:5] == _bands(6, 4)).all()
    grey = fit_square(np.full((2, 6, 1), 50, dtype=np.uint8), 6, "pad", fill=255)
    assert grey.shape == (6, 6, 1) and (grey[:2] == 255).all() and (grey[2:4] == 50).all() and (grey[4:] == 255).all()


def test_squash_and_square_images():
    flat = np.full((4, 6, 3), 90, dtype=np.uint8)
    assert (fit_square(flat, 6, "squash") == 90).all()
    squashed = fit_square(_bands(6, 4), 6, "squash")
    assert squashed[:, 0, 0].min() > 150 and squashed[:, -1, 2].min() > 150  # both edges kept, stretched
    square = np.random.default_rng(0).integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
    outs = [fit_square(square, 5, policy) for policy in ("crop", "pad", "squash")]
    assert all((o == resize(square, 5)).all() for o in outs)
