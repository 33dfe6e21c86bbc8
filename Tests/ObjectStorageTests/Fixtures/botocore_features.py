"""botocore's own presigning and aws-chunked framing: the independent reference for FeatureEncodingTests.

    python3 botocore_features.py presign   < cases.json   -> [{"url": ..., "signature": ...}]
    python3 botocore_features.py chunked   < cases.json   -> [{"framed": base64}]

presign cases: {host, path, access_key, secret_key, token, region, date (epoch seconds), expires}.
chunked cases: {body: base64, algorithm: "crc32"|"sha256"|..., chunk_size}.
"""
import base64
import datetime
import io
import json
import sys
from urllib.parse import parse_qs, quote, urlsplit

import botocore.auth
from botocore import httpchecksum
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def presign(case):
    # botocore reads the clock through get_current_datetime(); pin it to the case's instant.
    instant = datetime.datetime.fromtimestamp(case["date"], datetime.timezone.utc).replace(tzinfo=None)
    botocore.auth.get_current_datetime = lambda: instant
    url = "http://" + case["host"] + quote(case["path"], safe="/~")
    request = AWSRequest(method="GET", url=url)
    credentials = Credentials(case["access_key"], case["secret_key"], case.get("token"))
    S3SigV4QueryAuth(credentials, "s3", case["region"], expires=case["expires"]).add_auth(request)
    query = parse_qs(urlsplit(request.url).query)
    return {"url": request.url, "signature": query["X-Amz-Signature"][0]}


CHECKSUMS = {
    "crc32": httpchecksum.Crc32Checksum,
    "sha1": httpchecksum.Sha1Checksum,
    "sha256": httpchecksum.Sha256Checksum,
}


def chunked(case):
    wrapper = httpchecksum.AwsChunkedWrapper(
        io.BytesIO(base64.b64decode(case["body"])),
        checksum_cls=CHECKSUMS[case["algorithm"]],
        checksum_name="x-amz-checksum-" + case["algorithm"],
        chunk_size=case["chunk_size"],
    )
    return {"framed": base64.b64encode(wrapper.read()).decode()}


mode = {"presign": presign, "chunked": chunked}[sys.argv[1]]
json.dump([mode(case) for case in json.load(sys.stdin)], sys.stdout)
