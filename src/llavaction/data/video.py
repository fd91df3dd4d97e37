"""Frame-exact clip decoding: one seek per clip, then decode forward.

Frame index ``i`` of a video is the frame presented at time ``i / fps`` after the video's first
frame, where ``fps`` is read from the stream (its average rate) and never assumed. A decoded frame
is matched to a wanted index by its presentation timestamp, never by counting packets after a
seek: the chosen frame is the last one whose time is below ``(i + 0.5) / fps``. For a constant-rate
file this is exactly the ``i``-th frame in presentation order, whatever the GOP structure
(B-frames), the time base, or an edit list (a stream-copied cut whose leading packets are
discarded, or a non-zero start time); for a variable-rate file it is the frame on screen at that
nominal time.

The decoder seeks once, to the keyframe before the first wanted frame, and reads forward from
there; groups of pictures that hold no wanted frame are demuxed but not decoded (a keyframe before
the next wanted frame makes everything before it unnecessary). If the seek lands after the first
wanted frame (possible with B-frames or odd indexes), it seeks again further back, never returning
a wrong frame. Failures raise :class:`VideoError` naming the file and segment: a frame is never
substituted.

Backends share the :class:`VideoBackend` interface; :class:`PyAVBackend` is the only one and the
default (OpenCV and decord are not dependencies and were not measured; decord is known to return
shifted frames on files with edit lists).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from llavaction.data.layouts import Piece, VideoLayout
from llavaction.data.sampling import Jitter, SegmentError, frame_indices
from llavaction.errors import VideoError

Size = int | tuple[int, int] | None  # None: native; int: square side; (width, height)


@dataclass(frozen=True)
class StreamInfo:
    """What a file's video stream says about itself."""

    path: Path
    fps: float
    num_frames: int
    width: int
    height: int
    time_base: Fraction
    start_pts: int  # presentation timestamp of the first frame, in time_base units
    codec: str


@dataclass(frozen=True)
class VideoInfo:
    """A whole video (one file, or chunks): its rate, length and pieces."""

    video_id: str
    fps: float
    num_frames: int
    pieces: tuple[Piece, ...]
    offsets: tuple[int, ...]  # first frame index of each piece: round(piece.start * fps)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


@dataclass(frozen=True)
class Clip:
    """Decoded frames of a segment: ``frames`` (N, H, W, 3) uint8 RGB, the frame indices asked for,
    and the presentation times (seconds from the video's first frame) actually decoded."""

    video_id: str
    start: float
    stop: float
    fps: float
    indices: np.ndarray
    timestamps: np.ndarray
    frames: np.ndarray


def target_size(size: Size) -> tuple[int, int] | None:
    """``(width, height)`` of a size setting, or ``None`` for the native size."""
    if size is None:
        return None
    if isinstance(size, int):
        width = height = size
    else:
        width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"frame size must be positive, got {size}")
    return int(width), int(height)


class VideoBackend(Protocol):
    """Reads stream facts and frames from one file."""

    name: str

    def probe(self, path: Path) -> StreamInfo:
        """Stream facts; raises :class:`VideoError` for a missing or unreadable file."""
        ...

    def decode(
        self, info: StreamInfo, indices: Sequence[int], size: Size = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(len(indices), H, W, 3)`` uint8 and their times in seconds, for frame
        indices of this file (sorted or not, repeats allowed)."""
        ...


class PyAVBackend:
    """Decoding with PyAV (FFmpeg): timestamp matching, one seek per call, frame threading."""

    name = "pyav"
    _BACKOFF = (0.0, 1.0, 4.0, 16.0)  # seconds before the first wanted frame to seek to

    def __init__(self, threads: int = 0, skip_unneeded: bool = True) -> None:
        self.threads = threads  # 0: FFmpeg's choice
        self.skip_unneeded = skip_unneeded  # False: decode every frame after the seek

    def _open(self, path: Path):
        import av

        if not path.is_file():
            raise VideoError(path, "video file not found")
        try:
            container = av.open(str(path), metadata_errors="ignore")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise VideoError(path, f"cannot open video: {error}") from None
        if not container.streams.video:
            container.close()
            raise VideoError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if self.threads:
            stream.codec_context.thread_count = self.threads
        return container, stream

    def probe(self, path: Path) -> StreamInfo:
        import av

        path = Path(path)
        container, stream = self._open(path)
        try:
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not rate or rate <= 0:
                raise VideoError(path, "the stream states no frame rate")
            fps = float(rate)
            time_base = stream.time_base
            if time_base is None:
                raise VideoError(path, "the stream has no time base")
            start_pts = stream.start_time
            if start_pts is None:
                first = next(container.decode(stream), None)
                if first is None or first.pts is None:
                    raise VideoError(path, "no decodable frame with a timestamp")
                start_pts = first.pts
            if stream.duration:
                num_frames = round(float(stream.duration * time_base) * fps)
            elif stream.frames:
                num_frames = int(stream.frames)
            else:  # count packets without decoding them
                container.seek(0)
                num_frames = sum(1 for p in container.demux(stream) if p.size and not p.is_discard)
            if num_frames < 1:
                raise VideoError(path, "the video has no frames")
            return StreamInfo(
                path=path,
                fps=fps,
                num_frames=num_frames,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                time_base=time_base,
                start_pts=int(start_pts),
                codec=stream.codec_context.name,
            )
        except av.FFmpegError as error:
            raise VideoError(path, f"cannot read the video stream: {error}") from None
        finally:
            container.close()

    def decode(
        self, info: StreamInfo, indices: Sequence[int], size: Size = None
    ) -> tuple[np.ndarray, np.ndarray]:
        import av

        wanted = sorted({int(i) for i in indices})
        if not wanted:
            raise ValueError("no frame indices")
        if wanted[0] < 0 or wanted[-1] >= info.num_frames:
            raise VideoError(
                info.path,
                f"frame {wanted[-1] if wanted[-1] >= info.num_frames else wanted[0]} is outside "
                f"the video's {info.num_frames} frames",
            )
        resize = target_size(size)
        container, stream = self._open(info.path)
        try:
            first_time = wanted[0] / info.fps
            picked = None
            for back in self._BACKOFF:
                seek_time = first_time - back
                if seek_time <= 0:
                    container.seek(info.start_pts, stream=stream, backward=True)
                else:
                    offset = info.start_pts + int(seek_time / info.time_base)
                    container.seek(offset, stream=stream, backward=True)
                picked = self._scan(container, stream, info, wanted, resize, self.skip_unneeded)
                if picked is not None or seek_time <= 0:
                    break
            if picked is None:
                raise VideoError(info.path, f"cannot reach frame {wanted[0]} by seeking")
        except av.FFmpegError as error:
            raise VideoError(info.path, f"decoding failed: {error}") from None
        finally:
            container.close()
        by_index = dict(zip(wanted, picked, strict=True))
        frames = np.stack([by_index[int(i)][1] for i in indices])
        times = np.array([by_index[int(i)][0] for i in indices], dtype=np.float64)
        return frames, times

    @staticmethod
    def _scan(container, stream, info: StreamInfo, wanted: list[int], resize, skip: bool):
        """Decode forward from the current position and match frames to ``wanted`` by time.

        Returns ``[(time, rgb), ...]`` per wanted index, or ``None`` when the position is already
        past the first wanted frame (the caller seeks further back)."""
        half = 0.5 / info.fps
        limits = [i / info.fps + half for i in wanted]  # frame i: last frame with time < limit
        tb = info.time_base

        def rgb(frame) -> np.ndarray:
            if resize is None:
                return frame.to_ndarray(format="rgb24")
            width, height = resize
            return frame.to_ndarray(
                format="rgb24", width=width, height=height, interpolation="BICUBIC"
            )

        picked: list[tuple[float, np.ndarray]] = []
        previous = None  # (time, frame) of the last trusted frame below the current limit
        converted: tuple[object, np.ndarray] | None = None  # (frame, its RGB array)
        trusted = False
        j = 0
        pending = [limits[0]]  # the limit being searched; read by the packet feeder
        frames = (
            _needed_frames(container, stream, info, pending) if skip else container.decode(stream)
        )
        for frame in frames:
            if frame.pts is None:
                raise VideoError(info.path, "decoded frame has no timestamp")
            if not trusted:  # leading frames decoded without their references (open GOP)
                if frame.is_corrupt:
                    continue
                trusted = True
            time = float((frame.pts - info.start_pts) * tb)
            while j < len(limits) and time >= limits[j]:
                if previous is None:
                    return None  # landed after the first wanted frame
                if converted is None or converted[0] is not previous[1]:
                    converted = (previous[1], rgb(previous[1]))
                picked.append((previous[0], converted[1]))
                j += 1
                if j < len(limits):
                    pending[0] = limits[j]
            if j == len(limits):
                return picked
            previous = (time, frame)
        if previous is None:
            return None
        last_time = previous[0]
        for limit, index in zip(limits[j:], wanted[j:], strict=True):
            if limit - last_time > 2 * half + 1e-9:  # beyond the last frame's nominal slot
                raise VideoError(
                    info.path,
                    f"frame {index} is past the end of the stream (last frame at "
                    f"{last_time:.3f} s; the container claims {info.num_frames} frames)",
                )
            if converted is None or converted[0] is not previous[1]:
                converted = (previous[1], rgb(previous[1]))
            picked.append((last_time, converted[1]))
        return picked


def _needed_frames(container, stream, info: StreamInfo, pending: list[float]):
    """Decoded frames from the current position, skipping the groups of pictures that hold no
    wanted frame: packets are demuxed (cheap) but decoded only from the last keyframe at or before
    the wanted time ``pending[0]`` (seconds; updated by the consumer as it advances).

    Packets since the last decoded one are held back; a keyframe before the wanted time drops
    them (nothing before it is needed); a packet at or after the wanted time feeds them all to the
    decoder, which then decodes every packet until the consumer moves on to a later time. Frames
    thus come out complete, in presentation order, from that keyframe through the wanted time.
    """
    held: list = []
    live_for: float | None = None  # decode everything while the consumer searches this limit
    tb, start = info.time_base, info.start_pts
    for packet in container.demux(stream):
        if packet.size == 0 and packet.pts is None:
            continue  # the demuxer's final empty packet; the decoder is flushed below
        time = None if packet.pts is None else float((packet.pts - start) * tb)
        if live_for is not None and live_for == pending[0]:
            yield from packet.decode()
            continue
        live_for = None
        if packet.is_keyframe and time is not None and time < pending[0]:
            held = []
        held.append(packet)
        if time is None or time >= pending[0]:
            live_for = pending[0]
            for waiting in held:
                yield from waiting.decode()
            held = []
    for waiting in held:
        yield from waiting.decode()
    yield from stream.decode(None)


class VideoReader:
    """Reads segments of videos in a layout: ``reader.read("P01_11", 3.2, 5.9, 8)``.

    Stream facts are cached per file (``probe_cache`` entries), so that many segments of one
    video open each file once for probing.
    """

    def __init__(
        self,
        layout: VideoLayout,
        backend: VideoBackend | None = None,
        *,
        size: Size = None,
        probe_cache: int = 512,
    ) -> None:
        self.layout = layout
        self.backend = backend or PyAVBackend()
        self.size = size
        self._probes: OrderedDict[Path, StreamInfo] = OrderedDict()
        self._probe_cache = probe_cache

    def probe(self, path: Path) -> StreamInfo:
        """Stream facts of one file, cached."""
        if path in self._probes:
            self._probes.move_to_end(path)
            return self._probes[path]
        info = self.backend.probe(path)
        self._probes[path] = info
        while len(self._probes) > self._probe_cache:
            self._probes.popitem(last=False)
        return info

    def info(self, video_id: str) -> VideoInfo:
        """The rate, length and pieces of a video (probes its first and last file)."""
        pieces = tuple(self.layout.pieces(video_id))
        first = self.probe(pieces[0].path)
        offsets = tuple(round(p.start * first.fps) for p in pieces)
        last = self.probe(pieces[-1].path) if len(pieces) > 1 else first
        return VideoInfo(video_id, first.fps, offsets[-1] + last.num_frames, pieces, offsets)

    def read(
        self,
        video_id: str,
        start: float,
        stop: float,
        n: int,
        *,
        jitter: Jitter | None = None,
        size: Size = None,
    ) -> Clip:
        """The ``n`` frames SPEC 2 samples from segment ``[start, stop]`` (seconds)."""
        info = self.info(video_id)
        try:
            indices = frame_indices(start, stop, info.fps, info.num_frames, n, jitter=jitter)
        except SegmentError as error:
            raise VideoError(_label(info), str(error), segment=(start, stop)) from None
        return self.read_indices(info, indices, start=start, stop=stop, size=size)

    def read_indices(
        self,
        info: VideoInfo,
        indices: np.ndarray,
        *,
        start: float = float("nan"),
        stop: float = float("nan"),
        size: Size = None,
    ) -> Clip:
        """Frames at given video frame indices: one seek per file touched."""
        size = self.size if size is None else size
        indices = np.asarray(indices, dtype=np.int64)
        piece_of = np.searchsorted(np.asarray(info.offsets), indices, side="right") - 1
        frames: list[np.ndarray | None] = [None] * len(indices)
        times = np.zeros(len(indices), dtype=np.float64)
        for k in np.unique(piece_of):
            piece = info.pieces[k]
            where = np.flatnonzero(piece_of == k)
            try:
                stream = self.probe(piece.path)
                if abs(stream.fps - info.fps) > 1e-6 * info.fps:
                    raise VideoError(
                        piece.path, f"chunk at {stream.fps:.4g} fps, the video at {info.fps:.4g}"
                    )
                local = indices[where] - info.offsets[k]
                if local.max() >= stream.num_frames:
                    raise VideoError(
                        piece.path,
                        f"frame {int(indices[where][local.argmax()])} of the video is frame "
                        f"{int(local.max())} of this chunk, which has {stream.num_frames}",
                    )
                got, got_times = self.backend.decode(stream, local.tolist(), size)
            except VideoError as error:
                raise VideoError(error.path, _reason(error), segment=(start, stop)) from None
            for slot, frame, time in zip(where, got, got_times, strict=True):
                frames[slot] = frame
                times[slot] = info.offsets[k] / info.fps + time
        return Clip(
            video_id=info.video_id,
            start=start,
            stop=stop,
            fps=info.fps,
            indices=indices,
            timestamps=times,
            frames=np.stack(frames),
        )


def _label(info: VideoInfo) -> str:
    return str(info.pieces[0].path) if len(info.pieces) == 1 else info.video_id


def _reason(error: VideoError) -> str:
    prefix = f"{error.path}: "
    message = str(error)
    return message[len(prefix) :] if message.startswith(prefix) else message


def read_clip(
    path: str | Path,
    start: float,
    stop: float,
    n: int,
    *,
    size: Size = None,
    jitter: Jitter | None = None,
) -> Clip:
    """Convenience: ``n`` frames of segment ``[start, stop]`` of a single video file."""
    from llavaction.data.layouts import FileLayout

    return VideoReader(FileLayout(path)).read(
        Path(path).stem, start, stop, n, size=size, jitter=jitter
    )
