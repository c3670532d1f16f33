"""Decoding untrusted images with limits: dimensions are checked from the header
before any pixel is decompressed, so a 50-megapixel photo or a PNG bomb is
refused in milliseconds instead of exhausting memory."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP", "BMP")


class BadImage(ValueError):
    """The bytes are not an image we accept; the message says why (HTTP 422)."""


class TooLarge(BadImage):
    """An image over the pixel limit, or a decompression bomb (HTTP 413). Callers tell it
    from other refusals by its type, never by its message."""


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """RGB uint8 array (EXIF orientation applied), or BadImage with a reason."""
    if not data:
        raise BadImage("empty file")
    # face_recognition sets this to True on import; a cut-off upload must be refused, not half-grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data), formats=FORMATS)
            w, h = im.size
            if w * h > max_pixels:
                raise TooLarge(f"image is {w}x{h} ({w * h / 1e6:.1f} MP); the limit is {max_pixels / 1e6:.1f} MP")
            im.load()
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not an image (JPEG, PNG, WebP or BMP expected)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TooLarge(f"image refused as a decompression bomb: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        # Pillow raises OSError("image file is truncated ...") for cut-off JPEGs
        # and ValueError/SyntaxError for broken PNG chunks.
        raise BadImage(f"image could not be decoded: {e}") from None
    im = ImageOps.exif_transpose(im)
    if im.mode != "RGB":
        # 32-bit PNGs (RGBA) and grey scans: flatten onto white so a transparent
        # background does not turn black.
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGB", im.size, (255, 255, 255))
            bg.paste(im, mask=im.split()[-1])
            im = bg
        else:
            im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def to_jpeg(rgb: np.ndarray, max_side: int = 320, quality: int = 80) -> bytes:
    """A small JPEG (thumbnails, snapshots)."""
    im = Image.fromarray(rgb)
    im.thumbnail((max_side, max_side))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality)
    return out.getvalue()
