"""Video files through PyAV (bundled FFmpeg): H.264 and AV1 decode, H.264 / AV1 encode, atomic writes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tracegen.errors import DataError
from tracegen.io.files import atomic_path

CODECS = {"h264": "libx264", "av1": "libsvtav1"}


def write_video(path: str | Path, frames: np.ndarray, fps: float, codec: str = "h264", crf: int = 18) -> None:
    """Encode RGB frames ``(T, H, W, 3)`` uint8 as mp4 (yuv420p), atomically. ``codec``: ``h264`` or ``av1``.

    H.264 needs even sizes for yuv420p; odd sizes are refused rather than silently cropped.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"{path}: frames must be a non-empty (T, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}"
        )
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"{path}: yuv420p video needs even height and width, got {frames.shape[1:3]}")
    if codec not in CODECS:
        raise ValueError(f"{path}: unknown codec {codec!r}; use one of {sorted(CODECS)}")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream(CODECS[codec], rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)} if codec == "h264" else {"crf": str(crf), "preset": "10"}
        if codec == "h264":
            # Reproducible files: libx264's macroblock-tree rate control and its threads both made the bitstream
            # differ from run to run (tests/io/test_episode.py); without them the same frames give the same bytes.
            stream.options |= {"preset": "fast", "x264-params": "mbtree=0"}
            stream.codec_context.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def read_video(
    path: str | Path,
    expected_frames: int | None = None,
    start_time: float | None = None,
    end_time: float | None = None,
) -> np.ndarray:
    """Decode a video into RGB frames ``(T, H, W, 3)`` uint8.

    ``start_time`` / ``end_time`` (seconds, end exclusive) select a span, as LeRobot v3 shards need. Fails with a
    :class:`DataError` naming the file for a missing, corrupt or truncated file, zero frames, or a frame count that
    differs from ``expected_frames``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "video file not found")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(path, "has no video stream")
            stream = container.streams.video[0]
            if start_time is not None and start_time > 0:
                container.seek(int(start_time / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else None
                if start_time is not None and t is not None and t < start_time - 1e-4:
                    continue
                if end_time is not None and t is not None and t >= end_time - 1e-4:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except DataError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise DataError(path, f"cannot decode video (corrupt or truncated?): {e}") from None
    if not frames:
        raise DataError(path, "video has zero decodable frames")
    if expected_frames is not None and len(frames) != expected_frames:
        raise DataError(path, f"decoded {len(frames)} frames but {expected_frames} were expected (truncated video?)")
    return np.stack(frames)
