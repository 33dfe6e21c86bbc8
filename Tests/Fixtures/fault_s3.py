"""A fake S3 endpoint that answers every request with one fixed error, for fault and escaping tests.

    python3 fault_s3.py PORT STATUS CODE MESSAGE [HEADER_LOG]

With HEADER_LOG, each request's method, path and headers are appended to it as one JSON line.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

PORT, STATUS, CODE, MESSAGE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
HEADER_LOG = sys.argv[5] if len(sys.argv) > 5 else None
BODY = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{escape(CODE)}</Code><Message>{escape(MESSAGE)}</Message><RequestId>fault-1</RequestId></Error>'.encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        if HEADER_LOG:
            with open(HEADER_LOG, "a") as handle:
                handle.write(json.dumps({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(STATUS)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(BODY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(BODY)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = answer


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
