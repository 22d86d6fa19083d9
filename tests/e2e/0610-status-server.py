#!/usr/bin/python3
"""0610-status-server.py PORT OUT_DIR STATUS... - the e2e tests' stand-in for
a remote_write endpoint that refuses (stdlib only): the Nth POST is answered
with the Nth STATUS (the last one repeats), after reading its body (at most
8 MiB); each POST appends its status to OUT_DIR/requests, one line each, and
checks the remote write headers (a missing one is answered 415)."""
import http.server
import sys

PORT, OUT, STATUSES = int(sys.argv[1]), sys.argv[2], [int(s) for s in sys.argv[3:]]
MAX_BODY = 8 << 20
seen = 0


class Remote(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        n = int(self.headers.get("Content-Length", "0"))
        if n > MAX_BODY:
            self.send_response(413)
            self.end_headers()
            return
        self.rfile.read(n)
        status = STATUSES[min(seen, len(STATUSES) - 1)]
        seen += 1
        if (self.headers.get("Content-Encoding") != "snappy" or
                self.headers.get("Content-Type") != "application/x-protobuf" or
                self.headers.get("X-Prometheus-Remote-Write-Version") != "0.1.0"):
            status = 415
        with open(OUT + "/requests", "a") as f:
            f.write("%d\n" % status)
        self.send_response(status)
        self.send_header("Content-Length", "13")
        self.end_headers()
        self.wfile.write(b"refused: test")

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", PORT), Remote).serve_forever()
