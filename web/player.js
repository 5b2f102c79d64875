// Shared by every page: live MJPEG over WebSocket (one binary message = one JPEG).
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
  wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  },
};

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
    ws.onclose = () => {
      this.ws = null;
      if (this.stopped) return;
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
