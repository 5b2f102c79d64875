// Live view as the camera's own H.264 over a WebSocket, falling back to JPEGs: panelcam's
// h264.js (packed next to this file by scripts/build-cwc.sh) does the H.264.
"use strict";
(function (cwc) {
  const SocketPlayer = cwc.SocketPlayer;

  // Live view as the camera's own H.264 from /<cam>/video (h264.js: WebCodecs in a secure
  // context, else Media Source), or JPEGs from the live socket when the camera has no H.264
  // to pass through or this browser cannot play it. mode (live_stream_mode): "auto", or a forced
  // "webcodecs", "mse" or "mjpeg"; a forced mode that cannot play says why instead of showing
  // another. events as SocketPlayer's, plus onShown(time) for each H.264 picture.
  class LiveVideoPlayer {
    constructor(server, mode, view, box, events) {
      this.server = server;
      this.view = view;
      this.box = box;
      this.events = events;
      this.wanted = mode || "auto";
      this.inner = null;
      this.framesSeen = 0;
      this.shownFrames = 0;
      const modes = ["auto", "webcodecs", "mse", "mjpeg"];
      if (!modes.includes(this.wanted)) {
        events.onClosed(`live_stream_mode "${this.wanted}" is not one of ${modes.join(", ")}`);
      } else if (this.wanted === "mjpeg" || !window.PanelcamH264) {
        this.startJpeg();
      } else {
        this.startH264();
      }
    }

    startH264() {
      this.inner = new window.PanelcamH264.H264Player({
        url: this.server.socketUrl("video"),
        mode: this.wanted,
        video: () => this.element("video"),
        canvas: () => this.element("canvas"),
        onChange: (p) => this.changed(p),
        onUnavailable: (why) => {
          if (this.wanted !== "auto") return;
          this.events.log(`H.264: ${why}; showing MJPEG`);
          this.removeElements();
          this.startJpeg();
        },
        log: (text) => this.events.log(text),
      });
    }

    startJpeg() {
      this.inner = new SocketPlayer(this.server.socketUrl("live"), false, this.view, this.events);
      this.box.dataset.mode = "mjpeg";
    }

    get mode() {
      if (this.inner instanceof SocketPlayer) return "mjpeg";
      return this.inner ? this.inner.mode : "";
    }

    get connected() {
      const p = this.inner;
      return p instanceof SocketPlayer ? p.connected : Boolean(p && p.state === "connected");
    }

    changed(p) {
      // Reports of a player replaced by JPEGs, or closed, are old news.
      if (this.closed || (this.inner !== p && this.inner !== null)) return;
      this.box.dataset.mode = p.mode;
      const connected = p.state === "connected";
      if (connected !== this.wasConnected) {
        this.wasConnected = connected;
        this.events.onState();
        if (connected) this.events.onOpen();
      }
      if (p.frames !== this.shownFrames) {
        this.shownFrames = p.frames;
        this.events.onShown(performance.timeOrigin + p.lastFrameTime);
      }
      if (p.state === "disconnected") this.events.onClosed("disconnected, reconnecting…");
      if ((p.state === "unsupported" || p.state === "unavailable") && this.wanted !== "auto") {
        const prefix = p.state === "unavailable" ? "no H.264 for this camera: " : "";
        this.events.onClosed(`live_stream_mode ${this.wanted}: ${prefix}${p.message}`);
      }
    }

    // The <video> or <canvas> of the H.264 picture, made on first use.
    element(tag) {
      let e = this.box.querySelector(tag + ".h264");
      if (!e) {
        this.box.textContent = "";
        e = document.createElement(tag);
        e.className = "h264";
        this.box.append(e);
      }
      return e;
    }

    removeElements() {
      for (const e of this.box.querySelectorAll(".h264")) e.remove();
    }

    sample() {
      if (this.inner instanceof SocketPlayer) return this.inner.sample();
      const p = this.inner;
      if (!p) return { connected: false, fps: 0, kbps: 0 };
      const now = performance.now();
      const secs = Math.max((now - (this.sampledAt || now - 1000)) / 1000, 0.001);
      const fps = Math.max(p.frames - this.framesSeen, 0) / secs;
      this.framesSeen = p.frames;
      this.sampledAt = now;
      return { connected: p.state === "connected", fps, kbps: p.kbps };
    }

    send() {
      return false; // the live sockets take no commands
    }

    close() {
      this.closed = true;
      const p = this.inner;
      this.inner = null;
      if (p instanceof SocketPlayer) p.close();
      else if (p) p.stop();
      this.removeElements();
      delete this.box.dataset.mode;
    }
  }

  cwc.LiveVideoPlayer = LiveVideoPlayer;
})((window.PanelcamCwc = window.PanelcamCwc || {}));
