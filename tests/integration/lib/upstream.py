#!/usr/bin/env python3
"""A recording HTTP/1.1 upstream for tests/integration/gateway.sh.

    python3 upstream.py PORT RECORD_FILE [--sleep SECONDS]

Listens on 127.0.0.1:PORT (never another address) with the standard library only.
Every request it reads appends one JSON line to RECORD_FILE:

    {"method": "GET", "path": "/x", "version": "HTTP/1.1",
     "headers": [["Host", "..."], ...],            # as received, in order, duplicates kept
     "body_len": 0, "body_sha256": "e3b0...",      # of the decoded body
     "chunked": false, "trailers": [],             # trailer fields of a chunked body
     "conn": 3, "seq": 7}                          # conn: per TCP connection, seq: global

and answers 200 with a small JSON body echoing the same fields (Content-Length set, so
that the gateway can keep the connection). What it cannot read (a malformed request
line or head, a bad chunk size, a body cut short) is recorded too, as
{"error": "...", ...}, so that "the record file did not grow" really means that
nothing reached the upstream. Such a connection is closed; the server goes on.

Paths:
    /sleep/S     sleeps S seconds (at most 60) before answering (504 and drain tests);
    /sleep       sleeps --sleep SECONDS (default 5)
    /bytes/N     answers N bytes: bytes 0..255 repeated (a large response)
    anything     answered at once with the JSON echo
"""

import hashlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024 * 1024
PATTERN = bytes(range(256)) * 16  # what /bytes/N answers, repeated and cut to N bytes

_lock = threading.Lock()
_seq = 0
_conn_seq = 0


def record(path, obj):
    global _seq
    with _lock:
        _seq += 1
        obj["seq"] = _seq
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj, sort_keys=True) + "\n")
            f.flush()
    return obj


class BodyError(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pqmtls-test-upstream/1"
    sys_version = ""
    timeout = 30  # a connection that sends nothing for this long is closed

    def setup(self):
        global _conn_seq
        super().setup()
        with _lock:
            _conn_seq += 1
            self.conn_id = _conn_seq

    def log_message(self, fmt, *args):  # quiet: the record file says what happened
        pass

    # BaseHTTPRequestHandler calls send_error for a request line or head it refuses
    # (bad version, line too long, too many headers...): record it before answering.
    def send_error(self, code, message=None, explain=None):
        record(self.server.record_file, {
            "error": "unparsable request: %s %s" % (code, message or ""),
            "requestline": getattr(self, "raw_requestline", b"").decode("latin-1", "replace"),
            "conn": getattr(self, "conn_id", 0),
        })
        try:
            super().send_error(code, message, explain)
        except OSError:
            pass
        self.close_connection = True

    # ---- body reading ---------------------------------------------------------
    def _readline(self):
        line = self.rfile.readline(65537)
        if not line.endswith(b"\n"):
            raise BodyError("connection closed (or line too long) inside a chunked body")
        return line

    def _read_exact(self, n):
        data = self.rfile.read(n)
        if len(data) != n:
            raise BodyError("body cut short: %d of %d bytes" % (len(data), n))
        return data

    def _read_chunked(self, h):
        """Decodes a chunked body itself (BaseHTTPRequestHandler does not)."""
        total = 0
        while True:
            line = self._readline().rstrip(b"\r\n")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BodyError("bad chunk size %r" % size_text[:40])
            if size < 0 or total + size > MAX_BODY:
                raise BodyError("chunk size out of range")
            if size == 0:
                break
            h.update(self._read_exact(size))
            total += size
            if self._read_exact(2) != b"\r\n":
                raise BodyError("chunk data not followed by CRLF")
        while True:  # trailer fields: recorded, so that a forwarded one shows
            line = self._readline()
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            self.trailers.append([name, value.strip()])
        return total

    def _read_body(self, h):
        te = ",".join(v for k, v in self.headers.items() if k.lower() == "transfer-encoding")
        cls = [v for k, v in self.headers.items() if k.lower() == "content-length"]
        if te:
            if te.strip().lower() != "chunked":
                raise BodyError("unsupported transfer-encoding %r" % te)
            return True, self._read_chunked(h)
        if len(cls) > 1:
            raise BodyError("several Content-Length fields")
        if cls:
            try:
                n = int(cls[0].strip())
            except ValueError:
                raise BodyError("bad Content-Length %r" % cls[0])
            if n < 0 or n > MAX_BODY:
                raise BodyError("Content-Length out of range")
            left = n
            while left > 0:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    raise BodyError("body cut short: %d of %d bytes" % (n - left, n))
                h.update(data)
                left -= len(data)
            return False, n
        return False, 0

    # ---- the one handler for every method --------------------------------------
    def _handle(self):
        rec = {
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "conn": self.conn_id,
        }
        h = hashlib.sha256()
        self.trailers = []
        try:
            rec["chunked"], rec["body_len"] = self._read_body(h)
            rec["body_sha256"] = h.hexdigest()
            rec["trailers"] = self.trailers
        except (BodyError, OSError, ValueError) as e:
            rec["error"] = str(e)
            record(self.server.record_file, rec)
            self.close_connection = True
            return
        rec = record(self.server.record_file, rec)
        if self.path.startswith("/sleep"):  # /sleep/SECONDS, or --sleep's
            try:
                secs = float(self.path.split("/")[2].split("?")[0])
            except (IndexError, ValueError):
                secs = self.server.sleep_s
            time.sleep(min(max(secs, 0.0), 60.0))
        if self.path.startswith("/bytes/"):  # /bytes/N: N bytes of a known pattern
            try:
                n = min(int(self.path[len("/bytes/"):].split("?")[0]), MAX_BODY)
            except ValueError:
                n = 0
            body = (PATTERN * (n // len(PATTERN) + 1))[:n]
            ctype = "application/octet-stream"
        else:
            body = (json.dumps({"upstream": "ok", **rec}, sort_keys=True) + "\n").encode()
            ctype = "application/json"
        try:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Upstream-Seq", str(rec["seq"]))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:  # the gateway gave up on us (504): nothing to answer to
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET

    def handle_error(self, request, client_address):
        # One bad connection must not take anything else down; keep stderr short.
        sys.stderr.write("upstream.py: error on a connection: %r\n" % (sys.exc_info()[1],))


def main(argv):
    args = list(argv[1:])
    sleep_s = 5.0
    if "--sleep" in args:
        i = args.index("--sleep")
        sleep_s = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit("usage: upstream.py PORT RECORD_FILE [--sleep SECONDS]")
    port, record_file = int(args[0]), args[1]
    open(record_file, "a").close()
    srv = Server(("127.0.0.1", port), Handler)
    srv.record_file = record_file
    srv.sleep_s = sleep_s
    sys.stderr.write("upstream.py: listening on 127.0.0.1:%d\n" % port)
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main(sys.argv)
