// What shows the picture: JPEG frames from a WebSocket (the live socket, or the control socket
// that also replays recordings and carries PTZ), or the camera's own H.264 as HLS in <video>
// (live H.264 over a WebSocket is livevideo.js).
// Every player answers sample(): connected, frames per second and kbit/s since the last
// sample (and for HLS the time on screen), which the control writes to its status properties.
"use strict";
(function (cwc) {
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 5000;
  // An HLS stream that failed is tried again after this long (FFmpeg restarting, say).
  const HLS_RETRY_MS = 3000;

  // Frames and bytes since the last take().
  class Meter {
    constructor() {
      this.reset();
    }

    reset() {
      this.frames = 0;
      this.bytes = 0;
      this.since = performance.now();
    }

    take() {
      const secs = Math.max((performance.now() - this.since) / 1000, 0.001);
      const rates = { fps: this.frames / secs, kbps: (this.bytes * 8) / 1000 / secs };
      this.reset();
      return rates;
    }
  }

  // Shows JPEGs newest first: while one decodes, newer arrivals replace the waiting one, so a
  // slow panel skips frames instead of falling behind. Each decoded picture replaces the
  // <img> in `box`, so the old picture stays until the new one is ready (no flicker).
  class JpegView {
    constructor(box, onShown) {
      this.box = box;
      this.onShown = onShown;
      this.waiting = null;
      this.decoding = false;
      this.url = null;
    }

    show(jpeg, timestamp) {
      this.waiting = { jpeg, timestamp };
      if (!this.decoding) this.next();
    }

    next() {
      const frame = this.waiting;
      if (!frame) return;
      this.waiting = null;
      this.decoding = true;
      const url = URL.createObjectURL(new Blob([frame.jpeg], { type: "image/jpeg" }));
      const img = new Image();
      img.alt = "";
      img.src = url;
      img.decode().then(
        () => {
          if (this.decoding) {
            this.box.textContent = "";
            this.box.append(img);
            if (this.url) URL.revokeObjectURL(this.url);
            this.url = url;
            this.onShown(frame.timestamp);
          } else {
            URL.revokeObjectURL(url); // cleared meanwhile
          }
          this.decoding = false;
          this.next();
        },
        () => {
          URL.revokeObjectURL(url); // a damaged frame: skip it
          this.decoding = false;
          this.next();
        },
      );
    }

    clear() {
      this.waiting = null;
      this.decoding = false;
      this.box.textContent = "";
      if (this.url) URL.revokeObjectURL(this.url);
      this.url = null;
    }
  }

  // A WebSocket carrying JPEGs, reconnecting until closed:
  // - live (`/<cam>/live`): each binary message is one JPEG, shown at its arrival time;
  // - control (`/<cam>/control`): [0x00][i64 LE ms][JPEG] frames with their capture time,
  //   [0x01][JSON {code, text, data}] replies to commands.
  // events: onOpen() after each (re)connect, onReply(reply), onState(), onClosed(text).
  class SocketPlayer {
    constructor(url, control, view, events) {
      this.url = url;
      this.control = control;
      this.view = view;
      this.events = events;
      this.meter = new Meter();
      this.connected = false;
      this.closed = false;
      this.retryMs = RETRY_MIN_MS;
      this.open();
    }

    open() {
      if (this.closed) return;
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        this.retryMs = RETRY_MIN_MS;
        this.connected = true;
        this.events.onState();
        this.events.onOpen();
      };
      ws.onmessage = (ev) => this.receive(ev.data);
      ws.onclose = (ev) => {
        this.ws = null;
        const was = this.connected;
        this.connected = false;
        if (this.closed) return;
        if (was) this.events.onState();
        // The server says why: a removed camera does not come back, anything else may.
        if (ev.code === 1001 && ev.reason === "camera removed") {
          this.closed = true;
          this.events.onClosed("the camera was removed from panelcam");
          return;
        }
        this.events.onClosed(`disconnected${ev.reason ? " (" + ev.reason + ")" : ""}, reconnecting…`);
        this.retry = setTimeout(() => this.open(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      };
      this.ws = ws;
    }

    receive(data) {
      if (!(data instanceof ArrayBuffer) || data.byteLength === 0) return;
      if (!this.control) return this.frame(data, Date.now());
      const kind = new Uint8Array(data, 0, 1)[0];
      if (kind === 0x00 && data.byteLength > 9) {
        this.frame(data.slice(9), Number(new DataView(data).getBigInt64(1, true)));
      } else if (kind === 0x01) {
        let reply;
        try {
          reply = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 1)));
        } catch (e) {
          return;
        }
        this.events.onReply(reply);
      }
    }

    frame(jpeg, timestamp) {
      this.meter.frames += 1;
      this.meter.bytes += jpeg.byteLength;
      this.view.show(jpeg, timestamp);
    }

    // Sends a command (control socket); false when the socket is not open.
    send(command) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(JSON.stringify(command));
      return true;
    }

    sample() {
      return { connected: this.connected, ...this.meter.take() };
    }

    close() {
      this.closed = true;
      this.connected = false;
      clearTimeout(this.retry);
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        ws.onmessage = null;
        ws.onclose = null;
        // Closing a socket that is still connecting makes Chromium log an error: close it
        // once it is open instead.
        if (ws.readyState === WebSocket.CONNECTING) {
          ws.onopen = () => ws.close();
        } else {
          ws.onopen = null;
          ws.close();
        }
      }
      this.view.clear();
    }
  }

  // hls.js, from the panelcam the camera is on (/assets/hls.min.js), loaded once per URL.
  const hlsScripts = {};
  function loadHlsJs(src) {
    if (!hlsScripts[src]) {
      hlsScripts[src] = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = src;
        script.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error(src + " did not define Hls")));
        script.onerror = () => {
          delete hlsScripts[src];
          reject(new Error("hls.js could not be loaded from " + src));
        };
        document.head.append(script);
      });
    }
    return hlsScripts[src];
  }

  // Live HLS in <video> through hls.js (the browsers of WinCC panels have no HLS of their own).
  // Every request of hls.js carries the token as a header; the playlist URL has none.
  class HlsPlayer {
    constructor(video, server, events) {
      this.video = video;
      this.server = server;
      this.events = events;
      this.meter = new Meter();
      this.connected = false;
      this.closed = false;
      this.framesSeen = 0;
      this.kbps = 0;
      this.onPlaying = () => this.setConnected(true);
      video.addEventListener("playing", this.onPlaying);
      this.start();
    }

    async start() {
      let Hls;
      try {
        Hls = await loadHlsJs(this.server.hlsJsUrl);
      } catch (e) {
        this.events.onClosed(e.message);
        return;
      }
      if (this.closed) return;
      if (!Hls.isSupported()) {
        this.events.onClosed("this browser cannot play HLS (no Media Source Extensions)");
        return;
      }
      const headers = this.server.authHeaders();
      const hls = new Hls({
        liveSyncDurationCount: 2,
        xhrSetup: (xhr) => {
          for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
        },
      });
      // Segments arrive every few seconds: the bitrate is the last segment's size over its
      // duration, not the bytes of the last second.
      hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
        // The payload may already be handed to hls.js' worker (detached): its stats count it.
        const stats = data.frag.stats || {};
        const bytes = Math.max(data.payload ? data.payload.byteLength : 0, stats.loaded || 0, stats.total || 0);
        if (data.frag.duration > 0) this.kbps = (bytes * 8) / 1000 / data.frag.duration;
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (!data.fatal) return this.events.log(`hls.js: ${data.details}`);
        this.events.onClosed(`HLS: ${data.details}, retrying…`);
        this.setConnected(false);
        hls.destroy();
        if (this.hls === hls) this.hls = null;
        this.retry = setTimeout(() => this.start(), HLS_RETRY_MS);
      });
      hls.loadSource(this.server.hlsLiveUrl);
      hls.attachMedia(this.video);
      this.hls = hls;
      this.video.play().catch(() => {}); // autoplay of a muted video; "playing" reports success
    }

    setConnected(connected) {
      if (this.connected === connected) return;
      this.connected = connected;
      this.events.onState();
    }

    sample() {
      const quality = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
      const total = quality ? quality.totalVideoFrames : 0;
      this.meter.frames = Math.max(total - this.framesSeen, 0);
      this.framesSeen = total;
      // hls.js maps the playhead to the camera's clock through #EXT-X-PROGRAM-DATE-TIME.
      const date = this.hls && this.hls.playingDate;
      const timestamp = date && !Number.isNaN(date.getTime()) ? date.getTime() : null;
      return { connected: this.connected, timestamp, fps: this.meter.take().fps, kbps: this.kbps };
    }

    close() {
      this.closed = true;
      this.connected = false;
      clearTimeout(this.retry);
      this.video.removeEventListener("playing", this.onPlaying);
      if (this.hls) this.hls.destroy();
      this.hls = null;
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  cwc.JpegView = JpegView;
  cwc.SocketPlayer = SocketPlayer;
  cwc.HlsPlayer = HlsPlayer;
})((window.PanelcamCwc = window.PanelcamCwc || {}));
