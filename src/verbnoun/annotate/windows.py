"""Windows over whole videos, and a streaming reader that decodes each frame at most once.

A :class:`Window` is a span of frames ``[first, end)`` of one video; sliding windows are
``window`` seconds long every ``stride`` seconds (the last one ends at the video's end), or
given segments are windows themselves. Each window is shown to a model as the frames SPEC 2
samples from it (:func:`verbnoun.data.sampling.frame_indices`), in one or more *views*
(frames, size) at once (a specialist and a model may want different ones).

:class:`StreamingReader` reads a video's files forward once, from the keyframe before the first
frame any window wants: every packet is decoded once, only wanted frames are converted (one
swscale context per size, as :mod:`verbnoun.data.video` does), and a window is handed out as
soon as its last frame is decoded; its frames leave the buffer when no later window wants them.
Memory holds the frames of the windows in flight, whatever the video's length.
:func:`prefetch` runs the reader in a worker thread ahead of the model (PyAV releases the
interpreter lock while decoding). :func:`naive_windows` decodes window by window through
:class:`~verbnoun.data.video.VideoReader` (one seek each), the reference of the benchmark.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from verbnoun.data.sampling import frame_indices
from verbnoun.data.video import Size, VideoInfo, VideoReader, target_size
from verbnoun.errors import VerbnounError, VideoError

View = tuple[int, Size]  # (frames per window, size)


@dataclass(frozen=True)
class Window:
    """Frames ``[first, end)`` of a video at ``fps``; ``index``: its place in the video."""

    video_id: str
    index: int
    first: int
    end: int
    fps: float

    @property
    def id(self) -> str:
        return f"{self.video_id}/{self.index:06d}"

    @property
    def start(self) -> float:
        return self.first / self.fps

    @property
    def stop(self) -> float:
        return self.end / self.fps

    @property
    def centre(self) -> int:
        """The centre frame (the earlier of two): the frame the window speaks for."""
        return (self.first + self.end - 1) // 2


def sliding_windows(
    video_id: str, num_frames: int, fps: float, window: float, stride: float
) -> list[Window]:
    """Windows of ``window`` seconds every ``stride`` seconds; the last one ends at the end."""
    size = round(window * fps)
    step = max(1, round(stride * fps))
    if size < 1:
        raise VerbnounError(f"--window {window:g} s is shorter than one frame at {fps:g} fps")
    if size > num_frames:
        raise VerbnounError(
            f"video {video_id}: --window {window:g} s is longer than the video "
            f"({num_frames / fps:.2f} s, {num_frames} frames)"
        )
    firsts = list(range(0, num_frames - size + 1, step))
    if firsts[-1] + size < num_frames:
        firsts.append(num_frames - size)
    return [Window(video_id, k, f, f + size, fps) for k, f in enumerate(firsts)]


def segment_windows(
    video_id: str, spans: Sequence[tuple[float, float]], num_frames: int, fps: float
) -> list[Window]:
    """Given segments ``(start, stop)`` in seconds as windows, in the order given."""
    windows = []
    for k, (start, stop) in enumerate(spans):
        first, end = round(start * fps), min(round(stop * fps), num_frames)
        if end <= first:
            raise _empty_segment(video_id, start, stop, num_frames, fps)
        windows.append(Window(video_id, k, first, end, fps))
    return windows


def _empty_segment(video_id, start, stop, num_frames, fps) -> VideoError:
    return VideoError(
        video_id,
        f"segment is empty or after the video's end ({num_frames / fps:.2f} s)",
        segment=(start, stop),
    )


def window_indices(window: Window, num_frames: int, n: int) -> np.ndarray:
    """The ``n`` frames SPEC 2 samples from a window."""
    return frame_indices(window.start, window.stop, window.fps, num_frames, n)


class StreamingReader:
    """Frames of many windows of one video, decoding each packet at most once.

    ``views``: name -> (frames, size). ``decoded`` counts packets sent to the decoder and
    ``converted`` frames converted to RGB, over the reader's life.
    """

    def __init__(self, reader: VideoReader, views: dict[str, View]) -> None:
        self.reader = reader
        self.views = views
        self.decoded = 0
        self.converted = 0

    def windows(
        self, info: VideoInfo, windows: Sequence[Window]
    ) -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
        """``(window, {view: (n, H, W, 3) uint8})`` in the order given."""
        if not windows:
            return
        wanted = [
            {name: window_indices(w, info.num_frames, n) for name, (n, _) in self.views.items()}
            for w in windows
        ]
        needs: dict[int, dict] = {}  # frame -> {size key: references}
        for plan in wanted:
            for name, indices in plan.items():
                key = target_size(self.views[name][1])
                for i in indices.tolist():
                    slot = needs.setdefault(i, {})
                    slot[key] = slot.get(key, 0) + 1
        if not needs:  # no views: nothing to decode
            for w in windows:
                yield w, {}
            return
        ready_at = [max(int(ix.max()) for ix in plan.values()) for plan in wanted]
        buffer: dict[tuple[int, object], np.ndarray] = {}
        pending = 0
        for index, frame in self._frames(info, sorted(needs)):
            for key in needs[index]:
                buffer[(index, key)] = self._convert(frame, key)
                self.converted += 1
            while pending < len(windows) and ready_at[pending] <= index:
                plan = wanted[pending]
                out = {}
                for name, indices in plan.items():
                    key = target_size(self.views[name][1])
                    out[name] = np.stack([buffer[(i, key)] for i in indices.tolist()])
                    for i in indices.tolist():
                        needs[i][key] -= 1
                        if needs[i][key] == 0:
                            del buffer[(i, key)]
                yield windows[pending], out
                pending += 1
            if pending == len(windows):
                return
        raise VideoError(info.video_id, f"window {windows[pending].id}: frames not decoded")

    def _convert(self, frame, key) -> np.ndarray:
        from verbnoun.data.video import _converter

        converters = self.__dict__.setdefault("_converters", {})
        if key not in converters:
            converters[key] = _converter(key)
        return converters[key](frame)

    def _frames(self, info: VideoInfo, needed: list[int]) -> Iterator[tuple[int, object]]:
        """``(video frame index, av frame)`` of the needed frames, decoding forward once."""
        offsets = [*list(info.offsets), info.num_frames]
        needed_array = np.asarray(needed)
        for k, piece in enumerate(info.pieces):
            lo, hi = offsets[k], offsets[k + 1]
            inside = needed_array[(needed_array >= lo) & (needed_array < hi)]
            if not len(inside):
                continue
            wanted = set((inside - lo).tolist())
            yield from self._piece(piece.path, lo, wanted)
            if wanted:
                raise VideoError(
                    piece.path, f"frame {lo + min(wanted)} of video {info.video_id} not decoded"
                )

    def _piece(self, path, lo: int, wanted: set[int]) -> Iterator[tuple[int, object]]:
        """The wanted frames (local indices, removed from ``wanted`` as found) of one file."""
        import av

        facts = self.reader.probe(path)
        tb, fps, start = facts.time_base, facts.fps, facts.start_pts
        first = min(wanted)
        try:
            container = av.open(str(path), metadata_errors="ignore")
        except (av.FFmpegError, OSError) as error:
            raise VideoError(path, f"cannot open video: {error}") from None
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            check = first > fps  # seek to the keyframe before the first wanted frame
            if check:
                target = start + int((first - 0.5) / fps / tb)
                container.seek(max(target, start), stream=stream, backward=True)
            while True:
                restart = False
                for packet in container.demux(stream):
                    self.decoded += packet.size > 0
                    for frame in packet.decode():
                        if frame.pts is None:
                            continue
                        local = round(float((frame.pts - start) * tb) * fps)
                        if check:
                            check = False
                            restart = local > first  # the seek overshot: read from the start
                            if restart:
                                break
                        if local in wanted:
                            wanted.discard(local)
                            yield lo + local, frame
                    if restart or not wanted:
                        break
                if not restart:
                    return
                container.seek(start, stream=stream, backward=True)
        except av.FFmpegError as error:
            raise VideoError(path, f"decoding failed: {error}") from None
        finally:
            container.close()


def prefetch(items: Iterable, depth: int = 4) -> Iterator:
    """Iterate ``items`` in a worker thread, at most ``depth`` ahead; errors re-raised here."""
    box: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((done, None))
        except BaseException as error:  # handed to the consumer
            box.put((done, error))

    thread = threading.Thread(target=work, name="annotate-decoder", daemon=True)
    thread.start()
    try:
        while True:
            item, error = box.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()


def naive_windows(
    reader: VideoReader, info: VideoInfo, windows: Sequence[Window], views: dict[str, View]
) -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
    """The reference: each window's frames decoded on their own (one seek per window)."""
    for w in windows:
        out = {}
        for name, (n, size) in views.items():
            indices = window_indices(w, info.num_frames, n)
            out[name] = reader.read_indices(info, indices, size=size).frames
        yield w, out
