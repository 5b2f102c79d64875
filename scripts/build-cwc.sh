#!/usr/bin/env bash
# scripts/build-cwc.sh --webcc <path/to/webcc.min.js> [--out DIR]
# scripts/build-cwc.sh --without-webcc [--out DIR]     (tests only)
#
# Builds the WinCC Unified Custom Web Control "VideoPlayer" as DIR/{GUID}.zip, the file TIA
# Portal takes (project folder UserFiles/CustomControls/): manifest.json with the version of
# Cargo.toml, assets/logo.png, and control/ (the page, its scripts, panelcam's H.264 player
# from web/, and Siemens' control/js/webcc.min.js with its <script> tag). DIR defaults to $CARGO_TARGET_DIR/cwc.
#
# webcc.min.js is Siemens' and not redistributed with panelcam: take it from the Siemens
# application example "Integrating user-defined controls into WinCC Unified (Custom Web
# Controls)" (SIOS entry 109779176) or from a Custom Web Control of your WinCC installation
# (cwc/README.md). --without-webcc builds a package that only runs in a plain browser (its
# properties from the URL), which is what the tests need; WinCC cannot talk to it.
#
# The same sources give the same bytes: entries in a fixed order with a fixed date and
# attributes, compressed by Python's zipfile.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
readonly GUID=09A96E13-71CC-4C2F-933F-4663F5687302 # cwc/manifest.json identity.type; never change it

die() { echo "build-cwc: $*" >&2; exit 1; }

webcc='' without_webcc=0 out=''
while [ $# -gt 0 ]; do
  case $1 in
    --webcc) [ $# -ge 2 ] || die "--webcc needs the path of webcc.min.js"; webcc=$2; shift 2 ;;
    --without-webcc) without_webcc=1; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (usage: scripts/build-cwc.sh --webcc <webcc.min.js> [--out DIR])" ;;
  esac
done
if [ -z "$webcc" ] && [ $without_webcc = 0 ]; then
  die "--webcc <path/to/webcc.min.js> is required: without Siemens' webcc.min.js the control cannot talk to WinCC (where to get it: cwc/README.md; --without-webcc builds a browser-only package for tests)"
fi
[ -z "$webcc" ] || [ $without_webcc = 0 ] || die "--webcc and --without-webcc exclude each other"
if [ -n "$webcc" ]; then
  [ -f "$webcc" ] && [ -r "$webcc" ] || die "--webcc $webcc: no such readable file"
  [ -s "$webcc" ] || die "--webcc $webcc: the file is empty"
fi

version=$(sed -n '/^\[package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' Cargo.toml | head -n1)
[ -n "$version" ] || die "Cargo.toml: no version in [package]"
out=${out:-${CARGO_TARGET_DIR:-$repo/target}/cwc}
mkdir -p "$out" && out=$(cd "$out" && pwd)
zip=$out/{$GUID}.zip

python3 - "$repo/cwc" "$zip" "$version" "$GUID" "$webcc" <<'PY'
import io, json, os, sys, zipfile

src, zip_path, version, guid, webcc = sys.argv[1:]

def fail(msg):
    sys.exit(f"build-cwc: {msg}")

def read(rel):
    with open(os.path.join(src, rel), "rb") as f:
        return f.read()

def replace_once(name, data, old, new):
    if data.count(old) != 1:
        fail(f"cwc/{name}: expected exactly one {old!r} to replace")
    return data.replace(old, new)

files = {}
manifest = json.loads(read("manifest.json"))
identity = manifest["control"]["identity"]
if identity["type"] != f"guid://{guid}":
    fail(f"cwc/manifest.json: identity.type is {identity['type']}, the package GUID is {guid}")
identity["version"] = version
files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
files["assets/logo.png"] = read("assets/logo.png")
for name in sorted(os.listdir(os.path.join(src, "control"))):
    files[f"control/{name}"] = read(f"control/{name}")
# panelcam's H.264 player, shared with its own pages (web/): control/index.html loads it.
for name in ("fmp4.js", "h264-sinks.js", "h264.js"):
    files[f"control/{name}"] = read(f"../web/{name}")
files["control/videoplayer.js"] = replace_once(
    "control/videoplayer.js", files["control/videoplayer.js"],
    b'const VERSION = "dev";', f'const VERSION = "{version}";'.encode())
if webcc:
    with open(webcc, "rb") as f:
        files["control/js/webcc.min.js"] = f.read()
    files["control/index.html"] = replace_once(
        "control/index.html", files["control/index.html"],
        b"<!-- webcc.min.js: scripts/build-cwc.sh --webcc puts Siemens' script here -->",
        b'<script src="./js/webcc.min.js"></script>')

# Folder entries first, then files, all sorted; forward slashes (TIA Portal refuses
# backslashes), one fixed date, MS-DOS attributes, so the bytes depend on the content only.
dirs = sorted({name.rsplit("/", 1)[0] + "/" for name in files if "/" in name})
tmp = zip_path + ".tmp"
with zipfile.ZipFile(tmp, "w") as z:
    for name in dirs + sorted(files):
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 0
        if name.endswith("/"):
            info.external_attr = 0x10
            z.writestr(info, b"")
        else:
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name], compresslevel=9)
os.replace(tmp, zip_path)
PY

if [ -n "$webcc" ]; then
  echo "build-cwc: $zip (VideoPlayer $version, with $(basename "$webcc"))"
else
  echo "build-cwc: $zip (VideoPlayer $version, WITHOUT webcc.min.js: browser only, for tests)"
fi
