"""Decode, check and encode single images.

Every image that enters a dataset passes :func:`decode_image`: it is fully decoded (so a
truncated file fails here, not in a training loop), turned the way its EXIF orientation says
it is viewed, must be 8-bit, and must have the declared channel count. Images are stored as
PNG encoded by :func:`encode_png`, whose output is a deterministic function of the pixels, so
a sha256 of the file identifies the image.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from synthdata.errors import DataError

# Largest image accepted (pixels). Far above any domain image here; a decompression bomb that
# claims more is refused before its pixels are allocated.
MAX_PIXELS = 64 * 1024 * 1024

_MODES_8BIT = {"L": 1, "RGB": 3, "LA": 2, "RGBA": 4, "P": None, "CMYK": 4, "1": 1}


def decode_image(data: bytes, origin: str, *, channels: int | None = None) -> np.ndarray:
    """Decode an encoded image into an ``(H, W, C)`` uint8 array, C in {1, 3}.

    Raises :class:`DataError` naming ``origin`` for an empty, corrupt, truncated, 16-bit or
    oversized file, and for a channel count other than ``channels`` (when given). Palette
    images are expanded to RGB (or L for a grey palette); alpha is never silently dropped. A
    photo whose EXIF says it was taken turned comes out the right way up.
    """
    if len(data) == 0:
        raise DataError(f"{origin}: zero-byte file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # A damaged EXIF block only loses the orientation: the image is used as stored.
            warnings.filterwarnings("ignore", "Corrupt EXIF data", UserWarning)
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
            try:
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
                    # Cameras store the sensor's pixels and record how to turn them in EXIF.
                    image = ImageOps.exif_transpose(img)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{origin}: image larger than {MAX_PIXELS} pixels (decompression bomb?)") from None
    except Image.UnidentifiedImageError:
        # Pillow's own message names the in-memory buffer, not the file.
        raise DataError(f"{origin}: corrupt or truncated image (not a recognised image format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow raises OSError for truncated data.
        raise DataError(f"{origin}: corrupt or truncated image ({exc})") from None
    return image_to_array(image, origin, channels=channels)


def image_to_array(image: Image.Image, origin: str, *, channels: int | None = None) -> np.ndarray:
    """Checked conversion of a decoded Pillow image to ``(H, W, C)`` uint8."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        raise DataError(f"{origin}: {mode} image is not 8-bit (16-bit and float images are not supported)")
    if mode not in _MODES_8BIT:
        raise DataError(f"{origin}: unsupported image mode {mode}")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode == "CMYK":
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    found = array.shape[2]
    if found not in (1, 3):
        raise DataError(f"{origin}: wrong channel count {found} ({image.mode}); expected 1 (grey) or 3 (RGB)")
    if channels is not None and found != channels:
        raise DataError(f"{origin}: wrong channel count {found}, the dataset declares {channels}")
    return np.ascontiguousarray(array)


def array_to_uint8(array: np.ndarray, origin: str, *, channels: int | None = None) -> np.ndarray:
    """Checked conversion of an array from an ``.npz`` (HW, HWC or CHW-less) to ``(H, W, C)`` uint8."""
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise DataError(f"{origin}: array holds NaN or Inf values")
        if array.min() < 0 or array.max() > 255:
            raise DataError(f"{origin}: float pixel values outside [0, 255]")
        if array.max() <= 1.0:
            array = array * 255.0
        array = np.rint(array).astype(np.uint8)
    elif array.dtype != np.uint8:
        if array.dtype.kind not in "iu":
            raise DataError(f"{origin}: unsupported pixel dtype {array.dtype}")
        if array.min() < 0 or array.max() > 255:
            raise DataError(f"{origin}: pixel values outside [0, 255] (16-bit data is not supported)")
        array = array.astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise DataError(f"{origin}: array shape {array.shape} is not (H, W), (H, W, 1) or (H, W, 3)")
    if channels is not None and array.shape[2] != channels:
        raise DataError(f"{origin}: wrong channel count {array.shape[2]}, the dataset declares {channels}")
    return np.ascontiguousarray(array)


def resize(array: np.ndarray, size: int) -> np.ndarray:
    """Square resize with Pillow's bicubic filter (the resize used to make the 32 px mirrors)."""
    return _resized(array, size, size)


RESIZE_POLICIES = ("crop", "pad", "squash")
"""How a non-square image becomes a square one: see :func:`fit_square`."""


def fit_square(array: np.ndarray, size: int, policy: str = "crop", fill: int = 0) -> np.ndarray:
    """``(H, W, C)`` uint8 -> ``(size, size, C)`` by ``policy``; a square image is resized alike
    by every policy.

    - ``crop``: the shorter side to ``size``, then the centre ``size`` x ``size`` (timm's and
      torchvision's eval transform: ``Resize(size)`` then ``CenterCrop(size)``, same rounding).
    - ``pad``: the longer side to ``size``, centred on a ``size`` x ``size`` canvas of grey level
      ``fill`` (letterbox): nothing is lost, the bars are visible.
    - ``squash``: both sides to ``size``; the aspect ratio is lost.
    """
    height, width = array.shape[:2]
    if height == width or policy == "squash":
        return resize(array, size)
    if policy == "crop":
        scale = size / min(height, width)
        array = _resized(array, max(size, round(height * scale)), max(size, round(width * scale)))
        top = int(round((array.shape[0] - size) / 2.0))
        left = int(round((array.shape[1] - size) / 2.0))
        return np.ascontiguousarray(array[top : top + size, left : left + size])
    if policy != "pad":
        raise ValueError(f"unknown resize policy {policy!r} (one of {', '.join(RESIZE_POLICIES)})")
    scale = size / max(height, width)
    inner = _resized(array, max(1, round(height * scale)), max(1, round(width * scale)))
    canvas = np.full((size, size, array.shape[2]), fill, dtype=np.uint8)
    top, left = (size - inner.shape[0]) // 2, (size - inner.shape[1]) // 2
    canvas[top : top + inner.shape[0], left : left + inner.shape[1]] = inner
    return canvas


def _resized(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` at ``height`` x ``width`` (bicubic); unchanged when it already is."""
    if array.shape[0] == height and array.shape[1] == width:
        return array
    grey = array.shape[2] == 1
    image = Image.fromarray(array[:, :, 0] if grey else array)
    out = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)
    return out[:, :, None] if grey else out


def encode_png(array: np.ndarray, text: dict[str, str] | None = None, *, xmp: str | None = None) -> bytes:
    """Deterministic PNG bytes for an ``(H, W, C)`` uint8 array (same pixels and text, same
    bytes). ``text`` becomes text chunks (tEXt, or UTF-8 iTXt when not Latin-1) in the given
    order; ``xmp`` an XMP packet in the standard ``XML:com.adobe.xmp`` iTXt chunk."""
    from PIL.PngImagePlugin import PngInfo

    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    info = None
    if text or xmp:
        info = PngInfo()
        for key, value in (text or {}).items():
            try:
                value.encode("latin-1")
                info.add_text(key, value)
            except UnicodeEncodeError:
                info.add_itxt(key, value)
        if xmp:
            info.add_itxt("XML:com.adobe.xmp", xmp)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6, pnginfo=info)
    return buffer.getvalue()


def read_png_text(data: bytes) -> dict[str, str]:
    """The text chunks of PNG bytes (tEXt, zTXt and iTXt), key -> value."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
