"""A webhook receiver for the integration tests: verifies what s3-canary sends with the reference libraries.

    python3 webhook_receiver.py PORT LOG_FILE SECRET

Every request is appended to LOG_FILE as one JSON line: the path, headers, body, the status answered, and the
verdicts of the `standardwebhooks` verifier, the X-Webhook-Signature HMAC, the `cloudevents` SDK (for CloudEvents
bodies) and `jsonschema` (for bodies whose path names a schema in schemas/). The first path segment picks the
behaviour:

    /ok/...            200
    /fail-twice/...    500 for the first two attempts of each webhook-id, then 200
    /gone/...          410
    /slow/...          sleeps 10 s, then 200
    /retry-after/...   503 with Retry-After: 1 on the first attempt of each id, then 200
    /bad/...           400
"""
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
from cloudevents.v1.http import from_http
from standardwebhooks.webhooks import Webhook

PORT, LOG, SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webhooks", "schemas")
lock = threading.Lock()
attempts = {}


def schema_for(path):
    for name in ("alertmanager", "pagerduty", "slack", "cloudevents"):
        if f"/{name}" in path:
            with open(os.path.join(SCHEMAS, f"{name}.json")) as handle:
                return json.load(handle)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"path": self.path, "headers": headers, "body": body.decode("utf-8", "replace"), "time": time.time()}
        try:
            Webhook(SECRET).verify(body, {k: headers.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")})
            record["standard_webhooks_ok"] = True
        except Exception as error:  # noqa: BLE001 - any failure is a verdict
            record["standard_webhooks_ok"] = False
            record["standard_webhooks_error"] = str(error)
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        record["hmac_ok"] = hmac.compare_digest(expected, headers.get("x-webhook-signature", ""))
        if headers.get("content-type", "").startswith("application/cloudevents+json"):
            try:
                event = from_http(dict(self.headers), body)
                record["cloudevent_ok"] = True
                record["cloudevent_type"] = event["type"]
                record["cloudevent_id"] = event["id"]
            except Exception as error:  # noqa: BLE001
                record["cloudevent_ok"] = False
                record["cloudevent_error"] = str(error)
        schema = schema_for(self.path)
        if schema is not None:
            try:
                jsonschema.validate(json.loads(body), schema)
                record["schema_ok"] = True
            except Exception as error:  # noqa: BLE001
                record["schema_ok"] = False
                record["schema_error"] = str(error)[:500]

        mode = self.path.strip("/").split("/")[0]
        key = (self.path, headers.get("webhook-id"))
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            attempt = attempts[key]
        status, extra = 200, {}
        if mode == "fail-twice" and attempt <= 2:
            status = 500
        elif mode == "gone":
            status = 410
        elif mode == "bad":
            status = 400
        elif mode == "retry-after" and attempt == 1:
            status, extra = 503, {"Retry-After": "1"}
        elif mode == "slow":
            time.sleep(10)
        record["status"] = status
        record["attempt"] = attempt
        with lock:
            with open(LOG, "a") as handle:
                handle.write(json.dumps(record) + "\n")
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
