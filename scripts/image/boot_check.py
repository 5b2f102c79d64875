#!/usr/bin/env python3
"""The checks of the boot test, run by scripts/image-test.sh against a booting emulated panel.

From the host: /api/status, live JPEGs over the forwarded WebSocket, a recording session
(frames in SQLite on the panel, HLS segments shipped to the host's PostgreSQL). In the guest,
through the root shell on /dev/hvc0 (scripts/image/test-overlay/): the journal's fields and
priorities, the sandbox of the running service, the RAM spool, and a clean `systemctl stop`.
Prints the measured numbers; exits 1 with the failed check named (and the journal) otherwise.
Standard library only: the host needs nothing but python3 and psql.
"""

import argparse
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
import traceback

CAMERA = "demo"
STOP_LIMIT_S = 20  # TimeoutStopSec of systemd/panelcam.service
ADMIN = "boot-test-admin-token-0123"  # server.admin_token of the test image (rootfs.sh)
FRAMES = 5


class CheckFailed(Exception):
    pass


def check(ok, what):
    if not ok:
        raise CheckFailed(what)


def log(msg):
    print(f"boot-check: {msg}", flush=True)


class Guest:
    """Commands for the guest's shell on /dev/hvc0 (qemu chardev socket)."""

    def __init__(self, path):
        self.path, self.sock, self.buf, self.n = path, None, b"", 0

    def connect(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(self.path)
                return
            except OSError:
                check(time.monotonic() < deadline, f"qemu's hook socket {self.path} did not appear in {timeout} s")
                time.sleep(0.2)

    def _read_until(self, marker, deadline):
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            check(data, "the guest shell closed its console")
            self.buf += data
        out, self.buf = self.buf.split(marker, 1)
        return out

    def run(self, cmd, timeout=60):
        """Runs CMD in the guest; returns (exit status, stdout+stderr). The marker is printed in
        two pieces so that no echo of the command could ever match it."""
        self.n += 1
        tag = f"@@END{self.n}@@"
        line = f"{{ {cmd}\n}} </dev/null 2>&1; printf '\\n%s %d\\n' '@@END{self.n}''@@' $?\n"
        self.sock.sendall(line.encode())
        deadline = time.monotonic() + timeout
        out = self._read_until(f"\n{tag} ".encode(), deadline)
        check(out is not None, f"guest command did not finish in {timeout} s: {cmd}")
        rc = self._read_until(b"\n", deadline)
        return int(rc), out.decode(errors="replace")

    def ok(self, cmd, timeout=60):
        rc, out = self.run(cmd, timeout)
        check(rc == 0, f"guest: `{cmd}` exited {rc}:\n{out}")
        return out

    def wait_shell(self, timeout):
        """The shell starts late in the boot; until then bytes sent are lost, so ask again."""
        deadline = time.monotonic() + timeout
        while True:
            self.n += 1
            self.sock.sendall(f"printf '%s\\n' '@@UP{self.n}''@@'\n".encode())
            if self._read_until(f"@@UP{self.n}@@\n".encode(), time.monotonic() + 2) is not None:
                return
            check(time.monotonic() < deadline, f"no shell on the guest's /dev/hvc0 after {timeout} s")


def http(port, method, path, body=None, timeout=10, headers=None):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def status(port):
    code, body = http(port, "GET", "/api/status")
    check(code == 200, f"/api/status answered {code}: {body[:300]!r}")
    return json.loads(body)["data"]


def camera(port):
    return next((c for c in status(port)["cameras"] if c["id"] == CAMERA), None)


def jpeg_size(data):
    """(width, height) from the first SOF marker, or None."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def ws_frames(port, path, count, timeout):
    """COUNT binary messages from a WebSocket (a minimal RFC 6455 client)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    f = s.makefile("rb")
    head = f.readline()
    check(b" 101 " in head, f"WebSocket {path}: {head!r}")
    while f.readline() not in (b"\r\n", b""):
        pass
    frames, message = [], b""
    while len(frames) < count:
        b0, b1 = f.read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", f.read(8))[0]
        payload = f.read(n)
        opcode = b0 & 0x0F
        if opcode in (2, 0):
            message += payload
            if b0 & 0x80:
                frames.append((time.monotonic(), message))
                message = b""
        check(opcode != 8, f"WebSocket {path} closed after {len(frames)} frames")
    s.close()
    return frames


def live_frames(port, timeout):
    """FRAMES whole JPEGs of the demo camera at its configured scale; time of the first."""
    frames = ws_frames(port, f"/{CAMERA}/live", FRAMES, timeout)
    for i, (_, jpeg) in enumerate(frames):
        check(jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9", f"frame {i} is not a whole JPEG")
        check(jpeg_size(jpeg) == (640, 360), f"frame {i} is {jpeg_size(jpeg)}, expected 640x360 (scale 640:-1)")
    return frames[0][0]


def wait(what, timeout, probe, interval=0.5):
    """Polls PROBE until it returns something true; fails naming WHAT and the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = last = probe()
        except (OSError, ValueError, KeyError, CheckFailed, subprocess.CalledProcessError) as e:
            value, last = None, e
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what} within {timeout} s (last: {last})")
        time.sleep(interval)


def psql(db, sql):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def show(guest, props):
    out = guest.ok(f"systemctl show panelcam -p {','.join(props)}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def checks(a, guest, numbers):
    launched = a.launched_mono
    guest.connect(30)
    # 1. The service, from the host, as a browser sees it.
    wait("demo camera streaming in /api/status", a.boot_timeout,
         lambda: (camera(a.port) or {}).get("state") == "streaming", interval=1)
    numbers["qemu start -> demo streaming in /api/status (host)"] = f"{time.monotonic() - launched:.1f} s"
    first = live_frames(a.port, 60)
    numbers["qemu start -> first live frame on the host"] = f"{first - launched:.1f} s"
    log(f"{FRAMES} live JPEGs 640x360 over ws://127.0.0.1:{a.port}/{CAMERA}/live")

    guest.wait_shell(120)
    p = show(guest, ["ActiveState", "SubState", "MainPID", "User", "NRestarts", "ActiveEnterTimestampMonotonic"])
    check((p["ActiveState"], p["SubState"]) == ("active", "running"), f"panelcam.service: {p}")
    check(p["NRestarts"] == "0", f"panelcam restarted during boot: {p}")
    numbers["kernel start -> panelcam READY (ActiveEnterTimestampMonotonic)"] = \
        f"{int(p['ActiveEnterTimestampMonotonic']) / 1e6:.1f} s"
    rc, analyze = guest.run("systemd-analyze time")
    numbers["systemd-analyze time"] = analyze.strip().splitlines()[0] if rc == 0 else f"(not finished: {analyze.strip()})"

    # 2. The sandbox, looked at from inside: user, no capabilities, seccomp, FFmpeg below it.
    pid = p["MainPID"]
    st = guest.ok(f"grep -E '^(Uid|NoNewPrivs|CapEff|CapBnd|Seccomp):' /proc/{pid}/status")
    fields = {k: v.split() for k, v in (l.split(":", 1) for l in st.splitlines() if ":" in l)}
    uid = guest.ok("id -u panelcam").strip()
    check(fields["Uid"][0] == uid, f"panelcam runs as uid {fields['Uid']}, user panelcam is {uid}")
    check(fields["NoNewPrivs"] == ["1"] and fields["CapEff"] == ["0000000000000000"]
          and fields["CapBnd"] == ["0000000000000000"] and fields["Seccomp"] == ["2"],
          f"sandbox of pid {pid}:\n{st}")
    ff = guest.ok(f"ps -ww -o user=,args= --ppid {pid}")
    check("ffmpeg" in ff and "testsrc2" in ff and all(l.split()[0] == "panelcam" for l in ff.splitlines() if l),
          f"the demo camera's FFmpeg as a child of panelcam, user panelcam:\n{ff}")
    spool = guest.ok("findmnt -n -o FSTYPE,OPTIONS /run/panelcam/spool")
    check(spool.startswith("tmpfs") and "size=65536k" in spool, f"/run/panelcam/spool: {spool}")
    wait("HLS segments of the demo camera in the RAM spool", 60,
         lambda: "m4s" in guest.ok(f"ls /run/panelcam/spool/{CAMERA} 2>/dev/null || true"), interval=2)
    log(f"pid {pid} uid {uid} (panelcam), NoNewPrivs 1, CapEff 0, seccomp filter; FFmpeg inside; spool: {spool.strip()}")

    # 3. Recording: frames into SQLite on the panel, HLS segments to the host's PostgreSQL.
    code, body = http(a.port, "POST", f"/{CAMERA}/control/recording/start", b'{"reason":"boot test"}')
    check(code == 200, f"recording start: {code} {body[:300]!r}")
    session = json.loads(body)["data"]["session_id"]
    time.sleep(10)
    code, body = http(a.port, "POST", f"/{CAMERA}/control/recording/stop")
    check(code == 200, f"recording stop: {code} {body[:300]!r}")
    code, body = http(a.port, "GET", f"/{CAMERA}/control/recordings/{session}/frames")
    check(code == 200, f"frames of session {session}: {code} {body[:300]!r}")
    frames = json.loads(body)["data"]
    n_frames = len(frames.get("frames", frames) if isinstance(frames, dict) else frames)
    check(n_frames >= 10, f"session {session} kept {n_frames} frames in 10 s: {body[:300]!r}")
    db = guest.ok("find /var/lib/panelcam/recordings -name '*.db' -printf '%u %s %p\\n'")
    check("panelcam" in db, f"SQLite files of the panel:\n{db}")
    segments = wait("HLS segments of the session in the host's PostgreSQL", 90, lambda: int(psql(
        a.database, f"SELECT count(*) FROM hls_segments WHERE camera = '{CAMERA}'")) >= 2 and psql(
        a.database, f"SELECT count(*), sum(octet_length(data)), bool_and(sha256 = encode(sha256(data), 'hex')) "
                    f"FROM hls_segments WHERE camera = '{CAMERA}'"), interval=2)
    n, size, sha_ok = segments.split("|")
    check(sha_ok == "t", f"segment checksums in PostgreSQL: {segments}")
    log(f"session {session}: {n_frames} frames in SQLite; {n} HLS segments ({size} bytes) in PostgreSQL {a.database}")

    # 3b. The admin API inside the sandbox: camera files are writable, config.json is not.
    auth = {"Authorization": "Bearer " + ADMIN}
    code, body = http(a.port, "GET", f"/api/admin/cameras/{CAMERA}", headers=auth)
    check(code == 200, f"admin GET camera: {code} {body[:300]!r}")
    doc = json.loads(body)["data"]["config"]
    doc.setdefault("mqtt", {})["publish_interval"] = 5  # not a stream setting: applied in place
    code, body = http(a.port, "PUT", f"/api/admin/cameras/{CAMERA}", json.dumps(doc).encode(), headers=auth)
    check(code == 200 and json.loads(body)["data"]["applied"]["updated_in_place"] == [CAMERA],
          f"admin PUT camera inside the sandbox: {code} {body[:300]!r}")
    owner = guest.ok(f"stat -c '%U %a' /etc/panelcam/cameras/{CAMERA}.json").strip()
    check(owner.startswith("panelcam "), f"the rewritten camera file: {owner}")
    code, body = http(a.port, "PUT", "/api/admin/config", b'{"server": {"max_viewers_per_camera": 50}}', headers=auth)
    # Refused by the sandbox: /etc/panelcam itself is not writable for the service (the kernel
    # says EACCES for the directory before ProtectSystem's read-only mount would say EROFS).
    check(code == 500 and b"the service may write camera files only" in body,
          f"config.json must stay read-only: {code} {body[:300]!r}")
    log(f"admin API: camera file rewritten by panelcam ({owner}); config.json read-only in the sandbox")

    # 4. The journal: the camera's lines carry its fields, FFmpeg's warnings rank above info.
    out = guest.ok(f"journalctl -u panelcam CAMERA={CAMERA} -o json --no-pager")
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    check(lines, f"journalctl -u panelcam CAMERA={CAMERA}: no lines")
    # A field given twice comes back as a list: one value each is what `COMPONENT=x` matches.
    bad = [l for l in lines if not (l.get("CAMERA") == CAMERA and isinstance(l.get("PRIORITY"), str)
                                    and isinstance(l.get("COMPONENT"), str))]
    check(not bad, f"{len(bad)} of {len(lines)} lines lack one CAMERA, COMPONENT or PRIORITY, e.g. " + "; ".join(
        f"{l.get('MESSAGE', '')[:80]!r} CAMERA={l.get('CAMERA')} COMPONENT={l.get('COMPONENT')} "
        f"PRIORITY={l.get('PRIORITY')}" for l in bad[:3]))
    # tracing-journald maps warn to 4 (warning) and info to 5 (notice).
    warnings = [l for l in lines if int(l["PRIORITY"]) <= 4]
    infos = [l for l in lines if l["MESSAGE"] == "FFmpeg started"]
    check(warnings and infos, f"expected warning lines (FFmpeg's stderr) and 'FFmpeg started', "
          f"got priorities {sorted({l['PRIORITY'] for l in lines})}")
    check(all(int(w["PRIORITY"]) < int(i["PRIORITY"]) for w in warnings for i in infos),
          f"warnings rank above info: {warnings[0]['PRIORITY']} vs {infos[0]['PRIORITY']}")
    check(all(int(l["PRIORITY"]) == 4 for l in lines if str(l["MESSAGE"]).startswith("ffmpeg: ")),
          "FFmpeg's stderr lines are warnings")
    prio = {int(l["PRIORITY"]): l["MESSAGE"][:50] for l in infos + warnings}
    components = sorted({l["COMPONENT"] for l in lines})
    log(f"journal: {len(lines)} lines CAMERA={CAMERA}, components {components}, priorities {sorted(prio)} "
        f"(e.g. {prio})")

    # 5. A clean number for a start: restart while booted, then the first frame on the host.
    t0 = time.monotonic()
    guest.ok("systemctl restart panelcam", timeout=90)
    t1 = time.monotonic()
    first = wait("a live frame after the restart", 60, lambda: live_frames(a.port, 30))
    numbers["systemctl restart -> READY (returns)"] = f"{t1 - t0:.1f} s"
    numbers["systemctl restart -> first live frame on the host"] = f"{first - t0:.1f} s"

    # 6. Stop: within TimeoutStopSec, no FFmpeg left, inactive (not failed), spool unmounted.
    out = guest.ok("a=$(cut -d' ' -f1 /proc/uptime); systemctl stop panelcam; b=$(cut -d' ' -f1 /proc/uptime);"
                   " echo \"$a $b\"", timeout=STOP_LIMIT_S + 30)
    a0, b0 = map(float, out.split())
    numbers["systemctl stop panelcam"] = f"{b0 - a0:.2f} s (limit {STOP_LIMIT_S} s)"
    check(b0 - a0 < STOP_LIMIT_S, f"systemctl stop took {b0 - a0:.1f} s")
    p = show(guest, ["ActiveState", "Result"])
    check(p == {"ActiveState": "inactive", "Result": "success"}, f"after stop: {p}")
    rc, left = guest.run("pgrep -a -x ffmpeg")
    check(rc == 1, f"FFmpeg left after the stop:\n{left}")
    rc, mounted = guest.run("findmnt /run/panelcam/spool")
    check(rc == 1, f"the spool is still mounted after the stop:\n{mounted}")
    log("stopped: inactive (success), no FFmpeg, spool unmounted")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--hook", required=True, help="qemu's unix socket of /dev/hvc0")
    ap.add_argument("--database", required=True)
    ap.add_argument("--launched-mono", type=float, required=True, help="time.monotonic() at qemu's start")
    ap.add_argument("--boot-timeout", type=float, default=300)
    a = ap.parse_args()
    numbers, guest = {}, Guest(a.hook)
    try:
        checks(a, guest, numbers)
        ok = True
    except Exception as e:  # a bug here too: still show the guest's side and power it off
        if not isinstance(e, (CheckFailed, OSError, subprocess.CalledProcessError)):
            traceback.print_exc()
        print(f"boot-check: FAILED: {e}", file=sys.stderr, flush=True)
        ok = False
        try:
            guest.wait_shell(20)
            print("---- journalctl -u panelcam (guest, last 80 lines)", flush=True)
            print(guest.run("journalctl -u panelcam --no-pager -n 80", 30)[1], flush=True)
            print("---- systemctl status panelcam", flush=True)
            print(guest.run("systemctl status panelcam --no-pager -l", 30)[1], flush=True)
        except Exception as e2:  # the guest may be what failed
            print(f"boot-check: (no journal from the guest: {e2})", flush=True)
    for k, v in numbers.items():
        print(f"boot-check: {k}: {v}", flush=True)
    if guest.sock:
        try:
            guest.sock.sendall(b"systemctl poweroff\n")
        except OSError:
            pass
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
