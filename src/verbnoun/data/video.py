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
there, deciding from packet timestamps alone (demuxing is cheap, decoding is not) which packets
the wanted frames need (:class:`_Plan`): groups of pictures that hold no wanted frame are never
decoded, nor is anything after the last wanted frame of a group, nor (H.264 in MP4/MKV form)
non-reference pictures that are not wanted (``nal_ref_idc`` 0: no other frame refers to them).
Streams where that reasoning does not hold (open groups of pictures, whose leading frames refer
to the group before; packets without timestamps) are noticed and decoded forward frame by frame
instead; other codecs are planned without the non-reference skipping. If the seek lands after
the first wanted frame (possible with B-frames or odd indexes), it seeks again further back,
never returning a wrong frame. Failures raise :class:`VideoError` naming the file and segment: a
frame is never substituted. Frames are converted to RGB (and resized) by one swscale context per
call, and a backend keeps its last files open for the next segments (closed before a fork).

Backends share the :class:`VideoBackend` interface; :class:`PyAVBackend` is the only one and the
default (OpenCV and decord are not dependencies and were not measured; decord is known to return
shifted frames on files with edit lists).
"""

from __future__ import annotations

import gc
import os
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from verbnoun.data.layouts import Piece, VideoLayout
from verbnoun.data.sampling import Jitter, SegmentError, frame_indices
from verbnoun.errors import VideoError

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
    """Decoding with PyAV (FFmpeg): timestamp matching, one seek per call.

    ``skip_unneeded`` (the default) decodes only the packets the wanted frames need (see the
    module docstring); ``False`` decodes every frame after the seek (the reference behaviour).
    ``thread_type`` and ``threads`` go to FFmpeg's decoder (``threads=0``: FFmpeg's choice).
    The last ``keep_open`` files stay open for the next calls (0: every call opens its file);
    :meth:`close` closes them. ``decoded_packets`` counts the packets sent to the decoder.
    """

    name = "pyav"
    _BACKOFF = (0.0, 1.0, 4.0, 16.0)  # seconds before the first wanted frame to seek to

    def __init__(
        self,
        threads: int = 0,
        skip_unneeded: bool = True,
        thread_type: str = "AUTO",
        keep_open: int = 2,
    ) -> None:
        self.threads = threads  # 0: FFmpeg's choice
        self.skip_unneeded = skip_unneeded  # False: decode every frame after the seek
        self.thread_type = thread_type
        self.keep_open = keep_open  # files kept open between calls (0: open every time)
        self.decoded_packets = 0
        self._unplannable: set[Path] = set()  # files with open groups of pictures: decode all
        self._kept: OrderedDict[Path, tuple[tuple[int, int], object, object]] = OrderedDict()
        self._pid = os.getpid()
        _BACKENDS.add(self)

    @contextmanager
    def _file(self, path: Path):
        """``(container, stream)`` of a file, reused from an earlier call when the file is
        unchanged (same size and modification time) and this is the same process; kept open
        afterwards unless the call failed."""
        if os.getpid() != self._pid:  # forked without the hook: never touch the parent's files
            _ORPHANS.extend(self._kept.values())  # freeing them here could wait on dead threads
            self._kept = OrderedDict()
            self._pid = os.getpid()
        if self.threads != 1 and self.thread_type != "NONE":
            _threaded[0] = True
        try:
            status = path.stat()
        except OSError:
            status = None
        key = (status.st_mtime_ns, status.st_size) if status else (0, 0)
        entry = self._kept.pop(path, None)
        if entry is not None and entry[0] == key:
            container, stream = entry[1], entry[2]
        else:
            if entry is not None:
                entry[1].close()
            container, stream = self._open(path)
        try:
            yield container, stream
        except BaseException:
            container.close()
            raise
        if self.keep_open < 1 or status is None:
            container.close()
            return
        self._kept[path] = (key, container, stream)
        while len(self._kept) > self.keep_open:
            self._kept.popitem(last=False)[1][1].close()

    def close(self) -> None:
        """Close the files kept open."""
        while self._kept:
            self._kept.popitem()[1][1].close()

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
        stream.thread_type = self.thread_type
        if self.threads:
            stream.codec_context.thread_count = self.threads
        return container, stream

    def probe(self, path: Path) -> StreamInfo:
        path = Path(path)
        with self._file(path) as (container, stream):
            return self._probe(path, container, stream)

    @staticmethod
    def _probe(path: Path, container, stream) -> StreamInfo:
        import av

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
        convert = _converter(target_size(size))
        with self._file(info.path) as (container, stream):
            try:
                first_time = wanted[0] / info.fps
                picked = None
                for back in self._BACKOFF:
                    seek_time = first_time - back
                    picked = self._decode_from(container, stream, info, wanted, convert, seek_time)
                    if picked is not None or seek_time <= 0:
                        break
                if picked is None:
                    raise VideoError(info.path, f"cannot reach frame {wanted[0]} by seeking")
            except av.FFmpegError as error:
                raise VideoError(info.path, f"decoding failed: {error}") from None
        by_index = dict(zip(wanted, picked, strict=True))
        first = picked[0][1]
        frames = np.empty((len(indices), *first.shape), dtype=first.dtype)
        for slot, i in enumerate(indices):
            frames[slot] = by_index[int(i)][1]
        times = np.array([by_index[int(i)][0] for i in indices], dtype=np.float64)
        return frames, times

    def _decode_from(self, container, stream, info, wanted, convert, seek_time: float):
        """One attempt from the keyframe before ``seek_time``: ``[(time, rgb), ...]`` per wanted
        index, or ``None`` when that keyframe is after the first wanted frame."""

        def seek() -> None:
            if seek_time <= 0:  # before the start: some demuxers (MPEG-TS) seek by decode time
                before = info.start_pts - max(int(1 / info.time_base), 1)
                container.seek(before, stream=stream, backward=True)
            else:
                offset = info.start_pts + int(seek_time / info.time_base)
                container.seek(offset, stream=stream, backward=True)

        seek()
        if self.skip_unneeded and info.path not in self._unplannable:
            plan = _Plan(stream.codec_context, info, wanted, convert, _nonref_test(stream))
            try:
                return plan.run(container.demux(stream))
            except _Unplannable:  # open groups of pictures: decode everything from the seek
                self._unplannable.add(info.path)
                seek()
            finally:
                self.decoded_packets += plan.sent
        return self._scan(container, stream, info, wanted, convert)

    def _scan(self, container, stream, info: StreamInfo, wanted: list[int], convert):
        """Decode every frame forward from the current position and match frames to ``wanted``
        by time (the reference path; also used for streams the plan cannot handle).

        Returns ``[(time, rgb), ...]`` per wanted index, or ``None`` when the position is already
        past the first wanted frame (the caller seeks further back)."""
        half = 0.5 / info.fps
        limits = [i / info.fps + half for i in wanted]  # frame i: last frame with time < limit
        tb = info.time_base
        picked: list[tuple[float, np.ndarray]] = []
        previous = None  # (time, frame) of the last trusted frame below the current limit
        converted: tuple[object, np.ndarray] | None = None  # (frame, its RGB array)
        trusted = False
        j = 0
        for packet in container.demux(stream):
            if packet.size:
                self.decoded_packets += 1
            for frame in packet.decode():
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
                        converted = (previous[1], convert(previous[1]))
                    picked.append((previous[0], converted[1]))
                    j += 1
                if j == len(limits):
                    return picked
                previous = (time, frame)
        if previous is None:
            return None
        last_time = previous[0]
        for limit, index in zip(limits[j:], wanted[j:], strict=True):
            _check_not_past_end(info, index, limit, last_time)
            if converted is None or converted[0] is not previous[1]:
                converted = (previous[1], convert(previous[1]))
            picked.append((last_time, converted[1]))
        return picked


# A decoder with threads must be freed in the process that started them: a forked child (a
# DataLoader worker) that frees an inherited one waits for threads it does not have, forever. So
# before a fork, every backend closes the files it keeps open and, when threaded decoders were
# used since the last fork, the garbage collector frees those left in reference cycles (an
# exception's traceback holds its frames' containers); a child that still finds kept files (a fork
# that skipped the hook) leaves them unreleased.
_BACKENDS: weakref.WeakSet[PyAVBackend] = weakref.WeakSet()
_ORPHANS: list = []
_threaded = [False]  # a threaded decoder was used since the last fork


def _close_before_fork() -> None:
    for backend in list(_BACKENDS):
        backend.close()
    if _threaded[0]:
        gc.collect()
        _threaded[0] = False


os.register_at_fork(before=_close_before_fork)


def _converter(resize: tuple[int, int] | None):
    """Frame -> RGB uint8 array, resized when asked by the models' own resize (Pillow bicubic on
    the 8-bit RGB image, :func:`~verbnoun.data.images.resize_frames`), so that frames resized
    while decoding (``--size``, the frame cache) are the pixels the processor would make.

    One reformatter (swscale context) serves all frames of a call, single-threaded:
    ``frame.to_ndarray(format=...)`` makes a new context per frame, with a thread pool, which
    costs more than the conversion itself at 512 px (the pixels are identical)."""
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    options: dict = {"format": "rgb24", "threads": 1}
    if resize is not None:
        from verbnoun.data.images import resize_frames

        return lambda frame: resize_frames(
            reformatter.reformat(frame, **options).to_ndarray()[None], resize
        )[0]
    return lambda frame: reformatter.reformat(frame, **options).to_ndarray()


def _check_not_past_end(info: StreamInfo, index: int, limit: float, last_time: float) -> None:
    if limit - last_time > 1.0 / info.fps + 1e-9:  # beyond the last frame's nominal slot
        raise VideoError(
            info.path,
            f"frame {index} is past the end of the stream (last frame at "
            f"{last_time:.3f} s; the container claims {info.num_frames} frames)",
        )


class _Unplannable(Exception):
    """The stream breaks an assumption of :class:`_Plan` (an open group of pictures, a packet
    without a timestamp): decode it without a plan."""


def _nonref_test(stream):
    """A test ``packet -> bool`` that is true for a packet no other frame refers to, or
    ``None`` when the codec's packets cannot be read that way (then nothing is skipped).

    Only H.264 in MP4/MKV form (length-prefixed NAL units, ``avcC`` extradata) is read: a picture
    is non-reference when all its slice NAL units have ``nal_ref_idc`` 0. Any other codec or
    packing (HEVC, Annex B byte streams, VP9, ...) returns ``None``."""
    context = stream.codec_context
    extradata = context.extradata
    if context.name != "h264" or not extradata or len(extradata) < 7 or extradata[0] != 1:
        return None
    length_size = (extradata[4] & 3) + 1

    def nonref(packet) -> bool:
        data = memoryview(packet)
        size = data.nbytes
        at, slices = 0, 0
        while at + length_size < size:
            length = int.from_bytes(data[at : at + length_size], "big")
            header = data[at + length_size]
            if length < 1 or at + length_size + length > size:
                return False  # malformed: treat as a reference, never skip
            if 1 <= header & 0x1F <= 5:  # a slice of a picture
                if header & 0x60:  # nal_ref_idc != 0: other pictures refer to this one
                    return False
                slices += 1
            at += length_size + length
        return slices > 0

    return nonref


class _Group:
    """The packets of one group of pictures (from a keyframe), in decode order."""

    __slots__ = ("fed", "key_time", "number", "packets", "times")

    def __init__(self, key_time: float, number: int) -> None:
        self.key_time = key_time
        self.packets: list = []
        self.times: list[float] = []  # presentation times
        self.fed: list[bool] = []  # per decided packet: sent to the decoder or skipped
        self.number = number


class _Plan:
    """Decode only what the wanted frames need, deciding from packet timestamps.

    Packets are demuxed in decode order and held per group of pictures (from a keyframe). The
    frame for a limit ``L`` (frame ``i``: ``L = (i + 0.5) / fps``) is the packet with the largest
    presentation time below ``L``. It is known once a packet with a decode time of at least
    ``L`` has been demuxed: no later packet can present earlier (presentation never precedes
    decoding, decode times increase; both are checked on every packet). Then the packets of its
    group up to that one are sent to the decoder, starting at the group's keyframe when the
    decoder is not in that group yet, except non-reference pictures that present before ``L``
    (no other frame needs them and they are not wanted): groups of pictures without a wanted
    frame are never decoded. A packet presenting before its group's keyframe (a leading picture
    of an open group of pictures, which needs the group before) raises :class:`_Unplannable`,
    as does a packet without a timestamp, so the caller decodes such a file without a plan.
    Decoded frames are matched to the chosen packets by presentation timestamp; the decoder is
    drained once at the end.
    """

    def __init__(self, decoder, info: StreamInfo, wanted: list[int], convert, nonref) -> None:
        self.decoder = decoder
        self.info = info
        self.wanted = wanted
        self.convert = convert
        self.nonref = nonref
        self.tb = float(info.time_base)
        half = 0.5 / info.fps
        self.limits = [i / info.fps + half for i in wanted]
        self.j = 0  # the next limit to resolve
        self.choice: list[int] = []  # chosen pts per resolved limit
        self.chosen: set[int] = set()
        self.got: dict[int, np.ndarray] = {}  # pts -> RGB of chosen frames decoded
        self.waiting: dict[int, object] = {}  # decoded, not (yet) chosen, may be chosen later
        self.groups: list[_Group] = []  # the groups that may still hold a wanted frame
        self.entered: _Group | None = None  # the group the decoder is in
        self.pruned = False
        self.sent = 0
        self.bound = float("-inf")  # the largest decode time demuxed
        self.last_time = float("-inf")  # the largest presentation time demuxed

    def _time(self, ts: int) -> float:
        return (ts - self.info.start_pts) * self.tb

    def run(self, packets) -> list[tuple[float, np.ndarray]] | None:
        """Consume the demuxer from the seek position; ``None`` if the seek landed too late."""
        count = 0
        for packet in packets:
            if packet.pts is None or packet.dts is None:
                if packet.size == 0:
                    continue  # the demuxer's final empty packet
                raise _Unplannable
            time = self._time(packet.pts)
            if time < self.bound:
                raise _Unplannable  # presents before a packet decoded earlier
            if packet.is_keyframe:
                self.groups.append(_Group(time, count))
                count += 1
            elif not self.groups:
                continue  # before the first keyframe after the seek: not decodable
            elif time < self.groups[-1].key_time:
                raise _Unplannable  # a leading picture: an open group of pictures
            group = self.groups[-1]
            group.packets.append(packet)
            group.times.append(time)
            self.last_time = max(self.last_time, time)
            self.bound = max(self.bound, self._time(packet.dts))
            if not self._resolve_up_to(self.bound):
                return None
            if self.j == len(self.limits):
                break
            while len(self.groups) > 1 and self.groups[1].key_time <= self.bound:
                self.groups.pop(0)  # every later frame presents from the next keyframe on
                self.pruned = True
        else:  # end of stream: the remaining limits are resolved by what was seen
            if not self._resolve_up_to(float("inf")):
                return None
        for frame in self.decoder.decode(None):  # drain the decoder
            self._take(frame)
        return self._result()

    def _resolve_up_to(self, bound: float) -> bool:
        """Choose frames for the limits at or below ``bound``; False: nothing to choose from."""
        while self.j < len(self.limits) and self.limits[self.j] <= bound:
            limit = self.limits[self.j]
            best: tuple[_Group, int] | None = None
            best_pts = 0
            for group in self.groups:
                for k, (packet, time) in enumerate(zip(group.packets, group.times, strict=True)):
                    if (
                        time < limit
                        and not packet.is_discard
                        and (best is None or packet.pts > best_pts)
                    ):
                        best, best_pts = (group, k), packet.pts
            if best is None:
                if not self.pruned:
                    return False  # the wanted frame is before the seek position
                raise _Unplannable
            if bound == float("inf"):
                _check_not_past_end(self.info, self.wanted[self.j], limit, self.last_time)
            self.choice.append(best_pts)
            self.chosen.add(best_pts)
            if best_pts in self.waiting:
                self.got[best_pts] = self.convert(self.waiting.pop(best_pts))
            self._send_up_to(*best, limit)
            self.j += 1
            # frames presented before this limit can no longer be chosen
            self.waiting = {p: f for p, f in self.waiting.items() if self._time(p) >= limit}
        return True

    def _send_up_to(self, group: _Group, target: int, limit: float) -> None:
        if self.entered is not group:
            if self.entered is not None and self.entered.number > group.number:
                raise _Unplannable  # would decode against decode order
            self.entered = group  # start at its keyframe; the rest of the previous is not needed
        if target < len(group.fed):
            if not group.fed[target]:
                raise _Unplannable  # skipped earlier: cannot happen for valid streams
            return
        for k in range(len(group.fed), target + 1):
            packet = group.packets[k]
            send = (
                k == target
                or self.nonref is None
                or group.times[k] >= limit  # may be chosen for a later limit
                or not self.nonref(packet)
            )
            group.fed.append(send)
            if send:
                self.sent += 1
                for frame in self.decoder.decode(packet):
                    self._take(frame)

    def _take(self, frame) -> None:
        if frame.pts is None:
            raise VideoError(self.info.path, "decoded frame has no timestamp")
        if frame.pts in self.chosen:
            if frame.pts not in self.got:
                self.got[frame.pts] = self.convert(frame)
        elif self.j < len(self.limits) and self._time(frame.pts) >= self.limits[self.j]:
            self.waiting[frame.pts] = frame  # may be chosen for a later limit

    def _result(self) -> list[tuple[float, np.ndarray]]:
        picked = []
        for index, pts in zip(self.wanted, self.choice, strict=True):
            if pts not in self.got:
                raise VideoError(self.info.path, f"frame {index} could not be decoded")
            picked.append((self._time(pts), self.got[pts]))
        return picked


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
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (slots, frames) per file
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
            parts.append((where, got))
            times[where] = info.offsets[k] / info.fps + got_times
        if len(parts) == 1:  # one file: its frames are already in order
            frames = parts[0][1]
        else:
            shapes = {got.shape[1:] for _, got in parts}
            if len(shapes) > 1:
                raise VideoError(
                    _label(info),
                    f"its files decode to different frame sizes {sorted(shapes)}",
                    segment=(start, stop),
                )
            frames = np.empty((len(indices), *parts[0][1].shape[1:]), dtype=np.uint8)
            for where, got in parts:
                frames[where] = got
        return Clip(
            video_id=info.video_id,
            start=start,
            stop=stop,
            fps=info.fps,
            indices=indices,
            timestamps=times,
            frames=frames,
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
    from verbnoun.data.layouts import FileLayout

    return VideoReader(FileLayout(path)).read(
        Path(path).stem, start, stop, n, size=size, jitter=jitter
    )
