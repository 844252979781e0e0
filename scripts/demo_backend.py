#!/usr/bin/env python3
"""The demo's backend API: plain HTTP on 127.0.0.1, behind the pqmtls gateway.

    demo_backend.py PORT

GET /orders lists orders, POST /orders adds one (JSON body); every answer says who the
gateway said the caller is (the X-Client-Cert-* headers), which is all the backend knows
of TLS. Standard library only.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = [{"id": 1, "item": "quantum-safe widget", "qty": 3}]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def identity(self):
        h = self.headers
        return {
            "subject": h.get("X-Client-Cert-Subject", ""),
            "spiffe_id": h.get("X-Client-Cert-Spiffe-Id", ""),
            "verify": h.get("X-Client-Cert-Verify", ""),
        }

    def answer(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.split("?")[0] != "/orders":
            return self.answer(404, {"error": "not found"})
        self.answer(200, {"caller": self.identity(), "orders": ORDERS})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        try:
            order = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self.answer(400, {"error": "not JSON"})
        order["id"] = len(ORDERS) + 1
        ORDERS.append(order)
        self.answer(201, {"caller": self.identity(), "created": order})

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
