#!/usr/bin/python3
"""0480-webhook.py PORT SECRET_FILE OUT_DIR - the e2e tests' webhook
receiver (stdlib only): checks herd's signature (X-Herd-Signature:
sha256=HMAC-SHA256(secret, X-Herd-Timestamp + "." + body)) the way
docs/alert-delivery.md tells receivers to, appends each verified body as one
line to OUT_DIR/bodies.jsonl and answers 200; a bad or missing signature is
logged to OUT_DIR/bad.log and answered 401. POSTs to /reject are answered
400 (a receiver that will never take the payload)."""
import hashlib
import hmac
import http.server
import json
import sys
import time

PORT, SECRET_FILE, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(SECRET_FILE, "rb") as f:
    SECRET = f.read().rstrip(b"\r\n")
MAX_BODY = 1 << 20
MAX_SKEW_S = 300


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > MAX_BODY:
            self.send_response(413)
            self.end_headers()
            return
        body = self.rfile.read(n)
        if self.path == "/reject":
            self.send_response(400)
            self.end_headers()
            return
        ts = self.headers.get("X-Herd-Timestamp", "")
        sig = self.headers.get("X-Herd-Signature", "")
        want = "sha256=" + hmac.new(SECRET, ts.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < MAX_SKEW_S
        if not fresh or not hmac.compare_digest(sig, want):
            with open(OUT + "/bad.log", "a") as f:
                f.write("bad signature %r for %r\n" % (sig, body[:200]))
            self.send_response(401)
            self.end_headers()
            return
        json.loads(body)
        with open(OUT + "/bodies.jsonl", "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


http.server.HTTPServer(("127.0.0.1", PORT), Hook).serve_forever()
