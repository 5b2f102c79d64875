// Where h264.js puts the pictures: a <canvas> through WebCodecs (CanvasSink) or a <video>
// through Media Source Extensions (VideoSink). Both take init(init message, init segment) and
// push(fragment, its bytes), and report through events { shown(w, h), failed(why), log(text) }.
"use strict";
(function (ns) {
  // MSE: how much decoded history the SourceBuffer keeps (memory stays flat over hours).
  const KEEP_S = 10;
  // Pictures waiting for the SourceBuffer or the decoder beyond this: the browser cannot keep up,
  // drop them and start again at the next keyframe.
  const MAX_BACKLOG = 90;
  const base64Bytes = ns.base64Bytes;
  // MSE: a gap up to this long between two pictures (90 kHz) is lost pictures, shown as the
  // picture before it standing still; a longer one (a skip ahead) is cut out of the timeline.
  const MAX_HOLD = 90000;

  const mimeOf = (codec) => `video/mp4; codecs="${codec}"`;

  // Why `mode` cannot play `init` here, or "" when it can.
  async function whyNot(mode, init) {
    if (mode === "webcodecs") {
      if (!window.isSecureContext) return "WebCodecs needs a secure context (HTTPS, or localhost)";
      if (!("VideoDecoder" in window)) return "this browser has no WebCodecs";
      try {
        const r = await VideoDecoder.isConfigSupported({ codec: init.codec, description: base64Bytes(init.description) });
        return r.supported ? "" : `this browser cannot decode ${init.codec} with WebCodecs`;
      } catch (e) {
        return `WebCodecs refuses ${init.codec}: ${e.message}`;
      }
    }
    if (!("MediaSource" in window)) return "this browser has no Media Source Extensions";
    return MediaSource.isTypeSupported(mimeOf(init.codec)) ? "" : `this browser cannot play ${init.codec} with Media Source`;
  }

  // WebCodecs: every picture decoded, every decoded picture drawn at once.
  class CanvasSink {
    constructor(canvas, events) {
      this.canvas = canvas;
      this.context = canvas.getContext("2d");
      this.events = events;
      this.decoder = null;
      this.config = null;
      this.needKey = true;
      this.arrivals = new Map(); // chunk timestamp -> arrival, for latencyMs
      this.latency = 0;
    }

    init(init) {
      this.config = { codec: init.codec, description: base64Bytes(init.description), optimizeForLatency: true };
      this.open();
    }

    open() {
      if (!this.decoder || this.decoder.state === "closed") {
        this.decoder = new VideoDecoder({
          output: (frame) => this.draw(frame),
          error: (e) => this.failed(e),
        });
      }
      this.decoder.configure(this.config);
      this.needKey = true; // a (re)configured decoder starts at a keyframe
    }

    draw(frame) {
      try {
        const [w, h] = [frame.displayWidth, frame.displayHeight];
        if (this.canvas.width !== w || this.canvas.height !== h) [this.canvas.width, this.canvas.height] = [w, h];
        this.context.drawImage(frame, 0, 0);
        const arrived = this.arrivals.get(frame.timestamp);
        if (arrived !== undefined) this.latency = performance.now() - arrived;
        this.arrivals.delete(frame.timestamp);
        this.events.shown(w, h);
      } finally {
        frame.close();
      }
    }

    failed(e) {
      // The decoder closes itself on an error: a new one, from the next keyframe.
      this.events.log(`decoder error (${e.message}), waiting for the next keyframe`);
      if (this.config) this.open();
    }

    push(fragment) {
      if (!this.config || this.decoder.state !== "configured") return;
      if (this.decoder.decodeQueueSize > MAX_BACKLOG) {
        this.decoder.reset();
        this.decoder.configure(this.config);
        this.needKey = true;
      }
      if (this.needKey && !fragment.keyframe) return;
      this.needKey = false;
      const us = (t) => Math.round((t * 1e6) / 90000);
      if (this.arrivals.size > MAX_BACKLOG) this.arrivals.clear();
      this.arrivals.set(us(fragment.time), fragment.arrived);
      this.decoder.decode(
        new EncodedVideoChunk({
          type: fragment.keyframe ? "key" : "delta",
          timestamp: us(fragment.time),
          duration: fragment.duration ? us(fragment.duration) : undefined,
          data: fragment.data,
        }),
      );
    }

    // Arrival of the newest picture drawn to its drawing.
    latencyMs() {
      return this.latency;
    }

    close() {
      if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
      this.decoder = null;
    }
  }

  // Media Source: segments appended in "sequence" mode, so that a server skip ahead or a camera
  // restart (time starting again at 0) does not leave gaps or overlaps; the playhead is then
  // kept at the live edge.
  //
  // Each picture is appended when the next one arrives, its duration set to the time until that
  // one. panelcam only knows the interval *before* a picture; after lost pictures (UDP) the next
  // one comes later than the last one's duration says, which Media Source takes for a
  // discontinuity and then drops every picture up to the next keyframe (a frozen picture for up
  // to a GOP per loss).
  // The lag behind the newest appended picture that Media Source playback is pulled back to.
  const LAG_HIGH_S = 0.12;
  const LAG_LOW_S = 0.06;

  class VideoSink {
    constructor(video, events, maxLatency) {
      this.video = video;
      this.events = events;
      this.maxLatency = maxLatency;
      this.queue = []; // {init}, {codec} (changeType), {media} or {remove: until}, in order
      this.buffer = null;
      this.codec = null;
      this.needKey = false;
      this.held = null; // the newest picture, appended when the next one arrives
      this.catchingUp = false; // playing at 1.1x to close a lag (keepLive)
      this.trimmedAt = 0;
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      this.onError = () => events.failed(`video error: ${(video.error && video.error.message) || "decode"}`);
      video.addEventListener("error", this.onError);
      this.source = new MediaSource();
      this.source.addEventListener("sourceopen", () => {
        URL.revokeObjectURL(video.src);
        this.pump();
      });
      video.src = URL.createObjectURL(this.source);
      this.timer = setInterval(() => this.keepLive(), 250);
    }

    init(init, segment) {
      this.release(null);
      if (this.codec && this.codec !== init.codec) this.queue.push({ codec: init.codec });
      this.codec = this.codec || init.codec;
      this.queue.push({ init: segment });
      this.pump();
    }

    push(fragment, bytes) {
      if (this.queue.length > MAX_BACKLOG) {
        this.queue = this.queue.filter((item) => !item.media);
        this.held = null;
        this.needKey = true;
      }
      if (this.needKey && !fragment.keyframe) return;
      this.needKey = false;
      this.release(fragment.time);
      this.held = { fragment, bytes };
    }

    // Appends the picture held back, lasting until `next` (90 kHz; null: as it says).
    release(next) {
      const held = this.held;
      this.held = null;
      if (!held) return;
      const gap = next === null ? 0 : next - held.fragment.time;
      if (held.fragment.durationAt !== null && gap > 0 && gap <= MAX_HOLD) {
        new DataView(held.bytes).setUint32(held.fragment.durationAt, gap);
      }
      this.queue.push({ media: held.bytes });
      this.pump();
    }

    pump() {
      if (this.source.readyState !== "open") return;
      if (!this.buffer && this.codec) {
        this.buffer = this.source.addSourceBuffer(mimeOf(this.codec));
        this.buffer.mode = "sequence";
        this.buffer.addEventListener("updateend", () => {
          this.keepLive();
          this.pump();
        });
      }
      const b = this.buffer;
      if (!b || b.updating || !this.queue.length) return;
      const item = this.queue.shift();
      try {
        if (item.codec) {
          b.changeType(mimeOf(item.codec));
          this.codec = item.codec;
          return this.pump();
        }
        if (item.remove) return b.remove(0, item.remove);
        b.appendBuffer(item.init || item.media);
      } catch (e) {
        // QuotaExceeded or a closed buffer: drop what waits, trim, start at the next keyframe.
        this.queue = this.queue.filter((i) => i.init || i.codec);
        this.needKey = true;
        this.trim(true);
        this.events.log(`Media Source: ${e.message}`);
      }
      return undefined;
    }

    // Removes what lies more than KEEP_S behind the playhead (at most every few seconds).
    trim(now) {
      const v = this.video;
      if (!this.buffer || !v.buffered.length) return;
      const until = v.currentTime - (now ? 1 : KEEP_S);
      if (until > v.buffered.start(0) + (now ? 0 : 2)) {
        this.queue.unshift({ remove: until });
        this.pump();
      }
    }

    keepLive() {
      const v = this.video;
      const ranges = v.buffered;
      if (!ranges.length) return;
      const end = ranges.end(ranges.length - 1);
      const behind = end - v.currentTime;
      if (behind > this.maxLatency || v.currentTime < ranges.start(ranges.length - 1)) {
        v.currentTime = Math.max(end - 0.05, ranges.start(ranges.length - 1));
      }
      // Close small lags by playing a little faster instead of jumping, down to about two
      // frames behind the newest appended picture. Left alone, a lag the player picked up at
      // start or in a stall stays for good (measured: 190-200 ms for the whole run on a quiet
      // machine; docs/benchmarks.md, "Media router in the browser").
      if (behind > LAG_HIGH_S) this.catchingUp = true;
      else if (behind < LAG_LOW_S) this.catchingUp = false;
      v.playbackRate = this.catchingUp ? 1.1 : 1;
      if (v.paused && v.readyState >= 2) v.play().catch(() => {});
      this.events.shown(v.videoWidth, v.videoHeight);
      if (performance.now() - this.trimmedAt > 3000) {
        this.trimmedAt = performance.now();
        this.trim(false);
      }
    }

    latencyMs() {
      const r = this.video.buffered;
      return r.length ? Math.max(0, (r.end(r.length - 1) - this.video.currentTime) * 1000) : 0;
    }

    // Pictures the <video> has shown (decoded and not dropped).
    framesShown() {
      const q = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
      return q ? q.totalVideoFrames - q.droppedVideoFrames : 0;
    }

    close() {
      clearInterval(this.timer);
      this.video.removeEventListener("error", this.onError);
      this.queue = [];
      this.held = null;
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  ns.whyNot = whyNot;
  ns.CanvasSink = CanvasSink;
  ns.VideoSink = VideoSink;
})((window.PanelcamH264 = window.PanelcamH264 || {}));
