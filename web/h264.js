// The camera's own H.264 (or H.265) from `/<cam>/video`, shown without a library: fragmented MP4
// over a WebSocket into WebCodecs (a <canvas>, lowest latency, secure contexts only) or Media
// Source Extensions (a <video>). Shared by panelcam's pages and the WinCC control, so it knows
// neither: it gets a URL and elements, and reports through callbacks.
//
// The protocol: text {"type":"init", codec, width, height, description} then one binary init
// segment (ftyp+moov), again whenever the stream changes; then one moof+mdat per picture, the
// current GOP first; text {"type":"unavailable", reason} and close 4415 when the camera has no
// H.264 to pass through (the page then shows MJPEG).
"use strict";
(function (ns) {
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 5000;
  // MSE: how far behind the newest picture the playhead may fall before it jumps (seconds).
  const MAX_LATENCY_S = 0.5;

  // Whether the panelcam of a /<cam>/video URL answers HTTP (its public camera list).
  async function serverAnswers(videoUrl) {
    const u = new URL(videoUrl);
    u.protocol = u.protocol === "wss:" ? "https:" : "http:";
    u.pathname = u.pathname.replace(/\/[^/]*\/video\/?$/, "") + "/api/cameras";
    u.search = "";
    try {
      await fetch(u, { cache: "no-store" });
      return true;
    } catch (e) {
      return false;
    }
  }

  // One camera's H.264 over its WebSocket, reconnecting until closed.
  // options: { url, mode: "auto" | "webcodecs" | "mse", video(), canvas() (elements, made when
  //   needed), maxLatency (s), onChange(player), onUnavailable(reason) (the page shows MJPEG),
  //   log(text) }.
  // state: connecting, connected, disconnected, removed, unsupported (a forced mode that cannot
  // play: `message` says why), unavailable.
  class H264Player {
    constructor(options) {
      this.options = options;
      this.wanted = options.mode || "auto";
      this.mode = ""; // "webcodecs" or "mse" once the first init arrived
      this.state = "connecting";
      this.message = "";
      this.frames = 0; // pictures shown
      this.fragments = 0; // pictures received
      this.fps = 0;
      this.kbps = 0;
      this.width = 0;
      this.height = 0;
      this.latencyMs = 0;
      this.lastFrameTime = 0; // performance.now() of the last picture shown
      this.codec = "";
      this.sink = null;
      this.init = null; // the init message whose segment comes next
      this.work = Promise.resolve(); // messages are handled in order, setup may wait
      this.retryMs = RETRY_MIN_MS;
      this.opened = false;
      this.failures = 0;
      this.stopped = false;
      this.window = { start: performance.now(), frames: 0, bytes: 0 };
      this.timer = setInterval(() => this.tick(), 1000);
      this.connect();
    }

    connect() {
      if (this.stopped) return;
      this.setState("connecting");
      const ws = new WebSocket(this.options.url);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        this.opened = true;
        this.retryMs = RETRY_MIN_MS;
        this.setState("connected");
      };
      ws.onmessage = (ev) => {
        this.work = this.work.then(() => this.receive(ev.data, ws)).catch((e) => this.fail(e.message));
      };
      ws.onclose = (ev) => this.closed(ev, ws);
      this.ws = ws;
    }

    closed(ev, ws) {
      if (this.ws !== ws) return;
      this.ws = null;
      this.init = null;
      if (this.stopped) return;
      if (ev.code === 1001 && ev.reason === "camera removed") return this.stop("removed");
      // Normally the "unavailable" message has said so already (it may still wait in `work`).
      if (ev.code === 4415) return this.unavailable(ev.reason || "no H.264 for this camera");
      this.setState("disconnected");
      if (this.opened || ++this.failures < 2) return this.again();
      // Never opened: panelcam is not up yet (a panel that booted first: keep trying), or it is
      // older than /<cam>/video and answers everything else (show MJPEG).
      serverAnswers(this.options.url).then((up) => {
        if (this.stopped) return;
        if (up) this.unavailable("this panelcam has no H.264 endpoint");
        else this.again();
      });
      return undefined;
    }

    again() {
      this.retry = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    }

    async receive(data, ws) {
      if (this.stopped || this.ws !== ws) return;
      if (typeof data === "string") {
        const msg = JSON.parse(data);
        if (msg.type === "init") this.init = msg;
        else if (msg.type === "unavailable") this.unavailable(msg.reason || "no H.264 for this camera");
        return;
      }
      this.window.bytes += data.byteLength;
      if (this.init) {
        const init = this.init;
        this.init = null;
        await this.setup(init, data);
        return;
      }
      if (!this.sink) return;
      const fragment = ns.parseFragment(data);
      if (!fragment) return this.options.log("not a media fragment: skipped");
      this.fragments++;
      this.window.frames++;
      fragment.arrived = performance.now();
      this.sink.push(fragment, data);
    }

    // A stream (again): pick the mode at the first init, then (re)initialise the sink.
    async setup(init, segment) {
      if (!this.mode || init.codec !== this.codec) {
        const candidates = this.mode ? [this.mode] : this.wanted === "auto" ? ["webcodecs", "mse"] : [this.wanted];
        let why = "";
        let mode = "";
        for (const m of candidates) {
          why = await ns.whyNot(m, init);
          if (!why) {
            mode = m;
            break;
          }
        }
        if (this.stopped) return;
        if (!mode) {
          if (this.wanted === "auto") return this.unavailable(why);
          return this.stop("unsupported", why);
        }
        if (mode !== this.mode && this.sink) this.sink.close();
        if (mode !== this.mode) this.sink = null;
        this.mode = mode;
        this.codec = init.codec;
      }
      const events = {
        shown: (w, h) => this.shown(w, h),
        failed: (why) => this.restart(why),
        log: (text) => this.options.log(text),
      };
      if (!this.sink) {
        this.sink =
          this.mode === "webcodecs"
            ? new ns.CanvasSink(this.options.canvas(), events)
            : new ns.VideoSink(this.options.video(), events, this.options.maxLatency || MAX_LATENCY_S);
      }
      this.sink.init(init, segment);
      // The announced size until a picture is shown; after that the shown pictures say it (a
      // <video> still shows pictures of the old size for a moment after a new init).
      if (!this.lastFrameTime) {
        this.width = init.width || this.width;
        this.height = init.height || this.height;
      }
      this.changed();
    }

    shown(width, height) {
      if (this.mode === "mse") {
        const n = this.sink.framesShown();
        if (n === this.frames) return;
        this.frames = n;
      } else {
        this.frames++;
      }
      this.lastFrameTime = performance.now();
      if (width) [this.width, this.height] = [width, height];
    }

    // The sink cannot go on (a <video> decode error): a new one, from a new connection.
    restart(why) {
      this.options.log(why);
      if (this.sink) this.sink.close();
      this.sink = null;
      if (this.ws) this.ws.close();
    }

    unavailable(reason) {
      this.stop("unavailable", reason);
      this.options.onUnavailable(reason);
    }

    tick() {
      const now = performance.now();
      const secs = (now - this.window.start) / 1000;
      this.fps = this.window.frames / secs;
      this.kbps = (this.window.bytes * 8) / 1000 / secs;
      this.latencyMs = this.sink ? this.sink.latencyMs() : 0;
      this.window = { start: now, frames: 0, bytes: 0 };
      this.changed();
    }

    fail(why) {
      this.options.log(`H.264: ${why}`);
      this.restart(why);
    }

    setState(state) {
      this.state = state;
      this.changed();
    }

    changed() {
      if (this.options.onChange) this.options.onChange(this);
    }

    // Ends the player for good; `state` says why (default "stopped").
    stop(state, message) {
      this.stopped = true;
      clearInterval(this.timer);
      clearTimeout(this.retry);
      if (this.sink) this.sink.close();
      this.sink = null;
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        // Closing a socket that is still connecting makes Chromium log an error.
        if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close();
        else ws.close();
      }
      this.message = message || "";
      this.setState(state || "stopped");
    }
  }

  ns.H264Player = H264Player;
})((window.PanelcamH264 = window.PanelcamH264 || {}));
