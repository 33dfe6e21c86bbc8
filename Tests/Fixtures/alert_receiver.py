#!/usr/bin/env python3
"""A receiver for Alertmanager's webhook notifications: each POST is appended as one JSON line
{"path": ..., "received": <unix time>, "body": <the notification>} to the file named on the command line.

Usage: alert_receiver.py PORT FILE
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, path = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        with lock, open(path, "a") as out:
            out.write(json.dumps({"path": self.path, "received": time.time(), "body": body}) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 64


server = Server(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
