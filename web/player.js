// Shared by every page: the live picture, as the camera's own H.264 (CameraPlayer with h264.js,
// inlined after this file) or as MJPEG over WebSocket (LivePlayer: one binary message = one JPEG).
// All URLs are derived from location.pathname so pages work behind a reverse-proxy prefix
// such as /video/cam1/stream (WinCC's IIS rewrite).
"use strict";

const panelcam = {
  // "?token=..." of this page, passed on to sockets and API calls.
  tokenQuery() {
    const t = new URLSearchParams(location.search).get("token");
    return t ? "?token=" + encodeURIComponent(t) : "";
  },
  // /video/cam1/test -> /video/cam1 ; /video/cam1 -> /video/cam1
  cameraBase() {
    return location.pathname.replace(/\/+$/, "").replace(/\/(test|stream|control|live)$/, "");
  },
  // /video/dashboard -> /video ; /video/cam1/test -> /video
  prefix() {
    const base = panelcam.cameraBase();
    return base.endsWith("/dashboard") ? base.slice(0, -"/dashboard".length) : base.replace(/\/[^/]*$/, "");
  },
  // ?mode=webcodecs|mse|mjpeg forces how live video is shown; "auto" picks (CameraPlayer).
  playMode() {
    return new URLSearchParams(location.search).get("mode") || "auto";
  },
  // ?latency=<seconds>: how far Media Source playback may trail the newest picture.
  maxLatency() {
    const s = Number(new URLSearchParams(location.search).get("latency"));
    return s > 0 ? s : undefined;
  },
  wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  },
  // Media icons as inline SVG: the symbol characters (▶ ⏸ ⏮) are missing from the fonts of
  // some panels and browsers, which then draw empty boxes.
  ICONS: {
    play: "M4 2l10 6-10 6z",
    pause: "M3 2h4v12H3zM9 2h4v12H9z",
    stop: "M3 3h10v10H3z",
    record: "M8 3a5 5 0 1 0 0 10A5 5 0 0 0 8 3z",
    "step-back": "M2 2h2v12H2zM14 2v12L5 8z",
    "step-fwd": "M12 2h2v12h-2zM2 2v12l9-6z",
    up: "M8 2l6 9H2z",
    down: "M8 14L2 5h12z",
    left: "M2 8l9-6v12z",
    right: "M14 8L5 2v12z",
    "zoom-in": "M7 2h2v5h5v2H9v5H7V9H2V7h5z",
    "zoom-out": "M2 7h12v2H2z",
  },
  icon(name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("width", "1em");
    svg.setAttribute("height", "1em");
    svg.setAttribute("aria-hidden", "true");
    svg.style.verticalAlign = "-0.125em";
    svg.style.marginRight = ".3em";
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", panelcam.ICONS[name] || "");
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  },
  // Puts the icon of every `data-icon` element in front of its text.
  addIcons(root) {
    for (const e of (root || document).querySelectorAll("[data-icon]")) {
      if (!e.querySelector("svg")) e.prepend(panelcam.icon(e.dataset.icon));
    }
  },
};
document.addEventListener("DOMContentLoaded", () => panelcam.addIcons());

// Shows a live stream in an <img>. Only the newest undecoded frame is kept: a slow browser
// skips frames instead of falling behind. Reconnects by itself.
class LivePlayer {
  constructor(img, url, onUpdate) {
    this.img = img;
    this.url = url;
    this.onUpdate = onUpdate || (() => {});
    this.state = "connecting";
    this.frames = 0;
    this.fps = 0;
    this.kbps = 0;
    this.latencyMs = 0; // message received -> image decoded and shown
    this.width = 0;
    this.height = 0;
    this.retryMs = 500;
    this.pending = null;
    this.decoding = false;
    this.window = { start: performance.now(), frames: 0, bytes: 0 };
    this.stopped = false;
    this.connect();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  connect() {
    if (this.stopped) return;
    this.setState("connecting");
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { this.retryMs = 500; this.setState("connected"); };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") return;
      this.window.frames++;
      this.window.bytes += ev.data.byteLength;
      this.pending = { data: ev.data, at: performance.now() };
      this.show();
    };
    ws.onclose = (ev) => {
      this.ws = null;
      if (this.stopped) return;
      // The server says why it closed: a removed camera will not come back (reconnecting
      // would only fail), a changed one restarts (1012) and is worth reconnecting to.
      if (ev.code === 1001 && ev.reason === "camera removed") {
        this.stopped = true;
        clearInterval(this.timer);
        this.setState("removed");
        return;
      }
      this.setState("disconnected");
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
    this.ws = ws;
  }

  show() {
    if (this.decoding || !this.pending) return;
    const { data, at } = this.pending;
    this.pending = null;
    this.decoding = true;
    const url = URL.createObjectURL(new Blob([data], { type: "image/jpeg" }));
    const done = () => {
      URL.revokeObjectURL(url);
      this.decoding = false;
      this.show();
    };
    const img = new Image();
    img.onload = () => {
      this.img.src = img.src;
      this.frames++;
      this.lastFrameTime = performance.now();
      this.latencyMs = performance.now() - at;
      this.width = img.naturalWidth;
      this.height = img.naturalHeight;
      // The displayed src must outlive this decode; revoke it when the next one replaces it.
      if (this.shownUrl) URL.revokeObjectURL(this.shownUrl);
      this.shownUrl = url;
      this.decoding = false;
      this.show();
    };
    img.onerror = done;
    img.src = url;
  }

  tick() {
    const now = performance.now();
    const secs = (now - this.window.start) / 1000;
    this.fps = this.window.frames / secs;
    this.kbps = (this.window.bytes * 8) / 1000 / secs;
    this.window = { start: now, frames: 0, bytes: 0 };
    this.onUpdate(this);
  }

  setState(s) {
    this.state = s;
    this.onUpdate(this);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.ws) this.ws.close();
  }
}

const PLAY_MODES = ["auto", "webcodecs", "mse", "mjpeg"];

// A camera's live picture in `box` (a .video element holding an <img>): its own H.264 when the
// camera and this browser allow it (WebCodecs in a secure context, else Media Source), else
// MJPEG. A forced mode (`mode` other than "auto") that cannot play says why in `message`
// instead of showing another. The mode in use is `mode` and box.dataset.mode ("" while the
// first stream description is awaited). Reads like a LivePlayer: state, frames, fps, kbps,
// latencyMs, width, height.
// urls: { video: the H.264 WebSocket, mjpeg: the JPEG WebSocket }.
class CameraPlayer {
  constructor(box, urls, mode, onUpdate) {
    this.box = box;
    this.urls = urls;
    this.wanted = mode || "auto";
    this.onUpdate = onUpdate || (() => {});
    this.inner = null;
    this.message = "";
    if (!PLAY_MODES.includes(this.wanted)) {
      this.message = `unknown mode "${this.wanted}" (${PLAY_MODES.join(", ")})`;
      this.report();
    } else if (this.wanted === "mjpeg") {
      this.startMjpeg();
    } else {
      this.startH264();
    }
  }

  startH264() {
    this.inner = new PanelcamH264.H264Player({
      url: this.urls.video,
      mode: this.wanted,
      video: () => this.element("video"),
      canvas: () => this.element("canvas"),
      maxLatency: panelcam.maxLatency(),
      onChange: () => this.report(),
      onUnavailable: (why) => {
        if (this.wanted !== "auto") return; // forced: the message stays
        this.message = "showing MJPEG: " + why;
        this.startMjpeg();
      },
      log: (text) => console.debug("panelcam player:", text),
    });
  }

  startMjpeg() {
    this.inner = new LivePlayer(this.box.querySelector("img"), this.urls.mjpeg, () => this.report());
  }

  // The <video> (Media Source) or <canvas> (WebCodecs) of this box, made on first use.
  element(tag) {
    let e = this.box.querySelector(tag + ".h264");
    if (!e) {
      e = document.createElement(tag);
      e.className = "h264";
      if (tag === "video") e.muted = e.autoplay = e.playsInline = true;
      this.box.querySelector("img").after(e);
    }
    return e;
  }

  get mode() {
    if (this.inner instanceof LivePlayer) return "mjpeg";
    return this.inner ? this.inner.mode : "";
  }

  report() {
    if (this.wanted !== "auto" && this.inner && this.inner.message) {
      const forced = this.inner.state === "unavailable" ? "H.264 is not available for this camera: " : "";
      this.message = forced + this.inner.message;
    }
    this.box.dataset.mode = this.mode;
    this.onUpdate(this);
  }

  get state() {
    if (this.inner) return this.inner.state;
    return this.message ? "unsupported" : "connecting";
  }
  get frames() { return this.inner ? this.inner.frames : 0; }
  get framesDecoded() { return this.frames; }
  get lastFrameTime() { return this.inner && this.inner.lastFrameTime; }
  get fps() { return this.inner ? this.inner.fps : 0; }
  get kbps() { return this.inner ? this.inner.kbps : 0; }
  get latencyMs() { return this.inner ? this.inner.latencyMs : 0; }
  get width() { return this.inner ? this.inner.width : 0; }
  get height() { return this.inner ? this.inner.height : 0; }

  stop() {
    if (this.inner) this.inner.stop();
  }
}
