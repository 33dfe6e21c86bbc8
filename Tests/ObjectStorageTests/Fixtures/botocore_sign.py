"""Signs requests with botocore's S3 SigV4 signer: the independent reference for SigV4Tests.

Reads a JSON list of requests on stdin and writes a JSON list of {signature, canonical_request} on stdout.
Paths are percent-encoded here with Python's own quote(), not taken from the Swift side.
"""
import json
import sys
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(case):
    path = "/" + case["bucket"] + "/" + case["key"] if case["bucket"] else "/" + case["key"]
    url = "http://" + case["host"] + quote(path, safe="/~")
    headers = {name: value for name, value in case["headers"]}
    headers["X-Amz-Date"] = case["timestamp"]
    headers["X-Amz-Content-SHA256"] = case["payload_hash"]
    if case.get("token"):
        headers["X-Amz-Security-Token"] = case["token"]
    request = AWSRequest(method=case["method"], url=url, headers=headers, params=dict(case["query"]))
    request.context["timestamp"] = case["timestamp"]
    auth = S3SigV4Auth(Credentials(case["access_key"], case["secret_key"], case.get("token")), "s3", case["region"])
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    return {"signature": auth.signature(string_to_sign, request), "canonical_request": canonical}


json.dump([sign(case) for case in json.load(sys.stdin)], sys.stdout)
