#!/usr/bin/python3
"""RTSP test camera for panelcam end-to-end tests and benchmarks.

Serves a live, low-latency H.264 stream (GstRtspServer). With --barcode every
frame carries the wall-clock time at which it was pushed into the pipeline,
encoded as a 64-cell barcode in the top rows of the luma plane (see
tests/support/barcode.rs for the decoder and the exact layout), so tests can
measure glass-to-glass latency from any decoded frame.

Misbehaviour of real plant cameras, each off by default (without these
options the camera serves the same stream as before they existed):
  --user U --password P [--auth basic|digest|both]
        RTSP authentication (GstRtspServer's RTSPAuth). A request without valid
        credentials gets 401 with a WWW-Authenticate challenge per allowed
        scheme (default: both Basic and Digest).
  --lossy PERCENT
        Drops PERCENT % of the RTP packets and delays another PERCENT/2 % by
        10-40 ms, so they arrive after packets sent later (reordering). A
        netsim element sits between the payloader and the RTSP server's
        rtpbin, so this acts on RTP packets, before the transport is chosen:
        it applies to TCP-interleaved clients too (where real networks would
        not lose anything).
  --resize-every SECONDS [--alt-size WxH]
        Alternates the resolution between --width x --height and --alt-size
        (default 640x360) every SECONDS, in the same RTSP session. x264 is
        re-initialised on the new caps, so the switch brings a new SPS/PPS
        and an IDR frame. Works with --barcode (one painter per size).

Transports: RTP over UDP and over RTSP-interleaved TCP are both offered (the
server's default). With an IPv4 --bind address the server's UDP sockets are
bound to that address too (loopback by default), and GstRtspServer sends
unicast RTP only to the address the RTSP connection came from.

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
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
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


def raw_caps(size, fps):
    width, height = size
    return f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"


class SizeSchedule:
    """Which of `sizes` is current: each in turn for `every` seconds (0 = the first, always)."""

    def __init__(self, sizes, every):
        self.sizes, self.every = sizes, every
        self.start = time.monotonic()

    def index(self):
        if not self.every:
            return 0
        return int((time.monotonic() - self.start) / self.every) % len(self.sizes)


class Feeder:
    """Pushes barcode frames into one media's appsrc, paced by the wall clock.

    We deliberately ignore appsrc's need-data signal for pacing: in a live
    pipeline it fires whenever the queue runs dry, and answering it would
    flood the encoder. Instead one frame is pushed every 1/fps seconds and
    the barcode is the wall-clock time of that push. appsrc is configured
    leaky with a 2-buffer queue so frames pushed while the pipeline is not
    yet PLAYING are dropped rather than piling up as stale timestamps.

    With several painters (--resize-every) the size follows `schedule`: new
    caps are set on appsrc just before the first buffer of the new size;
    appsrc queues them in order with the buffers, so no frame is sent with
    the other size's caps.
    """

    def __init__(self, appsrc, painters, schedule, fps):
        self.appsrc, self.painters, self.schedule, self.fps = appsrc, painters, schedule, fps
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()

    def run(self):
        period = 1.0 / self.fps
        current = 0  # the launch line's caps are the first size
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
            wanted = self.schedule.index()
            if wanted != current:
                current = wanted
                caps = raw_caps(self.schedule.sizes[current], self.fps)
                self.appsrc.set_property("caps", Gst.Caps.from_string(caps))
                log(f"resized to {self.schedule.sizes[current]}")
            painter = self.painters[current]
            buf = Gst.Buffer.new_allocate(None, painter.size, None)
            ok, info = buf.map(Gst.MapFlags.WRITE)
            if not ok:
                log("buffer map failed")
                return
            try:
                painter.paint(info.data, n, time.time_ns() // 1_000_000)
            finally:
                buf.unmap(info)
            # FLUSHING is normal before PLAYING and during teardown; the
            # media's "unprepared" signal is what stops this thread.
            self.appsrc.emit("push-buffer", buf)
            n += 1
            next_t += period


def start_resizing(capsfilter, schedule, fps):
    """Switches the videotestsrc size on `schedule`; returns the GLib source id.

    A new caps property on the capsfilter makes videotestsrc renegotiate and
    x264enc re-initialise (new SPS/PPS, IDR), all within the running media.
    """
    state = {"current": 0}

    def tick():
        wanted = schedule.index()
        if wanted != state["current"]:
            state["current"] = wanted
            caps = raw_caps(schedule.sizes[wanted], fps)
            capsfilter.set_property("caps", Gst.Caps.from_string(caps))
            log(f"resized to {schedule.sizes[wanted]}")
        return GLib.SOURCE_CONTINUE

    # Polling at 10 Hz keeps switches within 0.1 s of the schedule without
    # accumulating drift from repeated timeouts.
    return GLib.timeout_add(100, tick)


def encoder_chain(args):
    # zerolatency: no B-frames, no lookahead, sliced threads. config-interval=1
    # repeats SPS/PPS before every IDR so late joiners of the shared media can
    # start decoding at the next keyframe.
    codec = "h265" if args.codec == "h265" else "h264"
    pay = f"rtp{codec}pay name=pay0 pt=96 config-interval=1"
    if args.dump:
        # The encoder's output as it goes to the payloader, for tests that check an
        # RTSP client hands on exactly the camera's bytes (tests/rtsp_client.rs).
        pay = (
            f"tee name=t ! queue ! {pay} "
            f"t. ! queue ! filesink location={args.dump} sync=false async=false buffer-mode=unbuffered"
        )
    if codec == "h265":
        return (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
            f"bitrate={args.bitrate} ! video/x-h265,profile=main ! {pay}"
        )
    return (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
        f"bitrate={args.bitrate} byte-stream=true "
        f"! video/x-h264,profile=baseline ! {pay}"
    )


def insert_netsim(media, percent):
    """Puts a netsim between payloader pay0 and the RTSP server's rtpbin.

    GstRtspServer wraps pay0's src pad in a ghost pad on the media's bin
    (the stream's "srcpad") and links that ghost pad to rtpbin only when the
    media is prepared, which is after media-configure. Retargeting the ghost
    pad to netsim's src pad here therefore puts netsim in the path of every
    RTP packet, while the stream keeps talking to the real payloader (pt,
    seqnum-base and clock-base for RTP-Info come from its properties).
    """
    bin_ = media.get_element()
    pay = bin_.get_by_name("pay0")
    ghost = media.get_stream(0).get_srcpad()
    netsim = Gst.ElementFactory.make("netsim", "lossy")
    if netsim is None:
        raise RuntimeError("--lossy needs the netsim element (gstreamer1.0-plugins-bad)")
    netsim.set_property("drop-probability", percent / 100)
    # Delayed packets overtake nothing when delayed by less than the gap to
    # the next packet; 10-40 ms puts them behind the rest of their frame's
    # burst (a 25 fps frame is a burst of packets every 40 ms).
    netsim.set_property("min-delay", 10)
    netsim.set_property("max-delay", 40)
    netsim.set_property("allow-reordering", True)
    bin_.add(netsim)
    ghost.set_target(netsim.get_static_pad("src"))
    if not pay.link(netsim):
        raise RuntimeError("cannot link pay0 to netsim")

    # netsim pushes delayed packets from a thread of its own. Delaying from
    # the first packet on lets that thread push a buffer downstream before
    # the streaming thread has delivered the segment event, and
    # GstRtspServer then aborts preparing the media (assertion in
    # gst_rtsp_media_get_rates, seen about once in 25 starts). Once the
    # media is prepared its first buffer, and so the segment, has passed.
    def on_prepared(_media):
        netsim.set_property("delay-probability", percent / 200)

    media.connect("prepared", on_prepared)


class CameraAuth(GstRtspServer.RTSPAuth):
    """RTSPAuth that challenges with both Basic and Digest (--auth both).

    GstRtspServer can advertise both at once (set_supported_methods takes a
    bit mask), but PyGObject only passes single values of the
    GstRTSPAuthMethod enum, and a header added to ctx.response from Python
    lands in a copy. So the parent writes the challenge twice, once per
    scheme; the Digest pass also records the nonce it will check. All RTSP
    requests are handled on the main loop, so nothing else sees the
    temporary setting. Credentials are accepted for every scheme that has
    users registered, whatever is advertised.
    """

    def do_generate_authenticate_header(self, ctx):
        for method in (GstRtsp.RTSPAuthMethod.BASIC, GstRtsp.RTSPAuthMethod.DIGEST):
            self.set_supported_methods(method)
            GstRtspServer.RTSPAuth.do_generate_authenticate_header(self, ctx)


def make_auth(args):
    """The server's RTSPAuth for --user/--password, or None without them."""
    if args.user is None:
        return None
    digest = args.auth in ("digest", "both")
    basic = args.auth in ("basic", "both")
    auth = CameraAuth() if args.auth == "both" else GstRtspServer.RTSPAuth()
    method = GstRtsp.RTSPAuthMethod.DIGEST if digest else GstRtsp.RTSPAuthMethod.BASIC
    auth.set_supported_methods(method)
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    if basic:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
    if digest:
        auth.add_digest(args.user, args.password, token)
    # No default token: an anonymous request has no role, so every request
    # that touches a mount point (DESCRIBE, SETUP, ...) is answered with 401.
    return auth


def make_factory(args, feeders):
    sizes = [(args.width, args.height)]
    if args.resize_every:
        sizes.append(args.alt_size)
    if args.barcode:
        src = (
            f'appsrc name=src format=time is-live=true do-timestamp=true '
            f'max-buffers=2 leaky-type=downstream caps="{raw_caps(sizes[0], args.fps)}"'
        )
    else:
        # Scrolling SMPTE bars: motion (a browser test sees the picture change) and enough
        # detail for realistic JPEG sizes (~20 KB at 640x360; the ball pattern gives ~2 KB).
        src = (
            f"videotestsrc is-live=true pattern={args.pattern} "
            f'horizontal-speed={args.speed} ! capsfilter name=size caps="{raw_caps(sizes[0], args.fps)}"'
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
    if args.user is not None:
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    if ":" not in args.bind:
        # Bind the UDP sockets (RTP out, RTCP in) to the RTSP address rather
        # than to every interface. Unicast ttl 0; a port taken by another
        # process is skipped by GstRtspServer, which tries the next pair.
        # A name rather than an address is refused here and keeps the
        # default (all interfaces).
        pool = GstRtspServer.RTSPAddressPool()
        if pool.add_range(args.bind, args.bind, 20000, 60999, 0):
            factory.set_address_pool(pool)
    painters = [Painter(w, h) for (w, h) in sizes] if args.barcode else []

    def on_configure(_factory, media):
        schedule = SizeSchedule(sizes, args.resize_every)
        stoppers = []
        if args.lossy:
            insert_netsim(media, args.lossy)
        if args.barcode:
            appsrc = media.get_element().get_by_name("src")
            feeder = Feeder(appsrc, painters, schedule, args.fps)
            feeders.add(feeder)
            stoppers.append(feeder.stop)
            stoppers.append(lambda: feeders.discard(feeder))
            log("new media, feeder started")
        elif args.resize_every:
            source = start_resizing(media.get_element().get_by_name("size"), schedule, args.fps)
            stoppers.append(lambda: GLib.source_remove(source))

        def on_unprepared(_media):
            for stop in stoppers:
                stop()
            if args.barcode:
                log("media unprepared, feeder stopped")

        media.connect("unprepared", on_unprepared)

    if args.barcode or args.resize_every or args.lossy:
        factory.connect("media-configure", on_configure)
    return factory


def parse_size(text):
    w, sep, h = text.partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}")
    return int(w), int(h)


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
    p.add_argument("--user", help="require RTSP authentication with this user (needs --password)")
    p.add_argument("--password", help="password for --user")
    p.add_argument(
        "--auth", choices=("basic", "digest", "both"), default="both",
        help="schemes offered and accepted with --user (default: both)",
    )
    p.add_argument(
        "--lossy", type=float, default=0, metavar="PERCENT",
        help="drop PERCENT %% of RTP packets and delay another PERCENT/2 %% by 10-40 ms (reordering)",
    )
    p.add_argument(
        "--resize-every", type=float, default=0, metavar="SECONDS",
        help="alternate between --width x --height and --alt-size every SECONDS",
    )
    p.add_argument(
        "--alt-size", type=parse_size, default=(640, 360), metavar="WxH",
        help="second size for --resize-every (default 640x360)",
    )
    p.add_argument("--codec", choices=("h264", "h265"), default="h264", help="the camera's codec (x264 or x265)")
    p.add_argument("--dump", help="also write the encoder's H.264 (as the payloader takes it) to this file")
    args = p.parse_args(argv)
    args.path = [x if x.startswith("/") else "/" + x for x in (args.path or ["/cam"])]
    args.gop = args.gop or args.fps
    if args.width % 2 or args.height % 2 or args.width < CELLS or args.fps <= 0:
        p.error("width/height must be even, width >= 64, fps > 0")
    alt_w, alt_h = args.alt_size
    if alt_w % 2 or alt_h % 2 or alt_w < CELLS:
        p.error("--alt-size must be even and at least 64 wide")
    if (args.user is None) != (args.password is None):
        p.error("--user and --password go together")
    if not 0 <= args.lossy < 100:
        p.error("--lossy must be a percentage in [0, 100)")
    if args.resize_every < 0:
        p.error("--resize-every must be positive")
    return args


def main():
    args = parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()
    feeders = set()
    server = GstRtspServer.RTSPServer()
    server.set_address(args.bind)
    server.set_service(str(args.port))
    auth = make_auth(args)
    if auth is not None:
        server.set_auth(auth)
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
