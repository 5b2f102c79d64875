// The control's interface (manifest.json, contracts.api.properties) and where its values come
// from: inside WinCC Unified the runtime's WebCC object, in a plain browser the page's query
// string. Either way the control sees typed values and writes its status through one `write`.
//
// Classic scripts sharing one namespace, no ES modules: on a Unified Comfort Panel the control
// runs from the panel's file system, where module scripts are refused.
"use strict";
(function (cwc) {
  // name: [type, default]. The same as manifest.json; tests/cwc.rs compares the two.
  const PROPERTIES = {
    camera_stream_url: ["string", ""],
    camera_auth_token: ["string", ""],
    enable_connection: ["boolean", true],
    show_version: ["boolean", false],
    enable_debug: ["boolean", false],
    use_control_stream: ["boolean", false],
    enable_livestream: ["boolean", true],
    use_hls_streaming: ["boolean", false],
    live_stream_mode: ["string", "auto"],
    enable_recording: ["boolean", false],
    recording_reason: ["string", ""],
    enable_playback: ["boolean", false],
    playback_start_time: ["string", ""],
    playback_end_time: ["string", ""],
    playback_speed: ["number", 1],
    seek_to_time: ["string", ""],
    ptz_move: ["string", ""],
    ptz_stop: ["boolean", false],
    ptz_goto_preset: ["string", ""],
    ptz_set_preset: ["string", ""],
    status_connected: ["boolean", false],
    status_fps: ["number", 0],
    status_bitrate_kbps: ["number", 0],
    status_timestamp: ["string", ""],
  };

  const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

  // How long WebCC.start may take before the control falls back to the query string.
  const WEBCC_TIMEOUT_MS = 10000;

  function defaults() {
    const values = {};
    for (const [name, [, value]] of Object.entries(PROPERTIES)) values[name] = value;
    return values;
  }

  // A value as its property's type: WinCC delivers typed values, a query string only text.
  function coerce(name, raw) {
    const [type, fallback] = PROPERTIES[name];
    if (raw === undefined || raw === null) return fallback;
    if (type === "string") return String(raw);
    if (typeof raw === "string" && raw.trim() === "") return fallback;
    if (type === "boolean") {
      if (typeof raw === "boolean") return raw;
      if (typeof raw === "number") return raw !== 0;
      return /^(true|1|yes|on)$/i.test(String(raw).trim());
    }
    const n = Number(raw);
    return Number.isFinite(n) ? n : fallback;
  }

  // Inside WinCC Unified: Siemens' webcc.min.js (packed by scripts/build-cwc.sh --webcc)
  // defines WebCC. The contract names the manifest's properties with their defaults; values
  // arrive through WebCC.Properties and onPropertyChanged, and assigning WebCC.Properties.x
  // writes the property (and a tag bound to it with write access) back.
  class WinccHost {
    constructor() {
      this.kind = "webcc";
    }

    // Calls onReady(values) once connected, or onReady(null) when the runtime did not answer.
    start(onReady, onChange) {
      const contract = { methods: {}, events: [], properties: defaults() };
      window.WebCC.start(
        (ok) => {
          if (!ok) return onReady(null);
          const values = {};
          for (const name of Object.keys(PROPERTIES)) values[name] = coerce(name, window.WebCC.Properties[name]);
          window.WebCC.onPropertyChanged.subscribe((change) => {
            if (change && has(PROPERTIES, change.key)) onChange(change.key, coerce(change.key, change.value));
          });
          onReady(values);
        },
        contract,
        [],
        WEBCC_TIMEOUT_MS,
      );
    }

    write(name, value) {
      window.WebCC.Properties[name] = value;
    }
  }

  // A plain browser (tests, commissioning without WinCC): properties from the query string
  // (?camera_stream_url=...&enable_livestream=true), changed with
  // window.panelcamSetProperty(name, value); what the control writes back is in
  // window.panelcamStatus and in data-status-* attributes of <html>.
  class BrowserHost {
    constructor() {
      this.kind = "browser";
    }

    start(onReady, onChange) {
      const values = defaults();
      const unknown = [];
      for (const [name, raw] of new URLSearchParams(location.search)) {
        if (has(PROPERTIES, name)) values[name] = coerce(name, raw);
        else unknown.push(name);
      }
      window.panelcamStatus = {};
      for (const name of Object.keys(PROPERTIES).filter((n) => n.startsWith("status_"))) this.write(name, values[name]);
      window.panelcamSetProperty = (name, value) => {
        if (!has(PROPERTIES, name)) throw new Error("VideoPlayer has no property " + name);
        onChange(name, coerce(name, value));
      };
      onReady(values, unknown);
    }

    write(name, value) {
      if (name.startsWith("status_")) {
        window.panelcamStatus[name] = value;
        document.documentElement.setAttribute("data-" + name.replace(/_/g, "-"), String(value));
      }
    }
  }

  // Starts the host the page runs in: WinCC's when WebCC is there and answers, else the browser.
  // onReady(host, values, notes) gets the initial values; onChange(name, value) every change.
  function connectHost(onReady, onChange) {
    const browser = (notes) => {
      const host = new BrowserHost();
      host.start((values, unknown) => {
        if (unknown.length) notes.push("unknown query parameters ignored: " + unknown.join(", "));
        onReady(host, values, notes);
      }, onChange);
    };
    if (!window.WebCC || typeof window.WebCC.start !== "function") return browser([]);
    const host = new WinccHost();
    host.start((values) => {
      if (values) return onReady(host, values, []);
      browser(["WebCC did not connect (not inside WinCC Unified?): properties come from the URL"]);
    }, onChange);
  }

  cwc.PROPERTIES = PROPERTIES;
  cwc.coerce = coerce;
  cwc.connectHost = connectHost;
})((window.PanelcamCwc = window.PanelcamCwc || {}));
