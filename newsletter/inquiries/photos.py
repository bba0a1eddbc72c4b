"""A clinician's photo for the team page: the uploaded JPEG or PNG is opened by Pillow and drawn anew as a
bounded JPEG, so what is stored and served carries none of the original file's bytes and no metadata (EXIF
with a GPS position, camera serials, comments, colour profiles).

No Flask request and no Celery here.
"""
from __future__ import annotations

import hashlib
from io import BytesIO

from PIL import Image, ImageOps

MAX_BYTES = 4 * 1024 * 1024
# A phone's 48-megapixel photo; more is refused before decoding, so a small "bomb" file cannot take the memory.
MAX_PIXELS = 50_000_000
SIDE = 600  # the stored photo fits in SIDE x SIDE
FORMATS = ("JPEG", "PNG")

NOT_A_PHOTO = "That file isn't a JPEG or PNG photo we can read. Please choose a JPEG or PNG photo."


class PhotoRefused(ValueError):
    """The file is not a photo we take; the message says why, in words for the person who chose it."""


def reencode(data: bytes) -> bytes:
    """The photo as a JPEG of at most SIDE x SIDE with no metadata; PhotoRefused for anything else."""
    if not data:
        raise PhotoRefused("That file is empty. Please choose a JPEG or PNG photo.")
    if len(data) > MAX_BYTES:
        raise PhotoRefused(f"That photo is larger than {MAX_BYTES // (1024 * 1024)} MB. Please choose a smaller one.")
    try:
        with Image.open(BytesIO(data), formats=FORMATS) as image:
            if image.width * image.height > MAX_PIXELS:
                raise PhotoRefused("That photo has too many pixels. Please choose a smaller one.")
            image.draft("RGB", (SIDE * 2, SIDE * 2))  # a JPEG decodes at a fraction of its size; no-op for PNG
            upright = ImageOps.exif_transpose(image)  # turned as the camera meant, before the EXIF is left behind
            upright.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
            drawn = _on_white(upright)
    except PhotoRefused:
        raise
    except Exception as exc:  # Pillow's decoders raise many kinds (OSError, ValueError, SyntaxError...) on bad files
        raise PhotoRefused(NOT_A_PHOTO) from exc
    out = BytesIO()
    drawn.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def version(jpeg: bytes) -> str:
    """The photo's short content hash, part of its URL, so a changed photo is a new URL and caches may keep one."""
    return hashlib.sha256(jpeg).hexdigest()[:16]


def _on_white(image: Image.Image) -> Image.Image:
    """The pixels alone on a new RGB canvas (transparency over white): the new image has no info to carry."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, "white")
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas
