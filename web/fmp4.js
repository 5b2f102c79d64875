// Fragmented MP4 as panelcam's `/<cam>/video` sends it (h264.js): one moof+mdat per picture,
// read into what a decoder needs. Pure functions, no I/O.
"use strict";
(function (ns) {
  const NON_SYNC = 0x00010000; // ISO/IEC 14496-12 sample_is_non_sync_sample

  // The child boxes in bytes[start, end): [{type, body, end}] (body = first byte after the header).
  function boxes(bytes, start, end) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = [];
    let at = start;
    while (at + 8 <= end) {
      let size = view.getUint32(at);
      const type = String.fromCharCode(bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]);
      let body = at + 8;
      if (size === 1) {
        size = Number(view.getBigUint64(at + 8));
        body += 8;
      } else if (size === 0) {
        size = end - at;
      }
      if (size < body - at || at + size > end) break;
      out.push({ type, body, end: at + size });
      at += size;
    }
    return out;
  }

  // One media fragment (moof+mdat, one sample) as { time (90 kHz), duration, durationAt,
  // keyframe, data }, or null when it is not one.
  function parseFragment(buffer) {
    const bytes = new Uint8Array(buffer);
    const view = new DataView(buffer);
    const top = boxes(bytes, 0, bytes.length);
    const moofAt = top.findIndex((b) => b.type === "moof");
    const mdat = top.find((b) => b.type === "mdat");
    if (moofAt < 0 || !mdat) return null;
    const moof = top[moofAt];
    const moofStart = moof.body - 8;
    const traf = boxes(bytes, moof.body, moof.end).find((b) => b.type === "traf");
    if (!traf) return null;
    let time = 0;
    let defaults = { duration: 0, size: 0, flags: 0 };
    let sample = null;
    for (const b of boxes(bytes, traf.body, traf.end)) {
      const version = bytes[b.body];
      const flags = view.getUint32(b.body) & 0xffffff;
      let at = b.body + 8; // version, flags, then track_ID (tfhd) or sample_count (trun)
      if (b.type === "tfdt") {
        time = version === 1 ? Number(view.getBigUint64(b.body + 4)) : view.getUint32(b.body + 4);
      } else if (b.type === "tfhd") {
        if (flags & 0x1) at += 8; // base_data_offset
        if (flags & 0x2) at += 4; // sample_description_index
        if (flags & 0x8) (defaults.duration = view.getUint32(at)), (at += 4);
        if (flags & 0x10) (defaults.size = view.getUint32(at)), (at += 4);
        if (flags & 0x20) defaults.flags = view.getUint32(at);
      } else if (b.type === "trun" && view.getUint32(b.body + 4) >= 1) {
        sample = { offset: null, duration: null, durationAt: null, size: null, flags: null };
        if (flags & 0x1) (sample.offset = view.getInt32(at)), (at += 4);
        if (flags & 0x4) (sample.flags = view.getUint32(at)), (at += 4);
        if (flags & 0x100) (sample.durationAt = at), (sample.duration = view.getUint32(at)), (at += 4);
        if (flags & 0x200) (sample.size = view.getUint32(at)), (at += 4);
        if (flags & 0x400) sample.flags = view.getUint32(at);
      }
    }
    if (!sample) return null;
    const start = sample.offset !== null ? moofStart + sample.offset : mdat.body;
    const size = sample.size !== null ? sample.size : defaults.size || mdat.end - mdat.body;
    if (start < 0 || start + size > bytes.length) return null;
    const flags = sample.flags !== null ? sample.flags : defaults.flags;
    return {
      time,
      duration: sample.duration !== null ? sample.duration : defaults.duration,
      durationAt: sample.durationAt, // where the sample's own duration is, or null (tfhd's default)
      keyframe: (flags & NON_SYNC) === 0,
      data: bytes.subarray(start, start + size),
    };
  }

  function base64Bytes(text) {
    const raw = atob(text || "");
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  ns.boxes = boxes;
  ns.parseFragment = parseFragment;
  ns.base64Bytes = base64Bytes;
})((window.PanelcamH264 = window.PanelcamH264 || {}));
