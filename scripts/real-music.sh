#!/bin/sh
# Assemble a corpus of freely licensed REAL recordings (game soundtracks and nature
# ambience loops from Debian's archive) for the benchmarks in bench/. setlist's own tests
# use audio it synthesises; this corpus is music nobody on the project made, so the
# benchmarks can judge joins, silences and intensity against an outside reference.
#
#   scripts/real-music.sh [DEST]   (default ${XDG_CACHE_HOME:-$HOME/.cache}/setlist/real-music)
#
# Needs apt-get (with current lists: apt-get update), dpkg-deb, ffprobe (ffmpeg) and
# python3. Nothing is installed: each package is fetched with `apt-get download` and
# unpacked with `dpkg-deb -x` into a temporary folder; only its audio files are copied to
# DEST/<package>/... Idempotent: a package already copied is skipped, and DEST/READY
# (track count and hours) is written last, so other tools can wait for it.
# DEST/MANIFEST.tsv names every file with its package, version, licence and duration.
set -eu

DEST=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/setlist/real-music}
# package:what to take (a Python regex on the path inside the unpacked package)
PACKAGES="
wesnoth-1.16-music:/music/[^/]+\.ogg$
nexuiz-music:/cdtracks/[^/]+\.ogg$
hyperrogue-music:/music/[^/]+\.ogg$
planetblupi-music-ogg:/music/[^/]+\.ogg$
drascula-music:/audio/[^/]+\.ogg$
asc-music:/music/[^/]+\.mp3$
colobot-common-sounds:/music/[^/]+\.ogg$
singularity-music:/music/.+\.ogg$
openclonk-data:/Music\.ocg/[^/]+\.ogg$
warzone2100-music:/music/.+\.opus$
megaglest-data:(/tilesets/[^/]+/sounds/|/music/)[^/]+\.(ogg|wav)$
"
MIN_SECONDS=30

fail() {
    echo "real-music: $*" >&2
    exit 1
}

if [ -f "$DEST/READY" ] && [ -f "$DEST/MANIFEST.tsv" ]; then
    echo "real-music: corpus ready at $DEST ($(cat "$DEST/READY"))"
    exit 0
fi
for tool in apt-get dpkg-deb ffprobe python3; do
    command -v "$tool" >/dev/null 2>&1 ||
        fail "$tool not found (ffprobe comes with ffmpeg: scripts/system-deps.sh installs it)"
done
mkdir -p "$DEST" || fail "cannot create $DEST"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/setlist-real-music.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

# Copy one unpacked package's audio into DEST/<pkg>.partial, then rename: a package
# folder exists only when complete. Writes DEST/<pkg>/.manifest.tsv.
collect() {
    python3 - "$@" <<'PY'
import fnmatch, json, os, re, shutil, subprocess, sys, zipfile
from pathlib import Path

pkg, pattern, tree, out, version, min_s = sys.argv[1:7]
tree, out, min_s = Path(tree), Path(out), float(min_s)
rx = re.compile(pattern)

# Licences written in prose (not DEP-5) copyright files, as read in those files.
PROSE = {
    "nexuiz-music": "GPL-2+",
    "wesnoth-1.16-music": "GPL-2+",
    "singularity-music": "CC-BY-SA-3.0",
    "openclonk-data": "CC-BY-3.0 (game content: CC-BY-3.0 or CC0)",
}

def dep5(text):
    """(pattern list, licence) per Files stanza of a machine-readable copyright file."""
    stanzas, cur, key = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
        elif line[0] in " \t" and key:
            cur[key] += " " + line.strip()
        elif ":" in line:
            key, _, val = line.partition(":")
            key = key.strip().lower()
            cur[key] = val.strip()
    return [(s["files"].split(), s.get("license", "").split("\n")[0].strip())
            for s in stanzas if "files" in s]

def licence(path, rules):
    """The last DEP-5 stanza whose pattern matches a tail of the installed path wins."""
    parts = path.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    found = None
    for pats, lic in rules:
        if any(fnmatch.fnmatchcase(t, p) for p in pats for t in tails):
            found = lic
    return found

copyright = next(iter(sorted(tree.glob("usr/share/doc/*/copyright"))), None)
if copyright is None:
    sys.exit(f"real-music: {pkg}: no copyright file in the package")
text = copyright.read_text(errors="replace")
rules = dep5(text) if text.startswith("Format:") else []

# Audio inside zip archives (Quake-style .pk3) is unpacked next to it first.
for pk3 in list(tree.rglob("*.pk3")):
    with zipfile.ZipFile(pk3) as z:
        z.extractall(pk3.with_suffix(""))

def probe(f):
    r = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:format_tags=title",
         "-of", "json", str(f)], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    fmt = json.loads(r.stdout).get("format", {})
    tags = {k.lower(): v for k, v in fmt.get("tags", {}).items()}
    try:
        return float(fmt["duration"]), tags.get("title", "").strip()
    except (KeyError, ValueError):
        return None

def title_of(rel, tag):
    if tag:
        return tag
    m = re.search(r"/tilesets/([^/]+)/sounds/([^/]+)\.\w+$", "/" + rel)
    if m:  # ambience loops are named day/night/rain: say whose
        return f"{m.group(1).replace('_', ' ')} {m.group(2).replace('_', ' ')} (ambience)"
    return re.sub(r"[_]+", " ", Path(rel).stem)

partial = out.with_name(out.name + ".partial")
shutil.rmtree(partial, ignore_errors=True)
rows, skipped = [], []
for f in sorted(p for p in tree.rglob("*") if p.is_file()):
    inside = f.relative_to(tree).as_posix()
    if not rx.search("/" + inside):
        continue
    rel = re.sub(r"^usr/share/(games/)?", "", inside)
    info = probe(f)
    if info is None:
        skipped.append(f"{rel}\tunreadable by ffprobe")
        continue
    dur, tag = info
    if dur < min_s:
        skipped.append(f"{rel}\tshorter than {min_s:.0f} s ({dur:.1f} s)")
        continue
    lic = licence(inside, rules) if rules else PROSE.get(pkg)
    if not lic:
        sys.exit(f"real-music: {pkg}: no licence found for {inside} in {copyright.name}")
    target = partial / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f, target)
    clean = lambda s: re.sub(r"[\t\r\n]+", " ", s)
    rows.append("\t".join([f"{pkg}/{rel}", pkg, version, clean(lic), clean(title_of(rel, tag)),
                           f"{dur:.2f}"]))
if not rows:
    sys.exit(f"real-music: {pkg}: no audio matched {pattern}")
(partial / ".manifest.tsv").write_text("\n".join(rows) + "\n")
(partial / ".skipped.tsv").write_text("".join(s + "\n" for s in skipped))
shutil.rmtree(out, ignore_errors=True)
partial.rename(out)
print(f"real-music: {pkg} {version}: {len(rows)} files ({sum(float(r.rsplit(chr(9), 1)[1]) for r in rows) / 60:.0f} min), {len(skipped)} skipped")
PY
}

for spec in $PACKAGES; do
    pkg=${spec%%:*}
    pattern=${spec#*:}
    [ -f "$DEST/$pkg/.manifest.tsv" ] && continue
    dir="$WORK/$pkg"
    mkdir -p "$dir/deb" "$dir/tree"
    if ! (cd "$dir/deb" && apt-get download -q "$pkg" >"$dir/log" 2>&1); then
        fail "$pkg: apt-get download failed: $(grep -m1 -E '^E:' "$dir/log" || tail -n1 "$dir/log") (run 'apt-get update' first?)"
    fi
    deb=$(ls "$dir"/deb/*.deb)
    version=$(dpkg-deb -f "$deb" Version)
    dpkg-deb -x "$deb" "$dir/tree" || fail "$pkg: dpkg-deb -x failed on $deb"
    rm -f "$deb"
    collect "$pkg" "$pattern" "$dir/tree" "$DEST/$pkg" "$version" "$MIN_SECONDS" || exit 1
    rm -rf "$dir"
done

python3 - "$DEST" <<'PY'
import os, sys
from pathlib import Path

dest = Path(sys.argv[1])
head = "path\tpackage\tversion\tlicense\ttitle\tduration_s\n"
rows = []
for m in sorted(dest.glob("*/.manifest.tsv")):
    rows += [r for r in m.read_text().splitlines() if r]
tmp = dest / "MANIFEST.tsv.tmp"
tmp.write_text(head + "".join(r + "\n" for r in rows))
os.replace(tmp, dest / "MANIFEST.tsv")
hours = sum(float(r.rsplit("\t", 1)[1]) for r in rows) / 3600
if len(rows) < 60 or hours < 3:
    sys.exit(f"real-music: only {len(rows)} tracks, {hours:.1f} h (need 60 and 3 h)")
ready = dest / "READY.tmp"
ready.write_text(f"{len(rows)} tracks {hours:.2f} hours\n")
os.replace(ready, dest / "READY")
print(f"real-music: corpus ready at {dest} ({len(rows)} tracks, {hours:.2f} hours)")
PY
