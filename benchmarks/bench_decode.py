"""Clip decoding speed: our decoder against decord and per-frame seeking, in the same run.

Writes test videos with frame numbers in their pixels (a 1080p 59.94-fps single file, and two
512-px 30-fps chunk layouts: ``gop15``, short groups of pictures without B-frames, and ``x264``,
libx264's defaults with B-frames and keyframes up to 250 frames apart, as ``ffmpeg -c:v libx264``
writes them), then decodes random 2-4 s segments with 8, 16 and 32 frames:

- ``ours``: :class:`verbnoun.data.video.VideoReader` (one seek per clip; only the packets the
  wanted frames need are decoded; files kept open between segments);
- ``forward``: the same without the plan (every frame after the seek is decoded);
- ``seek-per-frame``: the naive reference, one keyframe seek and decode per wanted frame (what
  sparse random access does), also with PyAV and timestamp matching (on ``--seek-clips`` clips);
- ``decord``: ``decord.VideoReader(file).get_batch(indices)`` per clip and file, as LLaVAction's
  loader does (``make bench`` installs decord; without it this column is left out).

The methods take turns on each segment; each line gives clips/s, the time ratio to ours over all
clips and the median of the per-clip ratios (robust to load from other processes), and the
packets decoded per clip. All are checked frame-exact (frame numbers read back from the pixels).
With ``--loader-clips K`` it also reports the peak memory of the ``ClipDataset`` loader over K
clips (it should stay flat). Target: ours at least 1.5x decord.

    .venv/bin/python benchmarks/bench_decode.py [--seconds 20] [--clips 8] [--repeats 1]
        [--layouts hd,gop15,x264] [--seek-clips 3] [--thread-type AUTO] [--keep-open 2]
        [--loader-clips 1000] [--work DIR] [--quick]

``--quick``: 4.5-s videos (the single file at 640x360), 2 clips of 8 frames per layout, 12 clips for the loader check.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from results import Report, quick_flag

from verbnoun.data.layouts import ChunkLayout, FileLayout, chunk_name
from verbnoun.data.sampling import frame_indices
from verbnoun.data.synth import draw_frame_number, read_frame_number, write_video
from verbnoun.data.video import PyAVBackend, StreamInfo, VideoReader


def numbered_frames(count: int, width: int, height: int, first: int = 0):
    """Frames with a moving textured pattern and their index as a bar code."""
    rng = np.random.default_rng(0)
    block = max(width // 60, 4)
    texture = rng.integers(0, 255, (height // block + 1, width // block + 1, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(texture, block, axis=0), block, axis=1)[:height, :width]
    for i in range(first, first + count):
        frame = np.roll(texture, shift=3 * i, axis=1)
        yield draw_frame_number(frame.copy(), i)


CHUNK_KINDS = {
    # what the previous sessions measured: short groups of pictures, no B-frames
    "gop15": {"preset": "veryfast", "gop": 15, "bframes": 0},
    # libx264's defaults (what `ffmpeg -c:v libx264` writes, as in LLaVAction's
    # "..._30fps_libx264" chunks and the two EK100 sample clips): B-frames with a pyramid,
    # keyframes up to 250 frames apart
    "x264": {"preset": "medium", "gop": None, "bframes": 3},
}


def make_videos(root: Path, seconds: float, hd: tuple[int, int] = (1920, 1080)) -> None:
    """The 1080p 59.94-fps file and two 512-px 30-fps chunk layouts (15-s chunks) under
    ``root``: ``chunks-gop15`` and ``chunks-x264`` (see ``CHUNK_KINDS``); ``hd``: the single
    file's size (smaller in quick mode)."""
    fps_hd = Fraction(60000, 1001)
    n_hd = round(seconds * fps_hd)
    single = root / "P01" / "videos" / "P01_01.MP4"
    t = time.perf_counter()
    write_video(single, numbered_frames(n_hd, *hd), fps_hd, preset="ultrafast", gop=30, threads=0)
    print(f"wrote {n_hd} frames of {hd[0]}x{hd[1]} 59.94 fps in {time.perf_counter() - t:.1f} s")
    n_chunks = round(seconds * 30)
    for kind, options in CHUNK_KINDS.items():
        t = time.perf_counter()
        folder = root / f"chunks-{kind}" / "P01" / "P01_01.MP4"
        for first in range(0, n_chunks, 450):
            count = min(450, n_chunks - first)
            write_video(
                folder / f"{chunk_name(first / 30)}.MP4",
                numbered_frames(count, 512, 512, first),
                30,
                threads=0,
                **options,
            )
        print(
            f"wrote {n_chunks} frames of 512 px 30 fps ({kind}) in {time.perf_counter() - t:.1f} s"
        )


def seek_per_frame(stream_info: StreamInfo, indices) -> np.ndarray:
    """Reference: one seek and a forward decode for every wanted frame."""
    import av

    out = []
    with av.open(str(stream_info.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream_info.time_base
        for index in indices:
            target = stream_info.start_pts + int(index / stream_info.fps / tb)
            container.seek(target, stream=stream, backward=True)
            limit = (index + 0.5) / stream_info.fps
            previous = None
            for frame in container.decode(stream):
                if float((frame.pts - stream_info.start_pts) * tb) >= limit:
                    break
                previous = frame
            out.append(previous.to_ndarray(format="rgb24"))
    return np.stack(out)


def segments(rng: np.random.Generator, duration: float, count: int) -> list[tuple[float, float]]:
    result = []
    for _ in range(count):
        length = float(rng.uniform(2.0, 4.0))
        start = float(rng.uniform(0.0, duration - length - 0.1))
        result.append((round(start, 2), round(start + length, 2)))
    return result


def _rss_mib() -> float:
    """Current resident memory of this process (Linux), in MiB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _read(reader: VideoReader, video_id: str, s: float, e: float, n: int):
    clip = reader.read(video_id, s, e, n)
    return clip.frames, clip.indices.tolist()


def _seek_each(reader: VideoReader, video_id: str, s: float, e: float, n: int):
    info = reader.info(video_id)
    idx = frame_indices(s, e, info.fps, info.num_frames, n)
    frames = []
    for f in idx:  # one seek per frame, within the right file
        k = int(np.searchsorted(np.asarray(info.offsets), f, side="right") - 1)
        stream = reader.probe(info.pieces[k].path)
        frames.append(seek_per_frame(stream, [int(f - info.offsets[k])])[0])
    return np.stack(frames), idx.tolist()


def _decord(reader: VideoReader, video_id: str, s: float, e: float, n: int):
    import decord

    info = reader.info(video_id)
    idx = frame_indices(s, e, info.fps, info.num_frames, n)
    piece_of = np.searchsorted(np.asarray(info.offsets), idx, side="right") - 1
    frames = []
    for k in np.unique(piece_of):  # one VideoReader per file touched, as LLaVAction does
        local = (idx[piece_of == k] - info.offsets[k]).tolist()
        video = decord.VideoReader(str(info.pieces[k].path), num_threads=0)
        frames.append(video.get_batch(local).asnumpy())
    return np.concatenate(frames), idx.tolist()


def bench(
    name: str,
    layout,
    video_id: str,
    clips: int,
    duration: float,
    repeats: int,
    rng,
    seek_clips: int = 3,
    thread_type: str = "AUTO",
    keep_open: int = 2,
    frame_counts: tuple[int, ...] = (8, 16, 32),
) -> tuple[dict[int, float], dict[int, dict[str, float]]]:
    """Print clips/s of each method and its time ratio to ours, for N = 8, 16, 32; returns the
    median per-clip ratio decord/ours per N (empty without decord) and each method's clips/s
    per N.

    The methods take turns on each segment (in rotating order), so that load from other
    processes and cache effects fall on all of them alike; the median of the per-clip time
    ratios is robust to a load spike during one clip. ``repeats`` runs of ``clips`` segments;
    seek-per-frame (slow on long groups of pictures) runs on the first ``seek_clips`` only;
    ``thread_type`` is FFmpeg's decoder threading for ours (``NONE``: one thread), ``keep_open``
    how many files ours keeps open between segments (0: opens every file for every clip)."""
    ours_backend = PyAVBackend(
        threads=1 if thread_type == "NONE" else 0, thread_type=thread_type, keep_open=keep_open
    )
    forward_backend = PyAVBackend(skip_unneeded=False)
    ours = VideoReader(layout, ours_backend)
    forward = VideoReader(layout, forward_backend)
    methods = {
        "ours": lambda *a: _read(ours, *a),
        "forward": lambda *a: _read(forward, *a),
        "seek-per-frame": lambda *a: _seek_each(ours, *a),
    }
    try:
        import decord  # noqa: F401

        methods["decord"] = lambda *a: _decord(ours, *a)
    except ImportError:
        print("decord not installed: `make bench` installs it (no decord column)")
    medians, rates = {}, {}
    for n in frame_counts:
        seconds: dict[str, dict[int, float]] = {m: {} for m in methods}  # clip -> time
        exact = dict.fromkeys(methods, True)
        decoded = {"ours": 0, "forward": 0}
        for k, (s, e) in enumerate(segments(rng, duration, clips * repeats)):
            names = [m for m in methods if m != "seek-per-frame" or k < seek_clips]
            turn = k % len(names)
            for method in names[turn:] + names[:turn]:  # rotate who goes first
                before = ours_backend.decoded_packets, forward_backend.decoded_packets
                t = time.perf_counter()
                frames, indices = methods[method](video_id, s, e, n)
                seconds[method][k] = time.perf_counter() - t
                if method == "ours":
                    decoded[method] += ours_backend.decoded_packets - before[0]
                elif method == "forward":
                    decoded[method] += forward_backend.decoded_packets - before[1]
                exact[method] &= [read_frame_number(f) for f in frames] == indices
        rate = {m: len(t) / sum(t.values()) for m, t in seconds.items()}
        rates[n] = rate
        parts = []
        for method, times in seconds.items():
            text = f"{method} {rate[method]:6.2f} clips/s"
            if method != "ours":
                ratios = [times[k] / seconds["ours"][k] for k in times]
                text += f" ({rate['ours'] / rate[method]:4.2f}x, median {np.median(ratios):4.2f}x)"
            if method in decoded:
                text += f" [{decoded[method] / len(times):.0f} decoded/clip]"
            parts.append(text)
        if "decord" in seconds:
            medians[n] = float(
                np.median([t / seconds["ours"][k] for k, t in seconds["decord"].items()])
            )
        print(
            f"{name:22s} N={n:2d}: "
            + " | ".join(parts)
            + " | frame-exact: "
            + "/".join(str(v) for v in exact.values()),
            flush=True,
        )
    return medians, rates


def exactness_against_decord(root: Path) -> None:
    """Frame-exactness on the tests' tricky files: a stream-copied cut with an edit list, a
    variable-frame-rate file and a file starting at 0.5 s (frame numbers read from pixels)."""
    try:
        import decord
    except ImportError:
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    from videotools import Videos, frame_numbers

    videos = Videos(root / "tricky")
    cases = {
        "edit-list cut": (videos.cut, lambda i: i + videos.cut_frame),
        "starts at 0.5 s": (videos.offset, lambda i: i),
    }
    for name, (path, expected_number) in cases.items():
        reader = VideoReader(FileLayout(path))
        info = reader.info(path.stem)
        indices = np.arange(0, info.num_frames - 1, 7)
        ours = frame_numbers(reader.read_indices(info, indices).frames)
        theirs = frame_numbers(decord.VideoReader(str(path)).get_batch(indices.tolist()).asnumpy())
        wanted = [expected_number(int(i)) for i in indices]
        wrong_ours = sum(a != b for a, b in zip(ours, wanted, strict=True))
        wrong_decord = sum(a != b for a, b in zip(theirs, wanted, strict=True))
        shift = max((abs(a - b) for a, b in zip(theirs, wanted, strict=True)), default=0)
        print(
            f"{name:16s}: {len(indices)} frames, wrong frames: ours {wrong_ours}, "
            f"decord {wrong_decord} (off by up to {shift})"
        )


def loader_memory(chunks: Path, clips: int, duration: float, report: Report) -> None:
    from verbnoun.data.loader import ClipDataset, clip_loader

    rng = np.random.default_rng(2)
    items = [("P01_01", s, e) for s, e in segments(rng, duration, clips)]
    loader = clip_loader(ClipDataset(items, ChunkLayout(chunks), 16), batch_size=4, workers=0)
    peaks = []
    t = time.perf_counter()
    done = 0
    for batch in loader:
        done += len(batch["index"]) + len(batch["skipped"])
        if done * 4 >= (len(peaks) + 1) * clips:  # after each quarter of the clips
            peaks.append(_rss_mib())
    elapsed = time.perf_counter() - t
    report.figure("loader_rss_growth", peaks[-1] / peaks[0], "x",
                  reference=f"RSS after the first quarter of {clips} clips (16 frames, 512 px; "
                            + ", ".join(f"{p:.0f}" for p in peaks) + " MiB after each quarter; "
                            f"{clips / elapsed:.1f} clips/s)",
                  target="<= 1.1x (flat)", met=peaks[-1] / peaks[0] <= 1.1)  # fmt: skip


LAYOUTS = ("hd", "gop15", "x264")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test videos")
    parser.add_argument("--clips", type=int, default=8, help="clips per setting (0: none)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of --clips segments each")
    parser.add_argument(
        "--layouts", default=",".join(LAYOUTS), help=f"which of {','.join(LAYOUTS)} to measure"
    )
    parser.add_argument(
        "--seek-clips", type=int, default=3, help="clips per setting for seek-per-frame"
    )
    parser.add_argument(
        "--thread-type",
        default="AUTO",
        choices=["AUTO", "FRAME", "SLICE", "NONE"],
        help="FFmpeg decoder threading for ours (NONE: one thread)",
    )
    parser.add_argument(
        "--keep-open", type=int, default=2, help="files ours keeps open between clips"
    )
    parser.add_argument("--loader-clips", type=int, default=0, help="clips for the memory check")
    parser.add_argument("--work", type=Path, help="keep the test videos here and reuse them")
    quick_flag(parser)
    args = parser.parse_args(argv)
    report = Report("bench_decode", args.quick)
    frame_counts, hd = (8, 16, 32), (1920, 1080)
    if args.quick:
        hd = (640, 360)
        args.seconds, args.clips, args.seek_clips, frame_counts = 4.5, 2, 1, (8,)
        args.loader_clips = 12
    chosen = [name for name in args.layouts.split(",") if name]
    unknown = sorted(set(chosen) - set(LAYOUTS))
    if unknown:
        parser.error(f"unknown layouts {unknown}; choose from {list(LAYOUTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        if not (root / "done-v2").is_file():
            make_videos(root, args.seconds, hd)
            (root / "done-v2").write_text(f"{args.seconds}\n")
        single = FileLayout(root / "P01" / "videos" / "P01_01.MP4")
        settings = {
            "hd": (f"{hd[1]}p 59.94 fps file", single),
            "gop15": ("512 px chunks, gop 15", ChunkLayout(root / "chunks-gop15")),
            "x264": ("512 px chunks, x264", ChunkLayout(root / "chunks-x264")),
        }
        rng = np.random.default_rng(1)
        summary = {}
        if args.clips:
            for key in chosen:
                label, layout = settings[key]
                summary[key] = bench(
                    label,
                    layout,
                    "P01_01",
                    args.clips,
                    args.seconds,
                    args.repeats,
                    rng,
                    args.seek_clips,
                    args.thread_type,
                    args.keep_open,
                    frame_counts,
                )
        n = 16 if 16 in frame_counts else frame_counts[0]
        for key, (medians, rates) in summary.items():
            label = settings[key][0]
            others = ", ".join(f"{m} {r:.2f}" for m, r in rates[n].items() if m != "ours")
            report.figure(f"{key}_clips_per_s", rates[n]["ours"], "clips/s",
                          reference=f"{others} clips/s ({label}, {n} frames, 2-4 s segments)")  # fmt: skip
            if medians:
                worst = min(medians.values())
                report.figure(f"{key}_vs_decord", worst, "x",
                              reference=f"decord on the same clips ({label}; median per-clip "
                                        "ratio, the lowest of "
                                        + ", ".join(f"N={k} {r:.2f}x" for k, r in medians.items())
                                        + ")", target=">= 1.5x", met=worst >= 1.5)  # fmt: skip
        exactness_against_decord(root)
        if args.loader_clips:
            loader_memory(root / "chunks-gop15", args.loader_clips, args.seconds, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
