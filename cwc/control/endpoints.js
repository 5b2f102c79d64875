// Where the camera is, and how the control talks to it.
//
// camera_stream_url is whatever URL the plant engineer was given: the stream page
// (http://panel:8080/cam1/stream), a WebSocket URL (ws://panel:8080/cam1/stream), the same
// behind WinCC's IIS rewrite (https://wincc/video/cam1/stream), a relative one
// (/video/cam1/stream), or only the server (http://panel:8080, with one camera). It is turned
// into panelcam's base URL and the camera's URL segment; every request is built from those two,
// never by appending to the given URL (the old control appended its API paths to the page URL
// and reached an HTML page instead of the API).
"use strict";
(function (cwc) {
  // Last segments that end a camera URL: /<cam>/stream, /<cam>/live, ...
  const CAMERA_ENDPOINTS = ["stream", "live", "control", "test", "snapshot"];
  // Last segments of server pages: the camera is not named then.
  const SERVER_PAGES = ["dashboard", "admin"];
  const SCHEMES = { "http:": "http:", "https:": "https:", "ws:": "http:", "wss:": "https:" };

  // Pure: the text of camera_stream_url (relative URLs against pageUrl) as
  // { base, camera, certain, whole, token }:
  // - base: panelcam's base URL (http(s), with a reverse-proxy prefix, no trailing slash);
  // - camera: the camera's URL segment, or null when the URL does not name one;
  // - certain: false when the URL could also be the server itself (http://host/video may be
  //   the camera "video" or the prefix /video): resolveCamera asks the server;
  // - whole: the URL as a base, for that other reading;
  // - token: a ?token= the URL carried (camera_auth_token wins over it).
  function parseStreamUrl(text, pageUrl) {
    let t = String(text || "").trim();
    if (!t) throw new Error("camera_stream_url is empty");
    // "panel:8080/cam1/stream" has no scheme; a leading "/" is relative to the page (same origin).
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(t) && !t.startsWith("/")) t = "http://" + t;
    let url;
    try {
      url = new URL(t, pageUrl);
    } catch (e) {
      throw new Error("camera_stream_url is not a URL: " + text);
    }
    const scheme = SCHEMES[url.protocol];
    if (!scheme) throw new Error(`camera_stream_url must be http(s):// or ws(s)://, not ${url.protocol}//`);
    const segments = url.pathname.split("/").filter((s) => s !== "");
    const origin = scheme + "//" + url.host;
    const baseOf = (n) => origin + segments.slice(0, n).map((s) => "/" + s).join("");
    const n = segments.length;
    const last = segments[n - 1];
    const control = segments.indexOf("control", 1);
    let camera = null;
    let baseLength = n;
    let certain = true;
    if (n >= 2 && CAMERA_ENDPOINTS.includes(last)) {
      [camera, baseLength] = [segments[n - 2], n - 2];
    } else if (n >= 3 && segments[n - 2] === "hls") {
      [camera, baseLength] = [segments[n - 3], n - 3]; // /<cam>/hls/live.m3u8
    } else if (control >= 1) {
      [camera, baseLength] = [segments[control - 1], control - 1]; // /<cam>/control/recordings
    } else if (n >= 1 && SERVER_PAGES.includes(last)) {
      baseLength = n - 1;
    } else if (n >= 1) {
      [camera, baseLength, certain] = [last, n - 1, false];
    }
    return {
      base: baseOf(baseLength),
      camera,
      certain,
      whole: baseOf(n),
      token: url.searchParams.get("token") || "",
    };
  }

  // The cameras panelcam lists at `base` (/api/cameras is public), or null when no panelcam
  // answers there or the page may not ask (a Comfort Panel refuses fetch).
  async function cameraList(base) {
    try {
      const r = await fetch(base + "/api/cameras", { cache: "no-store" });
      if (!r.ok) return null;
      const body = await r.json();
      return Array.isArray(body.data) ? body.data : null;
    } catch (e) {
      return null;
    }
  }

  // { base, camera } for a parsed URL; asks the server only when the URL leaves it open.
  async function resolveCamera(parsed) {
    if (parsed.certain && parsed.camera) return { base: parsed.base, camera: parsed.camera };
    const readings = parsed.camera
      ? [{ base: parsed.base, named: parsed.camera }, { base: parsed.whole, named: null }]
      : [{ base: parsed.base, named: null }];
    for (const { base, named } of readings) {
      const list = await cameraList(base);
      if (!list) continue;
      const segment = (c) => String(c.path || "").replace(/^\/+/, "");
      if (named) {
        const found = list.find((c) => segment(c) === named) || list.find((c) => c.id === named);
        if (found) return { base, camera: segment(found) };
        continue;
      }
      if (list.length === 1) return { base, camera: segment(list[0]) };
      if (list.length === 0) throw new Error(`panelcam at ${base} has no cameras`);
      const names = list.map(segment);
      throw new Error(
        `panelcam at ${base} has ${list.length} cameras (${names.join(", ")}): ` +
          `name one in camera_stream_url, e.g. ${base}/${names[0]}/stream`,
      );
    }
    // No server could be asked: read the last segment as the camera, as most URLs mean it.
    if (parsed.camera) return { base: parsed.base, camera: parsed.camera };
    throw new Error("no panelcam answers at " + parsed.base + " (camera_stream_url)");
  }

  // One camera on one panelcam: its URLs and its REST API.
  // The token goes into WebSocket URLs as ?token= (browsers cannot set headers on a
  // WebSocket) and into HTTP requests as Authorization: Bearer (kept out of URLs and logs).
  class CameraServer {
    constructor(base, camera, token) {
      this.base = base;
      this.camera = camera;
      this.token = token || "";
    }

    get cameraUrl() {
      return this.base + "/" + this.camera;
    }

    // wss:// for https://, ws:// for http://.
    socketUrl(endpoint) {
      const query = this.token ? "?token=" + encodeURIComponent(this.token) : "";
      return this.cameraUrl.replace(/^http/, "ws") + "/" + endpoint + query;
    }

    get hlsLiveUrl() {
      return this.cameraUrl + "/hls/live.m3u8";
    }

    get hlsJsUrl() {
      return this.base + "/assets/hls.min.js";
    }

    authHeaders() {
      return this.token ? { Authorization: "Bearer " + this.token } : {};
    }

    // A request to /<cam>/control/<path>; resolves to the answer's `data`, or rejects with
    // "<status>: <the server's error>".
    async api(method, path, body) {
      const headers = this.authHeaders();
      const init = { method, headers, cache: "no-store" };
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      let r;
      try {
        r = await fetch(this.cameraUrl + "/control/" + path, init);
      } catch (e) {
        throw new Error(`${method} ${path}: ${this.cameraUrl} cannot be reached (${e.message})`);
      }
      let answer = null;
      try {
        answer = await r.json();
      } catch (e) {
        answer = null;
      }
      if (!r.ok || !answer || answer.status !== "success") {
        const why = (answer && answer.error) || r.statusText || "not a panelcam answer";
        throw new Error(`${method} ${path}: ${r.status}: ${why}`);
      }
      return answer.data;
    }

    // panelcam's version (/api/status), or null.
    async serverVersion() {
      try {
        const r = await fetch(this.base + "/api/status", { cache: "no-store" });
        return r.ok ? (await r.json()).data.version : null;
      } catch (e) {
        return null;
      }
    }
  }

  cwc.parseStreamUrl = parseStreamUrl;
  cwc.resolveCamera = resolveCamera;
  cwc.CameraServer = CameraServer;
})((window.PanelcamCwc = window.PanelcamCwc || {}));
