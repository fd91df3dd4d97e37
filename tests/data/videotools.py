"""Helpers for the video tests: small PyAV-written videos whose frames carry their index.

Every file is a few seconds of 64x64 H.264 so that the whole video test set stays fast; the frame
number in the pixels lets a test check exactly which frame the decoder returned.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 10  # frame-number bits at 64 px: 6-px blocks
SIZE = 64
SAMPLE_VIDEOS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sample-videos"
) / "epic-kitchens-avt-demo"


def numbered_frame(index: int, size: int = SIZE) -> np.ndarray:
    """A grey frame with a moving square and ``index`` drawn as a bar code in the top rows."""
    from verbnoun.data.synth import draw_frame_number

    image = np.full((size, size, 3), 90, np.uint8)
    x = (index * 3) % (size - 12)
    image[30:42, x : x + 12] = (200, 60, 40)
    return draw_frame_number(image, index, bits=BITS)


def frame_numbers(frames: np.ndarray) -> list[int]:
    """The indices drawn into decoded frames."""
    from verbnoun.data.synth import read_frame_number

    return [read_frame_number(frame, bits=BITS) for frame in frames]


def write_numbered(path: Path, count: int, fps, **options) -> Path:
    """A constant-rate numbered video (``options`` go to ``write_video``: bframes, gop, pts...)."""
    from verbnoun.data.synth import write_video

    options.setdefault("crf", 12)
    options.setdefault("gop", 12)
    return write_video(path, (numbered_frame(i) for i in range(count)), fps, **options)


def stream_copy_cut(src: Path, dst: Path, cut_frame: int) -> Path:
    """A stream-copied cut of ``src`` starting at ``cut_frame`` (not a keyframe): the packets
    from the keyframe before it are copied with negative timestamps, so the MP4 muxer writes an
    edit list that hides them, as ``ffmpeg -ss T -c copy`` does."""
    import av

    source = av.open(str(src))
    stream = source.streams.video[0]
    step = int(1 / (stream.average_rate * stream.time_base))
    keyframe = max(k for k in range(0, cut_frame + 1, 12))  # write_numbered's gop
    out = av.open(str(dst), "w", format="mp4")
    copy = out.add_stream_from_template(stream)
    for packet in source.demux(stream):
        if packet.dts is None or packet.pts < keyframe * step:
            continue
        packet.pts -= cut_frame * step
        packet.dts -= cut_frame * step
        packet.stream = copy
        out.mux(packet)
    out.close()
    source.close()
    return dst


class Videos:
    """Paths of the generated test videos, and what each contains."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cfr = {
            "25": write_numbered(root / "cfr25.mp4", 75, 25),
            "30": write_numbered(root / "cfr30.mp4", 90, 30),
            "50": write_numbered(root / "cfr50.mp4", 150, 50),
            "59.94": write_numbered(root / "cfr5994.mp4", 180, Fraction(60000, 1001)),
        }
        self.bframes = write_numbered(root / "bframes.mp4", 90, 30, bframes=3, preset="medium")
        # variable frame rate: irregular gaps of 20-50 ms, in a 1 ms time base
        rng = np.random.default_rng(3)
        gaps = rng.choice([20, 33, 40, 50], size=89)
        self.vfr_pts = [0, *np.cumsum(gaps).tolist()]
        self.vfr = write_numbered(
            root / "vfr.mp4", 90, 30, pts=self.vfr_pts, time_base=Fraction(1, 1000)
        )
        # non-zero start time: the first frame is presented at 0.5 s (an empty edit)
        self.offset = write_numbered(
            root / "offset.mp4", 90, 30, pts=[15 + i for i in range(90)], time_base=Fraction(1, 30)
        )
        # a stream-copied cut of the B-frame file starting at its frame 17 (edit list)
        self.cut_frame = 17
        self.cut = stream_copy_cut(self.bframes, root / "cut.mp4", self.cut_frame)
        # LLaVAction's chunk layout with 2-s chunks: 0.MP4, 2.MP4, 4.MP4 (150 frames at 30 fps)
        self.chunk_root = root / "chunks"
        folder = self.chunk_root / "P01" / "P01_01.MP4"
        for start in (0, 2, 4):
            first = start * 30
            count = min(60, 150 - first)
            write_video_frames(folder / f"{start}.MP4", range(first, first + count), 30)
        # the EK100 layout: one file per video
        self.ek100_root = root / "ek100"
        write_numbered(self.ek100_root / "P02" / "videos" / "P02_03.MP4", 120, 50)


def write_video_frames(path: Path, numbers, fps) -> Path:
    """A video whose frames carry the given (global) numbers."""
    from verbnoun.data.synth import write_video

    return write_video(path, (numbered_frame(i) for i in numbers), fps, crf=12, gop=12)
