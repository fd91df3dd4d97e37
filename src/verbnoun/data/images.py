"""PNG files and contact sheets of frames (PyAV's PNG encoder), and the bicubic frame resize.

:func:`resize_frames` is the one resize of frames that feed a model: Pillow's bicubic filter on
the 8-bit image, as the release's image processor (and so the released checkpoints' training)
does it; Pillow is imported only there.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from verbnoun.errors import VerbnounError
from verbnoun.fileio import atomic_write_bytes


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 image ``(H, W, 3)`` as PNG."""
    import av

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height = image.shape[1], image.shape[0]
    codec.pix_fmt = "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB image as a PNG file, atomically; returns the path."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(image))
    return path


def read_png(path: str | Path) -> np.ndarray:
    """Read a PNG (or any image FFmpeg decodes) as RGB uint8."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def contact_sheet(frames: np.ndarray, columns: int | None = None, gap: int = 4) -> np.ndarray:
    """Frames ``(N, H, W, 3)`` tiled in reading order on a dark grid."""
    n, height, width = frames.shape[:3]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    sheet = np.full(
        (rows * (height + gap) + gap, columns * (width + gap) + gap, 3), 24, dtype=np.uint8
    )
    for k, frame in enumerate(frames):
        r, c = divmod(k, columns)
        y, x = gap + r * (height + gap), gap + c * (width + gap)
        sheet[y : y + height, x : x + width] = frame
    return sheet


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB frames ``(N, H, W, 3)`` -> ``(N, height, width, 3)`` for ``size`` = ``(width,
    height)``, by Pillow's bicubic filter (``Image.resize(size, BICUBIC)``, no reducing gap),
    which rounds and clips to 0-255 after each of its two separable passes. Frames already at
    that size are returned unchanged."""
    width, height = size
    if frames.shape[1:3] == (height, width):
        return frames
    from PIL import Image

    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        image = Image.fromarray(np.ascontiguousarray(frame))
        out[i] = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))
    return out


def jpeg_bytes(image: np.ndarray, quality: int = 80) -> bytes:
    """An RGB uint8 image as JPEG (Pillow)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is in the eval extra
        raise VerbnounError("thumbnails need Pillow: pip install 'verbnoun[eval]'") from None
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
