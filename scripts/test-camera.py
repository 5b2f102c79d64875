#!/usr/bin/python3
"""RTSP test camera for panelcam end-to-end tests and benchmarks.

Serves a live, low-latency H.264 stream (GstRtspServer). With --barcode every
frame carries the wall-clock time at which it was pushed into the pipeline,
encoded as a 64-cell barcode in the top rows of the luma plane (see
tests/support/barcode.rs for the decoder and the exact layout), so tests can
measure glass-to-glass latency from any decoded frame.

Run with the system interpreter (it has python3-gi):
    /usr/bin/python3 scripts/test-camera.py --barcode --port 8554
Prints exactly one line "READY rtsp://<bind>:<port><path>" on stdout once
listening; everything else goes to stderr.
"""
import argparse
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Y_WHITE, Y_BLACK, Y_GREY = 235, 16, 128
CELLS = 64


def log(msg):
    print(f"test-camera: {msg}", file=sys.stderr, flush=True)


def band_rows(height):
    # Band is 64 rows at 720p and scales with the height; round half up
    # explicitly (Python's round() is banker's rounding).
    return int(height * 64 / 720 + 0.5)


class Painter:
    """Builds I420 frames with the timestamp barcode and a moving box.

    Per-frame work is a handful of memcpy-sized slice assignments into the
    mapped GstBuffer: a ~1 MB frame costs well under a millisecond of Python.
    """

    def __init__(self, width, height):
        self.w, self.h = width, height
        self.band = band_rows(height)
        self.y_size = width * height
        self.c_size = (width // 2) * (height // 2)
        self.size = self.y_size + 2 * self.c_size
        # Mid-grey luma, neutral chroma (so chroma under the band is 128 too).
        self.background = bytes([Y_GREY]) * self.y_size + bytes([128]) * (2 * self.c_size)
        self.cell_x = [i * width // CELLS for i in range(CELLS + 1)]
        # Moving box: a reddish square in the area below the band. Even
        # coordinates keep luma and 2x2-subsampled chroma aligned.
        side = max(2, ((height - self.band) // 3) & ~1)
        self.box = side
        self.box_y = (self.band + (height - self.band - side) // 2 + 1) & ~1
        self.box_range = max(1, width - side)
        self.box_luma = bytes([82]) * side
        self.box_u = bytes([90]) * (side // 2)
        self.box_v = bytes([240]) * (side // 2)

    def barcode_row(self, ts_ms):
        ts = ts_ms & ((1 << 48) - 1)
        w0, w1, w2 = ts >> 32, (ts >> 16) & 0xFFFF, ts & 0xFFFF
        check = w0 ^ w1 ^ w2 ^ 0xA5A5
        bits = (ts << 16) | check  # 64 bits, cell 0 = most significant
        row = bytearray(self.w)
        for i in range(CELLS):
            bit = (bits >> (CELLS - 1 - i)) & 1
            x0, x1 = self.cell_x[i], self.cell_x[i + 1]
            row[x0:x1] = bytes([Y_WHITE if bit else Y_BLACK]) * (x1 - x0)
        return bytes(row)

    def paint(self, mem, frame_no, ts_ms):
        """Draw frame `frame_no` stamped with `ts_ms` into writable memoryview `mem`."""
        w = self.w
        mem[:] = self.background
        mem[0:self.band * w] = self.barcode_row(ts_ms) * self.band
        # Box bounces left/right, crossing the frame in about 4 seconds.
        period = 2 * self.box_range
        step = max(1, self.box_range // 100)
        p = (frame_no * step) % period
        x = (p if p < self.box_range else period - p) & ~1
        for y in range(self.box_y, self.box_y + self.box):
            o = y * w + x
            mem[o:o + self.box] = self.box_luma
        cw, half = w // 2, self.box // 2
        for cy in range(self.box_y // 2, self.box_y // 2 + half):
            o = self.y_size + cy * cw + x // 2
            mem[o:o + half] = self.box_u
            o += self.c_size
            mem[o:o + half] = self.box_v


class Feeder:
    """Pushes barcode frames into one media's appsrc, paced by the wall clock.

    We deliberately ignore appsrc's need-data signal for pacing: in a live
    pipeline it fires whenever the queue runs dry, and answering it would
    flood the encoder. Instead one frame is pushed every 1/fps seconds and
    the barcode is the wall-clock time of that push. appsrc is configured
    leaky with a 2-buffer queue so frames pushed while the pipeline is not
    yet PLAYING are dropped rather than piling up as stale timestamps.
    """

    def __init__(self, appsrc, painter, fps):
        self.appsrc, self.painter, self.fps = appsrc, painter, fps
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()

    def run(self):
        period = 1.0 / self.fps
        size = self.painter.size
        next_t = time.monotonic()
        n = 0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now < next_t:
                self.stop_event.wait(next_t - now)
                continue
            if now - next_t > period:
                # We fell behind (GIL, scheduling): resynchronise instead of
                # bursting several frames with nearly equal timestamps.
                next_t = now
            buf = Gst.Buffer.new_allocate(None, size, None)
            ok, info = buf.map(Gst.MapFlags.WRITE)
            if not ok:
                log("buffer map failed")
                return
            try:
                self.painter.paint(info.data, n, time.time_ns() // 1_000_000)
            finally:
                buf.unmap(info)
            # FLUSHING is normal before PLAYING and during teardown; the
            # media's "unprepared" signal is what stops this thread.
            self.appsrc.emit("push-buffer", buf)
            n += 1
            next_t += period


def encoder_chain(args):
    # zerolatency: no B-frames, no lookahead, sliced threads. config-interval=1
    # repeats SPS/PPS before every IDR so late joiners of the shared media can
    # start decoding at the next keyframe.
    pay = "rtph264pay name=pay0 pt=96 config-interval=1"
    if args.dump:
        # The encoder's output as it goes to the payloader, for tests that check an
        # RTSP client hands on exactly the camera's bytes (tests/rtsp_client.rs).
        pay = (
            f"tee name=t ! queue ! {pay} "
            f"t. ! queue ! filesink location={args.dump} sync=false async=false buffer-mode=unbuffered"
        )
    return (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
        f"bitrate={args.bitrate} byte-stream=true "
        f"! video/x-h264,profile=baseline ! {pay}"
    )


def make_factory(args, feeders):
    raw_caps = (
        f"video/x-raw,format=I420,width={args.width},height={args.height},"
        f"framerate={args.fps}/1"
    )
    if args.barcode:
        src = (
            f'appsrc name=src format=time is-live=true do-timestamp=true '
            f'max-buffers=2 leaky-type=downstream caps="{raw_caps}"'
        )
    else:
        # Scrolling SMPTE bars: motion (a browser test sees the picture change) and enough
        # detail for realistic JPEG sizes (~20 KB at 640x360; the ball pattern gives ~2 KB).
        src = (
            f"videotestsrc is-live=true pattern={args.pattern} "
            f"horizontal-speed={args.speed} ! {raw_caps}"
        )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( {src} ! {encoder_chain(args)} )")
    if args.user is not None:
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    # One pipeline for all clients of a mount point. When the last client
    # leaves, the media is unprepared and a later client gets a new one
    # (and media-configure fires again).
    factory.set_shared(True)
    if args.barcode:
        painter = Painter(args.width, args.height)

        def on_configure(_factory, media):
            appsrc = media.get_element().get_by_name("src")
            feeder = Feeder(appsrc, painter, args.fps)
            feeders.add(feeder)

            def on_unprepared(_media):
                feeder.stop()
                feeders.discard(feeder)
                log("media unprepared, feeder stopped")

            media.connect("unprepared", on_unprepared)
            log("new media, feeder started")

        factory.connect("media-configure", on_configure)
    return factory


def make_auth(args):
    """Only --user/--password may play; the others get 401 (GstRtspServer's RTSPAuth)."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    methods = 0
    if args.auth in ("basic", "both"):
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        methods |= GstRtsp.RTSPAuthMethod.BASIC
    if args.auth in ("digest", "both"):
        auth.add_digest(args.user, args.password, token)
        methods |= GstRtsp.RTSPAuthMethod.DIGEST
    auth.set_supported_methods(methods)
    return auth


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="RTSP H.264 test camera")
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--path", action="append", help="mount point (repeatable), default /cam")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--gop", type=int, help="keyframe interval in frames (default: fps)")
    p.add_argument("--bitrate", type=int, default=2000, help="kbit/s")
    p.add_argument("--barcode", action="store_true", help="stamp wall-clock time barcode")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--pattern", default="smpte", help="videotestsrc pattern (without --barcode)")
    p.add_argument("--speed", type=int, default=4, help="horizontal scroll speed of the pattern")
    p.add_argument("--user", help="require this user name (with --password)")
    p.add_argument("--password", default="", help="the password of --user")
    p.add_argument("--auth", choices=["basic", "digest", "both"], default="both",
                   help="authentication methods offered with --user")
    p.add_argument("--dump", help="also write the encoder's H.264 (as the payloader takes it) to this file")
    args = p.parse_args(argv)
    args.path = [x if x.startswith("/") else "/" + x for x in (args.path or ["/cam"])]
    args.gop = args.gop or args.fps
    if args.width % 2 or args.height % 2 or args.width < CELLS or args.fps <= 0:
        p.error("width/height must be even, width >= 64, fps > 0")
    return args


def main():
    args = parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()
    feeders = set()
    server = GstRtspServer.RTSPServer()
    server.set_address(args.bind)
    server.set_service(str(args.port))
    if args.user is not None:
        server.set_auth(make_auth(args))
    mounts = server.get_mount_points()
    for path in args.path:
        mounts.add_factory(path, make_factory(args, feeders))
    # attach() creates the listening socket; it fails (returns 0) if the port
    # is taken, which must be an error rather than a silent hang.
    if server.attach(None) == 0:
        log(f"cannot listen on {args.bind}:{args.port}")
        return 1

    def quit_(*_):
        for f in list(feeders):
            f.stop()
        loop.quit()
        return GLib.SOURCE_REMOVE

    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, quit_)
    print(f"READY rtsp://{args.bind}:{args.port}{args.path[0]}", flush=True)
    if len(args.path) > 1:
        log("also serving " + ", ".join(args.path[1:]))
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
