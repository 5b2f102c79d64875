// The VideoPlayer control: makes one panelcam camera show what its properties ask for, and
// writes the status back. Two kinds of properties:
// - states (camera_*, enable_*, use_*, playback_*): what should be; applied at start and on
//   every change;
// - commands (seek_to_time, ptz_stop, ptz_goto_preset, ptz_set_preset): acted on when they
//   change to a value, then written back empty (false), so that the same command can be given
//   again. A page (re)load never replays a command. ptz_move is both: a value moves the
//   camera, empty again stops that move.
"use strict";
(function (cwc) {
  // Stamped by scripts/build-cwc.sh with the version in Cargo.toml.
  const VERSION = "dev";
  // Status properties are written at most this often (they are often bound to PLC tags).
  const STATUS_INTERVAL_MS = 1000;
  // A warning (a refused command, say) shows this long over the picture.
  const WARNING_MS = 10000;
  const DEBUG_LINES = 12;
  // A camera_stream_url that could not be resolved is tried again after this long.
  const RESOLVE_RETRY_MS = 5000;

  const $ = (id) => document.getElementById(id);
  const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

  // ptz_goto_preset / ptz_set_preset as the server takes them: a JSON object as it is, a
  // number as {"preset": n}, other text as {"token": ...} (goto) or {"name": ...} (set).
  function presetBody(property, text, textKey) {
    const t = text.trim();
    if (/^\d+$/.test(t)) return { preset: Number(t) };
    if (!t.startsWith("{")) return { [textKey]: t };
    let body;
    try {
      body = JSON.parse(t);
    } catch (e) {
      throw new Error(`${property}: not JSON: ${t}`);
    }
    if (!body || typeof body !== "object" || Array.isArray(body)) throw new Error(`${property}: expected a JSON object`);
    return body;
  }

  class VideoPlayer {
    constructor(host, values) {
      this.host = host;
      this.props = values;
      this.server = null; // CameraServer, once camera_stream_url is resolved
      this.serverKey = null; // the camera_stream_url and token it was resolved from
      this.serverReady = Promise.resolve(null);
      this.player = null;
      this.transport = "none"; // "none", "live" (H.264 or JPEGs), "control" or "hls"
      this.controlMode = null; // the mode last sent over the control socket
      this.frameTime = null; // capture (control socket) or arrival (live socket) time on screen
      this.written = {};
      this.moving = false; // a ptz_move is in force
      this.requests = Promise.resolve(); // REST calls go one after another, in order
      this.statusText = "";
      this.statusKind = "info";
      this.warning = "";
      this.debugLines = [];
      this.view = new cwc.JpegView($("picture"), (time) => this.shown(time));
      setInterval(() => this.writeStatus(), STATUS_INTERVAL_MS);
      this.showDebug();
      this.showVersion();
      this.debug(`VideoPlayer ${VERSION}, properties from ${host.kind}`);
      this.update();
      if (this.props.enable_recording) this.record(true);
    }

    // A property changed (WinCC, or panelcamSetProperty in a browser).
    change(name, value) {
      const before = this.props[name];
      this.props[name] = value;
      if (name.startsWith("status_")) return; // ours, echoed
      this.debug(`${name} = ${JSON.stringify(value)}`);
      try {
        this.apply(name, value, before);
      } catch (e) {
        this.warn(e.message);
      }
    }

    apply(name, value, before) {
      switch (name) {
        case "camera_stream_url":
        case "camera_auth_token":
        case "enable_connection":
        case "use_control_stream":
        case "enable_livestream":
        case "use_hls_streaming":
        case "enable_playback":
        case "playback_start_time":
        case "playback_end_time":
          return this.update();
        case "live_stream_mode":
          if (this.transport === "live") this.connect("none"); // the same transport, started anew
          return this.update();
        case "playback_speed":
          return this.sendSpeed();
        case "enable_recording":
          return value !== before ? this.record(value) : undefined;
        case "seek_to_time":
          return value.trim() ? this.command(name, "", () => this.seek(value.trim())) : undefined;
        case "ptz_move":
          return this.ptzMove(value);
        case "ptz_stop":
          return value ? this.command(name, false, () => this.ptzStop()) : undefined;
        case "ptz_goto_preset":
          return value.trim()
            ? this.command(name, "", () => this.ptz("goto_preset", presetBody(name, value, "token")))
            : undefined;
        case "ptz_set_preset":
          return value.trim()
            ? this.command(name, "", () => this.ptz("set_preset", presetBody(name, value, "name")))
            : undefined;
        case "show_version":
          return this.showVersion();
        case "enable_debug":
          return this.showDebug();
        default:
          return undefined; // recording_reason is read when a recording starts
      }
    }

    // Writes a command property back to its resting value, then runs it.
    command(name, rest, run) {
      this.props[name] = rest;
      this.host.write(name, rest);
      run();
    }

    // ---- what is connected ----

    // The connection the properties ask for: transport and, on the control socket, its mode.
    wanted() {
      const p = this.props;
      if (!p.enable_connection) return { transport: "none", mode: "off", why: "connection off (enable_connection)" };
      if (!p.camera_stream_url.trim()) return { transport: "none", mode: "off", why: "camera_stream_url is empty" };
      if (p.enable_playback && p.playback_start_time.trim()) return { transport: "control", mode: "playback" };
      if (p.enable_livestream) {
        if (p.use_hls_streaming) return { transport: "hls", mode: "live" };
        return { transport: p.use_control_stream ? "control" : "live", mode: "live" };
      }
      const why = "live view off (enable_livestream)";
      return { transport: p.use_control_stream ? "control" : "none", mode: "idle", why };
    }

    update() {
      const key = this.props.camera_stream_url.trim() + "\n" + this.props.camera_auth_token;
      if (key !== this.serverKey) {
        // Another camera or token: everything starts over.
        this.serverKey = key;
        this.server = null;
        this.connect("none");
        this.setStatusText("looking for the camera…", "wait");
        this.serverReady = this.props.camera_stream_url.trim() ? this.resolve(key) : Promise.resolve(null);
      }
      const want = this.wanted();
      if (!this.server) {
        this.connect("none");
        if (want.why) this.setStatusText(want.why);
        else if (this.statusKind !== "error") this.setStatusText("looking for the camera…", "wait");
        return;
      }
      this.connect(want.transport);
      if (want.transport === "none") this.setStatusText(want.why);
      else if (want.transport === "control") this.sendMode(want.mode);
      else if (want.mode === "idle") this.setStatusText(want.why);
    }

    resolve(key) {
      const text = this.props.camera_stream_url;
      const token = this.props.camera_auth_token;
      const found = (async () => {
        const parsed = cwc.parseStreamUrl(text, location.href);
        const where = await cwc.resolveCamera(parsed);
        return new cwc.CameraServer(where.base, where.camera, token || parsed.token);
      })();
      return found.then(
        (server) => {
          if (this.serverKey !== key) return null;
          this.server = server;
          this.debug(`camera: ${server.cameraUrl}${server.token ? " (with token)" : ""}`);
          this.showVersion();
          this.update();
          return server;
        },
        (e) => {
          if (this.serverKey !== key) return null;
          // panelcam may not be up yet (the panel booted first): ask again a little later.
          this.setStatusText(e.message, "error");
          setTimeout(() => {
            if (this.serverKey === key && !this.server) this.serverReady = this.resolve(key);
          }, RESOLVE_RETRY_MS);
          return null;
        },
      );
    }

    connect(transport) {
      if (transport === this.transport) return;
      if (this.player) this.player.close();
      this.player = null;
      this.controlMode = null;
      this.frameTime = null;
      this.transport = transport;
      document.body.classList.toggle("hls", transport === "hls");
      this.debug(`transport: ${transport}`);
      const events = {
        onOpen: () => this.opened(),
        onReply: (reply) => this.reply(reply),
        onState: () => this.connectionChanged(),
        onClosed: (text) => this.setStatusText(text, text.endsWith("reconnecting…") ? "wait" : "error"),
        onShown: (time) => this.shown(time),
        log: (text) => this.debug(text),
      };
      const server = this.server;
      if (transport === "live") {
        this.player = new cwc.LiveVideoPlayer(server, this.props.live_stream_mode.trim(), this.view, $("picture"), events);
      } else if (transport === "control") {
        this.player = new cwc.SocketPlayer(server.socketUrl("control"), true, this.view, events);
      } else if (transport === "hls") {
        this.player = new cwc.HlsPlayer($("video"), server, events);
        this.setStatusText("loading HLS…", "wait");
      }
      if (transport === "live" || transport === "control") this.setStatusText("connecting…", "wait");
      this.writeStatus();
    }

    // The socket is (again) open: say what it should show.
    opened() {
      this.debug(`connected: ${this.transport}`);
      const resumeAt = this.controlMode && this.controlMode.startsWith("playback") ? this.frameTime : null;
      this.controlMode = null;
      if (this.transport === "control") this.sendMode(this.wanted().mode, resumeAt);
      else this.setStatusText("waiting for the picture…", "wait");
    }

    // Tells the control socket what to show: live frames, nothing, or the recording from
    // playback_start_time (after a reconnect from the frame last shown).
    sendMode(mode, resumeAt) {
      const p = this.props;
      const key = mode === "playback" ? `playback ${p.playback_start_time} ${p.playback_end_time}` : mode;
      if (key === this.controlMode || !this.player) return;
      let sent;
      if (mode === "playback") {
        const from = resumeAt != null ? new Date(resumeAt + 1).toISOString() : p.playback_start_time.trim();
        const start = { cmd: "start", from };
        if (p.playback_end_time.trim()) start.to = p.playback_end_time.trim();
        sent = this.player.send({ cmd: "speed", speed: p.playback_speed }) && this.player.send(start);
      } else {
        sent = this.player.send({ cmd: mode === "live" ? "live" : "stop" });
      }
      if (!sent) return; // not open yet: opened() sends it
      this.controlMode = key;
      if (mode === "playback") this.setStatusText("loading the recording…", "wait");
      else if (mode === "live") this.setStatusText("waiting for the picture…", "wait");
      else {
        this.view.clear();
        this.setStatusText(this.wanted().why || "");
      }
    }

    sendSpeed() {
      if (this.transport !== "control" || !this.player) return;
      this.player.send({ cmd: "speed", speed: this.props.playback_speed });
    }

    seek(time) {
      if (this.transport !== "control" || this.wanted().mode !== "playback") {
        this.debug("seek_to_time applies during playback: ignored");
        return;
      }
      if (!this.player.send({ cmd: "goto", timestamp: time })) this.warn("seek_to_time: the control socket is not connected");
    }

    // A reply on the control socket.
    reply(reply) {
      const data = reply.data || {};
      if (reply.code >= 400) return this.warn(`${reply.code}: ${reply.text}`);
      if (data.event === "end") return this.setStatusText("end of the recording");
      this.debug(`reply: ${reply.text}${data.cmd ? " (" + data.cmd + ")" : ""}`);
      return undefined;
    }

    shown(time) {
      this.frameTime = time;
      if (this.statusKind === "wait") this.setStatusText("");
    }

    connectionChanged() {
      const connected = Boolean(this.player && this.player.connected);
      this.write("status_connected", connected);
      // HLS shows no JPEGs: playing is its first picture.
      if (connected && this.transport === "hls" && this.statusKind === "wait") this.setStatusText("");
    }

    // ---- requests: recording and PTZ ----

    // Runs fn(server) after the requests before it; failures show as warnings.
    request(label, fn) {
      this.requests = this.requests.then(async () => {
        const server = this.server || (await this.serverReady);
        if (!server) return this.warn(`${label}: no camera (camera_stream_url)`);
        try {
          const data = await fn(server);
          this.debug(`${label}: ${(data && data.message) || "ok"}`);
        } catch (e) {
          this.warn(e.message);
        }
        return undefined;
      });
    }

    record(on) {
      this.request(on ? "recording start" : "recording stop", async (server) => {
        // Asked first, so that a recording already running (or already stopped) is no error.
        const active = (await server.api("GET", "recording/active")).active;
        if (on && !active) {
          const reason = this.props.recording_reason.trim();
          return server.api("POST", "recording/start", reason ? { reason } : {});
        }
        if (!on && active) return server.api("POST", "recording/stop");
        return { message: active ? "already recording" : "not recording" };
      });
    }

    ptzMove(text) {
      const t = text.trim();
      if (!t) {
        if (this.moving) this.ptzStop();
        return;
      }
      let body;
      try {
        body = JSON.parse(t);
      } catch (e) {
        throw new Error("ptz_move: not JSON: " + t);
      }
      if (!body || typeof body !== "object" || Array.isArray(body)) {
        throw new Error('ptz_move: expected a JSON object like {"pan": 0.5, "tilt": 0}');
      }
      this.moving = true;
      this.ptz("move", body);
    }

    ptzStop() {
      this.moving = false;
      this.ptz("stop");
    }

    // Over the control socket when it is open (its reply comes back on it), else the REST API.
    ptz(action, body) {
      const command = Object.assign({ cmd: "ptz_" + action }, body || {});
      if (this.transport === "control" && this.player && this.player.send(command)) {
        this.debug(`PTZ ${action} sent on the control socket`);
        return;
      }
      this.request(`PTZ ${action}`, (server) => server.api("POST", "ptz/" + action, body));
    }

    // ---- status and display ----

    // Writes a status property when its value changed.
    write(name, value) {
      if (has(this.written, name) && this.written[name] === value) return;
      this.written[name] = value;
      this.props[name] = value;
      this.host.write(name, value);
    }

    writeStatus() {
      const s = this.player ? this.player.sample() : { connected: false, fps: 0, kbps: 0 };
      const time = s.timestamp != null ? s.timestamp : this.frameTime;
      this.write("status_connected", s.connected);
      this.write("status_fps", s.connected ? Math.round(s.fps * 10) / 10 : 0);
      this.write("status_bitrate_kbps", s.connected ? Math.round(s.kbps) : 0);
      if (time != null) this.write("status_timestamp", new Date(time).toISOString());
    }

    // The message over the picture: kind "wait" (until the next picture), "info" or "error".
    setStatusText(text, kind) {
      this.statusText = text || "";
      this.statusKind = kind || "info";
      if (this.statusKind === "error") console.warn("VideoPlayer:", text);
      this.render();
    }

    warn(text) {
      console.warn("VideoPlayer:", text);
      this.debug("warning: " + text);
      this.warning = text;
      clearTimeout(this.warningTimer);
      this.warningTimer = setTimeout(() => {
        this.warning = "";
        this.render();
      }, WARNING_MS);
      this.render();
    }

    render() {
      const message = $("message");
      message.textContent = this.warning || this.statusText;
      message.className = this.warning || this.statusKind === "error" ? "error" : "";
    }

    showVersion() {
      const label = $("version");
      label.hidden = !this.props.show_version;
      if (label.hidden) return;
      label.textContent = `VideoPlayer ${VERSION}`;
      const server = this.server;
      if (server) {
        server.serverVersion().then((v) => {
          if (v && this.server === server) label.textContent = `VideoPlayer ${VERSION} · panelcam ${v}`;
        });
      }
    }

    showDebug() {
      $("debug").hidden = !this.props.enable_debug;
      $("debug").textContent = this.debugLines.join("\n");
    }

    debug(text) {
      if (!this.props.enable_debug) return;
      console.debug("VideoPlayer:", text);
      this.debugLines.push(new Date().toISOString().slice(11, 23) + " " + text);
      this.debugLines.splice(0, Math.max(this.debugLines.length - DEBUG_LINES, 0));
      $("debug").textContent = this.debugLines.join("\n");
    }
  }

  let player = null;
  cwc.VERSION = VERSION;
  cwc.connectHost(
    (host, values, notes) => {
      player = new VideoPlayer(host, values);
      window.panelcamPlayer = player;
      for (const note of notes) player.warn(note);
    },
    (name, value) => {
      if (player) player.change(name, value);
    },
  );
})((window.PanelcamCwc = window.PanelcamCwc || {}));
