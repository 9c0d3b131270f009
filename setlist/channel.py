"""The local control channel: drive a running session from a second terminal or a browser.

A small HTTP server on the loopback interface only (127.0.0.1), guarded by a random token
that is written, readable by the owner alone (mode 0600), next to the session log and
printed at start. It speaks the same commands as the keyboard (`setlist.controls`):

    GET  /status             the Status snapshot as JSON
    POST /command            {"command": "extend 5"} or the plain text "extend 5"
    GET  /                   a page of big buttons (works on a phone's browser)

The token goes in `Authorization: Bearer TOKEN` or `?token=TOKEN`. A command answers 200
with the status once the conductor has applied it (or after a short wait), 400 with a
one-line error for a command it cannot parse, 401 without a valid token.

The client half (`send_command`, `fetch_status`, `find_endpoint`) is what
`setlist control` uses.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from setlist.controls import Action, CommandError, Status, TrackInfo, parse_command
from setlist.errors import PlaybackError
from setlist.fsutil import atomic_write_text
from setlist.liveview import SessionControl

HOST = "127.0.0.1"
#: Largest request body accepted; a command is a few words.
MAX_BODY = 4096
#: How long a command request waits for the conductor to show the command's effect.
SETTLE = 0.25
#: ... and how long after the first change it waits (a bit more than one 40 ms tick).
AFTER_CHANGE = 0.05
ENV_RUNTIME = "XDG_RUNTIME_DIR"


def control_file_for(log_path: Path) -> Path:
    """`NAME.session.jsonl` → `NAME.session.control.json`, beside the log."""
    name = log_path.name
    base = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    return log_path.with_name(base + ".control.json")


def pointer_file() -> Path | None:
    """The per-user 'current session' pointer, so `setlist control skip` needs no options.

    Lives in the user's runtime folder (`$XDG_RUNTIME_DIR`, private to the user), or
    nowhere if there is none.
    """
    runtime = os.environ.get(ENV_RUNTIME)
    if not runtime:
        return None
    return Path(runtime) / "setlist" / "control.json"


def _signature(s: Status) -> tuple[object, ...]:
    return (
        s.paused,
        round(s.master_db, 3),
        round(s.target_shift, 4),
        s.fading_out,
        s.ended,
        s.now.key if s.now else None,
        s.next.key if s.next else None,
        round(s.length, 1),
        s.message,
        s.log_failing,
    )


class ControlChannel:
    """The loopback HTTP server in front of a running session (a `Conductor`)."""

    def __init__(
        self,
        session: SessionControl,
        *,
        port: int = 0,
        token: str | None = None,
        settle: float = SETTLE,
    ) -> None:
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        self.settle = settle
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._files: list[Path] = []

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"channel": self})
        try:
            self._server = ThreadingHTTPServer((HOST, self._requested_port), handler)
        except OSError as exc:
            raise PlaybackError(
                f"cannot open the control channel on {HOST}:{self._requested_port} "
                f"({exc.strerror or exc})",
                hint="choose another --port (0 picks a free one) or use --no-channel",
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="control-channel",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and remove the token files this channel wrote."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for path in self._files:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text("utf-8")).get("token") == self.token:
                    path.unlink()
        self._files = []

    def __enter__(self) -> ControlChannel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the channel is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def page_url(self) -> str:
        return f"{self.url}/?token={self.token}"

    def write_control_file(self, path: Path, *, log: Path | None = None) -> Path:
        """Write URL and token to `path` (mode 0600), and the per-user pointer if any."""
        data = {
            "url": self.url,
            "token": self.token,
            "page": self.page_url,
            "pid": os.getpid(),
            "log": str(log) if log is not None else "",
        }
        text = json.dumps(data, indent=2) + "\n"
        atomic_write_text(path, text, mode=0o600)
        self._files.append(path)
        pointer = pointer_file()
        if pointer is not None:
            try:
                pointer.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                atomic_write_text(pointer, text, mode=0o600)
                self._files.append(pointer)
            except OSError:
                pass  # a convenience only: --log still finds the session
        return path

    # -- serving -----------------------------------------------------------------------
    def authorised(self, header: str | None, query_token: str | None) -> bool:
        given = ""
        if header and header.lower().startswith("bearer "):
            given = header[7:].strip()
        elif query_token:
            given = query_token
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def command(self, text: str) -> Status:
        """Parse and submit one command; the status once it shows (or after `settle`)."""
        command = parse_command(text, origin="channel")
        before = self.session.status()
        if before.ended:
            raise PlaybackError("the session has ended")
        self.session.submit(command)
        if command.action is Action.STATUS:
            return before
        deadline = time.monotonic() + self.settle
        sig = _signature(before)
        while time.monotonic() < deadline:
            time.sleep(0.01)
            if _signature(self.session.status()) != sig:
                # One more tick: a command's knock-on changes (the track a skip moved
                # to) show in the snapshot after the one that applied it.
                time.sleep(min(AFTER_CHANGE, max(0.0, deadline - time.monotonic())))
                break
        return self.session.status()


class _Handler(BaseHTTPRequestHandler):
    channel: ControlChannel
    server_version = "setlist"
    sys_version = ""
    timeout = 10.0  # a stalled client must not hold a thread for the whole session

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: stderr belongs to the live view."""

    # -- plumbing --------------------------------------------------------------------
    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if code == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="setlist"')
        self.end_headers()
        self.wfile.write(body)

    def _text(self, code: int, line: str) -> None:
        self._send(code, (line.strip() + "\n").encode("utf-8"), "text/plain; charset=utf-8")

    def _json(self, data: Mapping[str, Any]) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send(200, body, "application/json")

    def _route(self) -> tuple[str, bool]:
        parts = urllib.parse.urlsplit(self.path)
        token = urllib.parse.parse_qs(parts.query).get("token", [None])[0]
        ok = self.channel.authorised(self.headers.get("Authorization"), token)
        return parts.path.rstrip("/") or "/", ok

    # -- verbs -------------------------------------------------------------------------
    def do_GET(self) -> None:
        path, ok = self._route()
        if path not in ("/", "/status"):
            self._text(404, f"no such page {path!r}; try /status or POST /command")
            return
        if not ok:
            if path == "/":
                self._send(401, _UNAUTHORISED_PAGE, "text/html; charset=utf-8")
            else:
                self._text(401, "missing or wrong token")
            return
        if path == "/status":
            self._json(self.channel.session.status().to_dict())
        else:
            self._send(200, _PAGE, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        path, ok = self._route()
        if path != "/command":
            self._text(404, f"no such endpoint {path!r}; POST /command")
            return
        if not ok:
            self._text(401, "missing or wrong token")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._text(400, "bad Content-Length")
            return
        if length > MAX_BODY:
            self._text(413, "command too long")
            return
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            text = _command_text(raw, self.headers.get("Content-Type") or "")
            status = self.channel.command(text)
        except CommandError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            self._text(400, f"{exc.message}{hint}")
            return
        except PlaybackError as exc:
            self._text(409, exc.message)
            return
        self._json(status.to_dict())


def _command_text(raw: bytes, content_type: str) -> str:
    """The command in a request body: JSON `{"command": ...}` or plain text."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("the command is not UTF-8 text") from None
    stripped = body.strip()
    if "json" in content_type or stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CommandError(f"the body is not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or not isinstance(data.get("command"), str):
            raise CommandError('expected a JSON object like {"command": "extend 5"}')
        return str(data["command"])
    if "\n" in stripped:
        raise CommandError("one command per request")
    return stripped


# -- the client half ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a running session listens, and the token it wants."""

    url: str
    token: str


def read_control_file(path: Path) -> Endpoint:
    try:
        data = json.loads(path.read_text("utf-8"))
        return Endpoint(str(data["url"]).rstrip("/"), str(data["token"]))
    except FileNotFoundError:
        raise PlaybackError(
            f"{path}: no control file (is the session still running?)",
            hint="'setlist play' writes it next to the session log while it runs",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlaybackError(f"{path}: not a setlist control file ({exc})") from None


def find_endpoint(
    log: Path | None = None, url: str | None = None, token: str | None = None
) -> Endpoint:
    """From `--url/--token`, from the control file beside `--log`, or the current session."""
    if url or token:
        if not (url and token):
            raise PlaybackError("--url and --token go together")
        return Endpoint(url.rstrip("/"), token)
    if log is not None:
        path = log if log.name.endswith(".control.json") else control_file_for(log)
        return read_control_file(path)
    pointer = pointer_file()
    if pointer is not None and pointer.is_file():
        return read_control_file(pointer)
    raise PlaybackError(
        "no running session found",
        hint="give --log LOG (the session log 'setlist play' printed) or --url and --token",
    )


def _request(endpoint: Endpoint, path: str, body: bytes | None, timeout: float) -> dict[str, Any]:
    req = urllib.request.Request(
        endpoint.url + path,
        data=body,
        method="POST" if body is not None else "GET",
        headers={
            "Authorization": f"Bearer {endpoint.token}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return dict(json.loads(resp.read().decode("utf-8")))
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", errors="replace").strip() or exc.reason
        if exc.code == 400:
            raise CommandError(str(text)) from None
        if exc.code == 401:
            raise PlaybackError(
                "the session refused the token",
                hint="the control file is rewritten at each start; use the current one",
            ) from None
        raise PlaybackError(f"{endpoint.url}: {text}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PlaybackError(
            f"no session is listening at {endpoint.url} ({reason})",
            hint="has the session ended? 'setlist log show LOG' tells",
        ) from None


def send_command(endpoint: Endpoint, text: str, timeout: float = 5.0) -> dict[str, Any]:
    """POST one command; the status dict it answers with."""
    body = json.dumps({"command": text}).encode("utf-8")
    return _request(endpoint, "/command", body, timeout)


def fetch_status(endpoint: Endpoint, timeout: float = 5.0) -> dict[str, Any]:
    return _request(endpoint, "/status", None, timeout)


def status_from_dict(data: Mapping[str, Any]) -> Status:
    """A `Status` back from its JSON (`Status.to_dict`), for printing on the client."""

    def info(d: Any) -> TrackInfo | None:
        if not d:
            return None
        return TrackInfo(
            key=int(d["key"]),
            title=str(d["title"]),
            artist=str(d["artist"]),
            phase=str(d["phase"]),
            start=float(d["start"]),
            stop=float(d["stop"]),
            position=float(d["position"]),
        )

    change = data.get("next_change_in")
    return Status(
        session_time=float(data["session_time"]),
        length=float(data["length"]),
        paused=bool(data["paused"]),
        ended=bool(data["ended"]),
        phase=str(data["phase"]),
        phase_left=float(data["phase_left"]),
        next_phase=str(data["next_phase"]),
        now=info(data.get("now")),
        next=info(data.get("next")),
        next_change_in=None if change is None else float(change),
        master_db=float(data["master_db"]),
        target_shift=float(data["target_shift"]),
        fading_out=bool(data["fading_out"]),
        target_intensity=float(data["target_intensity"]),
        message=str(data.get("message", "")),
        log_failing=str(data.get("log_failing", "")),
    )


# -- the phone page -------------------------------------------------------------------------

_UNAUTHORISED_PAGE = b"""<!doctype html><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>setlist</title><body style="font:1.2em sans-serif;padding:1em">
<p>This page needs the session's token. Open the full address that <code>setlist play</code>
printed (it ends in <code>?token=...</code>), or read it from the session's
<code>.control.json</code> file.</p></body>
"""

_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>setlist</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;padding:.8em;background:#111;color:#eee}
#status{white-space:pre-wrap;font:1.05em ui-monospace,monospace;background:#222;
 padding:.6em;border-radius:.4em;min-height:6em}
#msg{min-height:1.4em;margin:.4em 0;color:#9cf}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:.5em}
button{font-size:1.35em;padding:.9em .3em;border:0;border-radius:.5em;background:#345;color:#fff}
button.warn{background:#733}
button:active{background:#58a}
form{display:flex;gap:.4em;margin-top:.6em}
input{flex:1;font-size:1.2em;padding:.4em}
</style></head><body>
<div id="status">connecting...</div>
<div id="msg"></div>
<div class="grid">
<button data-c="toggle">Pause / resume</button><button data-c="skip">Skip</button>
<button data-c="quieter">Quieter</button><button data-c="louder">Louder</button>
<button data-c="softer">Softer</button><button data-c="stronger">Stronger</button>
<button data-c="shorten 5">Shorten 5 min</button><button data-c="extend 5">Extend 5 min</button>
<button data-c="integration" data-confirm="Jump to integration now?">Integration</button>
<button class="warn" data-c="fade-out" data-confirm="Fade out and end the session?">
Fade out &amp; end</button>
</div>
<form id="f"><input id="cmd" placeholder="command, e.g. extend 10" autocomplete="off">
<button>Send</button></form>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const H = {"Authorization": "Bearer " + token};
const $ = (id) => document.getElementById(id);
const two = (n) => String(n).padStart(2, "0");
function clock(s) {
  s = Math.max(0, Math.round(s));
  return Math.floor(s / 3600) + ":" + two(Math.floor(s % 3600 / 60)) + ":" + two(s % 60);
}
function len(s) {
  s = Math.max(0, Math.round(s));
  return Math.floor(s / 60) + ":" + two(s % 60);
}
function show(s) {
  const l = [clock(s.session_time) + " / " + clock(s.length)
    + "  " + s.phase + " (" + len(s.phase_left) + " left)"];
  if (s.now) {
    const by = s.now.artist ? " \\u2014 " + s.now.artist : "";
    l.push("now  " + s.now.title + by + "  " + len(s.now.position));
  }
  if (s.next) {
    const t = s.next_change_in !== null ? "  in " + len(s.next_change_in) : "";
    l.push("next " + s.next.title + t);
  }
  l.push("volume " + s.master_db.toFixed(1) + " dB" + (s.paused ? "  PAUSED" : "")
    + (s.fading_out ? "  FADING OUT" : "") + (s.ended ? "  ENDED" : ""));
  if (s.log_failing) { l.push("!! " + s.log_failing); }
  if (s.message) { l.push("\\u00bb " + s.message); }
  $("status").textContent = l.join("\\n");
}
async function poll() {
  try {
    const r = await fetch("/status", {headers: H, cache: "no-store"});
    if (r.ok) { show(await r.json()); } else { $("status").textContent = await r.text(); }
  } catch (e) {
    $("status").textContent = "session not reachable";
  }
}
async function send(c) {
  const r = await fetch("/command", {method: "POST",
    headers: Object.assign({"Content-Type": "application/json"}, H),
    body: JSON.stringify({command: c})});
  if (r.ok) { $("msg").textContent = "sent: " + c; show(await r.json()); }
  else { $("msg").textContent = await r.text(); }
}
document.querySelectorAll("button[data-c]").forEach((b) => b.addEventListener("click", () => {
  const q = b.getAttribute("data-confirm");
  if (q && !confirm(q)) { return; }
  send(b.getAttribute("data-c"));
}));
$("f").addEventListener("submit", (e) => {
  e.preventDefault();
  const c = $("cmd").value.trim();
  if (c) { send(c); }
  $("cmd").value = "";
});
poll();
setInterval(poll, 1000);
</script></body></html>
"""
