#!/usr/bin/python3
"""Stand-in for FFmpeg in panelcam benchmarks (run via PANELCAM_FFMPEG).

Ignores its arguments and writes one real 640x360 JPEG (~45 KB) to stdout 10 times per
second, like `ffmpeg ... -f mjpeg pipe:1` would. Each frame carries a COM segment right after
SOI:

    FF FE 00 0E "PCTS" <8-byte little-endian wall-clock time in ns>

The time is taken immediately before the single write of the whole frame, so a client can
compute "complete JPEG on FFmpeg's stdout -> message received" as receive time minus it
(benches/live/server_latency.rs).

Options (all optional, for manual experiments): --fps N (default 10), --size WxH (default
640x360). Unknown arguments (FFmpeg's argv from panelcam) are ignored.
"""
import os
import signal
import struct
import subprocess
import sys
import time


def option(name, default):
    argv = sys.argv[1:]
    if name in argv:
        i = argv.index(name)
        if i + 1 < len(argv):
            return argv[i + 1]
    return default


def make_jpeg(size):
    # testsrc2 alone compresses to ~16 KB; temporal noise brings it to a camera-like ~45 KB.
    src = f"testsrc2=size={size},noise=alls=12:allf=t"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", src,
           "-frames:v", "1", "-q:v", "5", "-f", "mjpeg", "-"]
    jpeg = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    if jpeg[:2] != b"\xff\xd8":
        sys.exit("fake-ffmpeg: ffmpeg did not produce a JPEG")
    return jpeg


def main():
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    fps = float(option("--fps", "10"))
    jpeg = make_jpeg(option("--size", "640x360"))
    # SOI, then COM (length 14 = 2 length bytes + "PCTS" + 8 time bytes), then the rest.
    frame = bytearray(b"\xff\xd8\xff\xfe\x00\x0ePCTS" + bytes(8) + jpeg[2:])
    ts_offset = 10
    view = memoryview(frame)
    print(f"fake-ffmpeg: {len(frame)} bytes per frame at {fps:g} fps", file=sys.stderr, flush=True)
    period = 1.0 / fps
    next_t = time.monotonic()
    out = sys.stdout.fileno()
    while True:
        now = time.monotonic()
        if now < next_t:
            time.sleep(next_t - now)
            continue
        next_t += period
        if now - next_t > period:
            next_t = now  # we fell behind: resynchronise instead of bursting
        struct.pack_into("<Q", frame, ts_offset, time.time_ns())
        try:
            written = os.write(out, view)
            while written < len(frame):  # only if interrupted; a blocking pipe writes it all
                written += os.write(out, view[written:])
        except (BrokenPipeError, OSError):
            return 0


if __name__ == "__main__":
    sys.exit(main())
