"""The boto3 side of the compatibility-verdict test: five S3 features, one verdict each, printed as one JSON object.

    python3 compat_reference.py --endpoint URL --bucket B --access-key AK --secret-key SK [--region us-east-1]
        --prefix KEYPREFIX [--ca-bundle FILE] [--part-size 5242880] [--last-part-size 1048576]
        [--checksum-algorithm crc32|crc32c|sha1|sha256] [--object-size 1024] [--max-attempts N]
        [--sdk-defaults-everywhere] [--basic]

Prints {"multipart": {...}, "checksum": {...}, "aws_chunked": {...}, "conditional": {...}, "presign": {...}}, each
{"verdict": "ok"|"unsupported"|"failing"|"corrupting", "evidence": str, "status": int|null, "code": str|null,
"request_id": str|null} describing the request that decided the verdict. The Swift prober computes the same verdicts
with its own client; the rules here and there must stay identical:

- an "unsupported answer" is HTTP 501, or S3 code NotImplemented (any status), or HTTP 400 with InvalidArgument or
  InvalidRequest; it only counts where a feature says so (the request that asks for the feature), any other error
  (other status, connection error, timeout) is "failing";
- bytes read back that differ from those written are "corrupting".

Every object and multipart upload is under --prefix and is removed before exit, whatever happens. Exit status 0
whenever the JSON was printed (an unreachable endpoint gives five "failing" verdicts), 2 for bad arguments.

With --basic it does the canary's basic cycle instead (put, head, get, get_range, copy, list, delete, each checked
as the Swift cycle checks it) and prints one outcome per operation up to the first that is not ok.

Only the aws_chunked feature uses a client with boto3's default checksum settings: since botocore 1.36 those send
every PutObject/UploadPart over https as aws-chunked with a CRC32 trailer, so a server without aws-chunked would fail
all five features at once. The other four features use request_checksum_calculation and
response_checksum_validation "when_required" (plain bodies with Content-Length, no implicit response validation), as
the Swift client does, so each verdict is about its own feature. --sdk-defaults-everywhere uses the default client
for all five, to see what plain boto3 gets.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import signal
import ssl
import sys
import traceback
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ElementTree
import zlib

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

OK, UNSUPPORTED, FAILING, CORRUPTING = "ok", "unsupported", "failing", "corrupting"
# A made-up ETag that no object has, for If-Match.
ABSENT_ETAG = '"0123456789abcdef0123456789abcdef"'


def is_unsupported_answer(status, code):
    return (status == 501 or code == "NotImplemented"
            or (status == 400 and code in ("InvalidArgument", "InvalidRequest")))


def request_id_text(request_id):
    return f"request id {request_id}" if request_id else "no request id"


def outcome(verdict, evidence, status=None, code=None, request_id=None):
    return {"verdict": verdict, "evidence": evidence, "status": status, "code": code, "request_id": request_id}


class RequestFailed(Exception):
    """A request that got an error answer (status and code known) or none at all (connection error, timeout)."""

    def __init__(self, what, status=None, code=None, request_id=None, detail=""):
        super().__init__(what)
        self.what, self.status, self.code, self.request_id, self.detail = what, status, code, request_id, detail

    def outcome(self, unsupported_counts):
        if self.status is None:
            return outcome(FAILING, f"{self.what} got no answer: {self.detail}")
        answer = f"{self.what} answered {self.status} {self.code or '(no code)'} ({request_id_text(self.request_id)})"
        if unsupported_counts and is_unsupported_answer(self.status, self.code):
            return outcome(UNSUPPORTED, answer, self.status, self.code, self.request_id)
        return outcome(FAILING, answer, self.status, self.code, self.request_id)


def request_id_of(response):
    metadata = response.get("ResponseMetadata", {})
    headers = metadata.get("HTTPHeaders", {})
    return (metadata.get("RequestId") or headers.get("x-amz-request-id") or headers.get("x-amzn-requestid")
            or response.get("ErrorBodyRequestId"))


def remember_error_body_request_id(response_dict, customized_response_dict, **_):
    """before-parse: botocore keeps only the header's request id; some servers put it only in the XML error body."""
    body = response_dict.get("body")
    if response_dict.get("status_code", 200) >= 300 and isinstance(body, bytes):
        match = re.search(rb"<RequestId>([^<]+)</RequestId>", body)
        if match:  # botocore merges this dict into the parsed answer, i.e. into ClientError.response
            customized_response_dict["ErrorBodyRequestId"] = match.group(1).decode(errors="replace")


def call(what, operation, **parameters):
    """Runs one boto3 call; any error becomes RequestFailed (FlexibleChecksumError passes through: it is corruption)."""
    try:
        return operation(**parameters)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code")
        raise RequestFailed(what, status, code, request_id_of(error.response), str(error)) from None
    except FlexibleChecksumError:
        raise
    except (BotoCoreError, OSError) as error:
        raise RequestFailed(what, detail=f"{type(error).__name__}: {error}") from None


def read_body(what, response):
    """Reads a GetObject body; the connection can still break here, and botocore validates checksums here."""
    try:
        return response["Body"].read()
    except FlexibleChecksumError:
        raise
    except (BotoCoreError, OSError) as error:
        raise RequestFailed(what, detail=f"reading the body: {type(error).__name__}: {error}") from None


def answered(what, response, extra=""):
    """The evidence sentence for a request that succeeded."""
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    return f"{what} answered {status}{extra} ({request_id_text(request_id_of(response))})"


def success_fields(response):
    return {"status": response["ResponseMetadata"]["HTTPStatusCode"], "code": None,
            "request_id": request_id_of(response)}


# -- checksums, computed here rather than by botocore (crc32c needs awscrt there, which we do not install) --------

def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def checksum_b64(algorithm, data):
    """base64 of the big-endian digest, as in x-amz-checksum-* headers."""
    if algorithm == "crc32":
        digest = zlib.crc32(data).to_bytes(4, "big")
    elif algorithm == "crc32c":
        digest = crc32c(data).to_bytes(4, "big")
    else:
        digest = hashlib.new(algorithm, data).digest()
    return base64.b64encode(digest).decode("ascii")


# Request parameter / response field of each algorithm (botocore serializes it as header x-amz-checksum-<name>).
CHECKSUM_MEMBER = {"crc32": "ChecksumCRC32", "crc32c": "ChecksumCRC32C", "sha1": "ChecksumSHA1",
                   "sha256": "ChecksumSHA256"}


class Cleanup:
    """What this run created, removed at exit whatever happened."""

    def __init__(self, s3, bucket):
        self.s3, self.bucket = s3, bucket
        self.keys = []  # every key we may have written, in order
        self.uploads = {}  # upload id -> key, until completed or aborted

    def key(self, prefix, feature):
        key = f"{prefix}{feature}-{uuid.uuid4().hex[:12]}"
        self.keys.append(key)
        return key

    def run(self, prefix):
        problems = []
        for upload_id, key in list(self.uploads.items()):
            self._abort(key, upload_id, problems)
        # A CreateMultipartUpload that timed out may have created an upload whose id we never saw: look for ours.
        try:
            listing = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
            for upload in listing.get("Uploads", []):
                if upload["Key"] in self.keys:
                    self._abort(upload["Key"], upload["UploadId"], problems)
        except Exception as error:  # noqa: BLE001 - cleanup reports and goes on
            problems.append(f"ListMultipartUploads: {error}")
        for key in self.keys:
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            except Exception as error:  # noqa: BLE001
                problems.append(f"DeleteObject {key}: {error}")
        for problem in problems:
            print(f"compat_reference: cleanup: {problem}", file=sys.stderr)

    def _abort(self, key, upload_id, problems):
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                problems.append(f"AbortMultipartUpload {key}: {error}")
        except Exception as error:  # noqa: BLE001
            problems.append(f"AbortMultipartUpload {key}: {error}")
        self.uploads.pop(upload_id, None)


# -- the five features --------------------------------------------------------------------------------------------

def multipart(s3, args, cleanup):
    key = cleanup.key(args.prefix, "multipart")
    parts = [os.urandom(args.part_size), os.urandom(args.last_part_size)]
    try:
        created = call("CreateMultipartUpload", s3.create_multipart_upload, Bucket=args.bucket, Key=key)
    except RequestFailed as failure:
        return failure.outcome(unsupported_counts=True)
    upload_id = created["UploadId"]
    cleanup.uploads[upload_id] = key
    try:
        uploaded = []
        for number, body in enumerate(parts, start=1):
            part = call(f"UploadPart {number}", s3.upload_part, Bucket=args.bucket, Key=key,
                        UploadId=upload_id, PartNumber=number, Body=body)
            uploaded.append({"PartNumber": number, "ETag": part["ETag"]})
        completed = call("CompleteMultipartUpload", s3.complete_multipart_upload, Bucket=args.bucket, Key=key,
                         UploadId=upload_id, MultipartUpload={"Parts": uploaded})
        cleanup.uploads.pop(upload_id)
        got = call("GetObject", s3.get_object, Bucket=args.bucket, Key=key)
        data = read_body("GetObject", got)
    except RequestFailed as failure:
        return failure.outcome(unsupported_counts=False)
    except FlexibleChecksumError as error:
        return outcome(CORRUPTING, f"GetObject body failed botocore's checksum validation: {error}",
                       **success_fields(got))
    written = b"".join(parts)
    if data != written:
        return outcome(CORRUPTING, answered("GetObject", got, f" with {len(data)} bytes that differ from the "
                                            f"{len(written)} written"), **success_fields(got))
    # The stored object's ETag, as the Swift check reads it; its form is evidence, never a failure (no client
    # checks it: boto3 itself just got the bytes back).
    etag = (got.get("ETag") or "").strip('"')
    form = etag_form(etag)
    note = "" if form == "<md5>-2" else f"; the ETag is of the form {form}, not <md5>-2"
    return outcome(OK, answered("CompleteMultipartUpload", completed, f"; GetObject returned the {len(written)} bytes "
                                f"written{note}"), **success_fields(completed))


def etag_form(etag):
    """The shape of an ETag without its value (as FeatureCheck.etagForm): <md5>-2, <md5>, <md5>-N, empty, other."""
    md5 = re.compile(r"^[0-9a-f]{32}$")
    if not etag:
        return "empty"
    if md5.match(etag):
        return "<md5>"
    head, dash, count = etag.partition("-")
    if dash and md5.match(head) and count.isdigit() and "-" not in count and int(count) > 0:
        return "<md5>-2" if int(count) == 2 else "<md5>-N"
    return f"other ({len(etag.encode())} characters)"


def checksum(s3, args, cleanup):
    algorithm, member = args.checksum_algorithm, CHECKSUM_MEMBER[args.checksum_algorithm]
    key = cleanup.key(args.prefix, "checksum")
    body = os.urandom(args.object_size)
    ours = checksum_b64(algorithm, body)
    try:
        # Passed as a parameter, botocore sends it as header x-amz-checksum-<algorithm> and adds no trailer; with
        # ChecksumAlgorithm it also sends x-amz-sdk-checksum-algorithm, as the SDKs do (moto keeps a checksum only
        # when that header names it).
        call("PutObject", s3.put_object, Bucket=args.bucket, Key=key, Body=body,
             ChecksumAlgorithm=algorithm.upper(), **{member: ours})
    except RequestFailed as failure:
        return failure.outcome(unsupported_counts=True)
    try:
        got = call("GetObject", s3.get_object, Bucket=args.bucket, Key=key, ChecksumMode="ENABLED")
        data = read_body("GetObject", got)
    except RequestFailed as failure:
        return failure.outcome(unsupported_counts=False)
    except FlexibleChecksumError as error:  # botocore found the body and the answer's checksum disagree
        return outcome(CORRUPTING, f"GetObject body failed botocore's checksum validation: {error}",
                       **success_fields(got))
    # In this order (as the Swift check): wrong bytes outrank a missing checksum.
    if data != body:
        return outcome(CORRUPTING, answered("GetObject", got, f" with {len(data)} bytes that differ from the "
                                            f"{len(body)} written"), **success_fields(got))
    theirs = got.get(member)
    if theirs is None:
        return outcome(UNSUPPORTED, answered("GetObject", got, f" without x-amz-checksum-{algorithm}: "
                                             "the server ignored the checksum"), **success_fields(got))
    if theirs != ours:
        return outcome(CORRUPTING, answered("GetObject", got, f" with x-amz-checksum-{algorithm} {theirs}, "
                                            f"but the bytes written have {ours}"), **success_fields(got))
    return outcome(OK, answered("GetObject", got, f" with x-amz-checksum-{algorithm} {theirs} and the bytes "
                                "written"), **success_fields(got))


def aws_chunked(s3, args, cleanup):
    key = cleanup.key(args.prefix, "aws-chunked")
    body = os.urandom(args.object_size)
    sent = {}

    def record(request, **_):  # before-send: the headers as they go on the wire (last attempt wins)
        sent.clear()
        sent.update({name.lower(): value.decode() if isinstance(value, bytes) else value
                     for name, value in request.headers.items()})

    s3.meta.events.register("before-send.s3.PutObject", record)
    try:
        put = call("PutObject", s3.put_object, Bucket=args.bucket, Key=key, Body=body)
    except RequestFailed as failure:
        put_failure = failure
    else:
        put_failure = None
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", record)
    chunked = ("aws-chunked" in sent.get("content-encoding", "") and "x-amz-trailer" in sent
               and sent.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    if not chunked:
        # Over plain http botocore sends an ordinary body: the test is misconfigured and must say so loudly.
        fields = (success_fields(put) if put_failure is None else
                  {"status": put_failure.status, "code": put_failure.code, "request_id": put_failure.request_id})
        return outcome(FAILING, "boto3 did not send aws-chunked (endpoint is not https?)", **fields)
    how = (f"aws-chunked PutObject (trailer {sent['x-amz-trailer']}, "
           f"Transfer-Encoding {sent.get('transfer-encoding', 'none')})")
    if put_failure is not None:
        put_failure.what = how
        return put_failure.outcome(unsupported_counts=True)
    got = None
    try:
        got = call("GetObject", s3.get_object, Bucket=args.bucket, Key=key)
        data = read_body("GetObject", got)
    except RequestFailed as failure:
        return failure.outcome(unsupported_counts=False)
    except FlexibleChecksumError as error:
        return outcome(CORRUPTING, f"GetObject after {how} failed botocore's checksum validation: {error}",
                       **success_fields(got))
    if data != body:
        framing = b"\r\n" in data and b"x-amz-checksum" in data
        return outcome(CORRUPTING, answered(f"GetObject after {how}", got, f" with {len(data)} bytes instead of the "
                                            f"{len(body)} written" + (" (the chunk framing was stored)" if framing
                                                                      else "")), **success_fields(got))
    return outcome(OK, answered(f"{how}, then GetObject", got, " with the bytes written"), **success_fields(got))


def conditional(s3, args, cleanup):
    key = cleanup.key(args.prefix, "conditional")
    body = os.urandom(args.object_size)  # the same bytes in both PUTs: an ignored condition harms nothing
    try:
        call("PutObject", s3.put_object, Bucket=args.bucket, Key=key, Body=body)
    except RequestFailed as failure:
        return failure.outcome(unsupported_counts=False)
    # In this order; the first request that does not get 412 decides.
    attempts = [
        ("PutObject If-None-Match: *", "If-None-Match", s3.put_object, {"Body": body, "IfNoneMatch": "*"}),
        (f"GetObject If-Match: {ABSENT_ETAG}", "If-Match", s3.get_object, {"IfMatch": ABSENT_ETAG}),
    ]
    refusals = []
    for what, header, operation, parameters in attempts:
        try:
            response = call(what, operation, Bucket=args.bucket, Key=key, **parameters)
        except RequestFailed as failure:
            if failure.status == 412:
                refusals.append(failure)
                continue
            return failure.outcome(unsupported_counts=True)
        if "Body" in response:
            response["Body"].close()
        return outcome(UNSUPPORTED, answered(what, response, f": the server ignored {header}"),
                       **success_fields(response))
    last = refusals[-1]
    return outcome(OK, "; ".join(f"{r.what} answered 412 {r.code} ({request_id_text(r.request_id)})" for r in refusals),
                   last.status, last.code, last.request_id)


def presign(s3, args, cleanup):
    key = cleanup.key(args.prefix, "presign")
    body = os.urandom(args.object_size)
    try:
        call("PutObject", s3.put_object, Bucket=args.bucket, Key=key, Body=body)
    except RequestFailed as failure:
        return failure.outcome(unsupported_counts=False)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": args.bucket, "Key": key}, ExpiresIn=300)
    # urllib, not botocore: the request must carry nothing but the URL (no Authorization header).
    context = ssl.create_default_context(cafile=args.ca_bundle) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url), context=context, timeout=60) as response:
            status, data = response.status, response.read()
            request_id = response.headers.get("x-amz-request-id") or response.headers.get("x-amzn-requestid")
    except urllib.error.HTTPError as error:
        text = error.read()
        code, request_id = None, error.headers.get("x-amz-request-id") or error.headers.get("x-amzn-requestid")
        try:
            root = ElementTree.fromstring(text)
            code = root.findtext("Code")
            request_id = request_id or root.findtext("RequestId")
        except ElementTree.ParseError:
            pass
        return RequestFailed("presigned GET", error.code, code, request_id).outcome(unsupported_counts=True)
    except (urllib.error.URLError, OSError) as error:
        return RequestFailed("presigned GET", detail=f"{type(error).__name__}: {error}").outcome(False)
    fields = {"status": status, "code": None, "request_id": request_id}
    if data != body:
        return outcome(CORRUPTING, f"presigned GET answered {status} with {len(data)} bytes that differ from the "
                                   f"{len(body)} written ({request_id_text(request_id)})", **fields)
    return outcome(OK, f"presigned GET answered {status} with the bytes written ({request_id_text(request_id)})",
                   **fields)


# -- the basic cycle ----------------------------------------------------------------------------------------------

BASIC = ["put", "head", "get", "get_range", "copy", "list", "delete"]


def basic(s3, args, cleanup):
    """The canary's basic cycle done with boto3, in its order: {operation: outcome} up to the first one that does not
    end ok (the later ones are not reached, so absent), as `s3-canary probe` reports its steps."""
    key = cleanup.key(args.prefix, "basic")
    body = os.urandom(args.object_size)
    verdicts = {}

    def step(name, action):
        try:
            verdicts[name] = action()
        except RequestFailed as failure:
            verdicts[name] = failure.outcome(unsupported_counts=False)
        except FlexibleChecksumError as error:
            verdicts[name] = outcome(CORRUPTING, f"{name}: the body failed botocore's checksum validation: {error}")
        return verdicts[name]["verdict"] == OK

    def put():
        return outcome(OK, answered("PutObject", call("PutObject", s3.put_object, Bucket=args.bucket, Key=key,
                                                        Body=body)))

    def head():
        got = call("HeadObject", s3.head_object, Bucket=args.bucket, Key=key)
        if got.get("ContentLength") != len(body):
            return outcome(CORRUPTING, answered("HeadObject", got, f" with Content-Length {got.get('ContentLength')}"
                                                f", {len(body)} were written"), **success_fields(got))
        return outcome(OK, answered("HeadObject", got))

    def get():
        got = call("GetObject", s3.get_object, Bucket=args.bucket, Key=key)
        data = read_body("GetObject", got)
        if data != body:
            return outcome(CORRUPTING, answered("GetObject", got, f" with {len(data)} bytes that differ from the "
                                                f"{len(body)} written"), **success_fields(got))
        return outcome(OK, answered("GetObject", got))

    def get_range():
        length = max(1, min(len(body) // 4, 4096))
        offset = len(body) - length  # the Swift cycle draws it at random; any range checks the same thing
        what = f"GetObject Range bytes={offset}-{offset + length - 1}"
        got = call(what, s3.get_object, Bucket=args.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
        data = read_body(what, got)
        if data != body[offset:offset + length]:
            ignored = " (the Range header was ignored)" if "ContentRange" not in got else ""
            return outcome(CORRUPTING, answered(what, got, f" with {len(data)} bytes that differ from the written "
                                                f"range{ignored}"), **success_fields(got))
        # 200 instead of 206 with the right bytes is evidence (answered() names the status), not a failure.
        return outcome(OK, answered(what, got))

    def copy():
        copied = key + ".copy"
        cleanup.keys.append(copied)
        call("CopyObject", s3.copy_object, Bucket=args.bucket, Key=copied,
             CopySource={"Bucket": args.bucket, "Key": key})
        got = call("HeadObject of the copy", s3.head_object, Bucket=args.bucket, Key=copied)
        call("DeleteObject of the copy", s3.delete_object, Bucket=args.bucket, Key=copied)
        if got.get("ContentLength") != len(body):
            return outcome(CORRUPTING, answered("HeadObject of the copy", got, f" with Content-Length "
                                                f"{got.get('ContentLength')}, {len(body)} were written"))
        return outcome(OK, answered("HeadObject of the copy", got))

    def listing():
        got = call("ListObjectsV2", s3.list_objects_v2, Bucket=args.bucket, Prefix=key)
        keys = [item["Key"] for item in got.get("Contents", [])]
        if key not in keys:
            return outcome(FAILING, answered("ListObjectsV2", got, f" without the key written ({len(keys)} keys)"),
                           **success_fields(got))
        return outcome(OK, answered("ListObjectsV2", got))

    def delete():
        call("DeleteObject", s3.delete_object, Bucket=args.bucket, Key=key)
        try:
            got = call("HeadObject after DeleteObject", s3.head_object, Bucket=args.bucket, Key=key)
        except RequestFailed as failure:
            if failure.status == 404:
                return outcome(OK, f"DeleteObject, then HeadObject answered 404")
            raise
        return outcome(FAILING, answered("HeadObject after DeleteObject", got, ": the object is still there"),
                       **success_fields(got))

    for name, action in [("put", put), ("head", head), ("get", get), ("get_range", get_range), ("copy", copy),
                         ("list", listing), ("delete", delete)]:
        if not step(name, action):
            break
    return verdicts


FEATURES = [("multipart", multipart), ("checksum", checksum), ("aws_chunked", aws_chunked),
            ("conditional", conditional), ("presign", presign)]


def client(args, sdk_defaults):
    # SigV4 everywhere, presigned URLs included: botocore still presigns with SigV2 by default, which newer SDKs and
    # servers (rclone serve s3: 400 UnsupportedAlgorithm) have left behind, and which s3-canary does not send.
    settings = {"s3": {"addressing_style": "path"}, "signature_version": "s3v4"}
    if not sdk_defaults:
        settings.update(request_checksum_calculation="when_required", response_checksum_validation="when_required")
    if args.max_attempts is not None:  # boto3's default (legacy mode, 5 attempts) takes ~75 s on a dead endpoint
        settings["retries"] = {"total_max_attempts": args.max_attempts}  # attempts, the first one included
    s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name=args.region, aws_access_key_id=args.access_key,
                      aws_secret_access_key=args.secret_key, verify=args.ca_bundle, config=Config(**settings))
    s3.meta.events.register("before-parse.s3.*", remember_error_body_request_id)
    return s3


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--ca-bundle")
    parser.add_argument("--part-size", type=int, default=5 * 1024 * 1024)
    parser.add_argument("--last-part-size", type=int, default=1024 * 1024)
    parser.add_argument("--checksum-algorithm", choices=sorted(CHECKSUM_MEMBER), default="crc32")
    parser.add_argument("--object-size", type=int, default=1024)
    parser.add_argument("--max-attempts", type=int, help="attempts per request, 1 = no retry (default: boto3's)")
    parser.add_argument("--basic", action="store_true",
                        help="the canary's basic cycle (put, head, get, get_range, copy, list, delete) instead of the "
                             "five features")
    parser.add_argument("--sdk-defaults-everywhere", action="store_true",
                        help="boto3's default checksum settings for all features, not only aws_chunked")
    args = parser.parse_args()
    if not re.match(r"^https?://", args.endpoint):
        parser.error("--endpoint must be an http:// or https:// URL")
    if args.ca_bundle is not None and not os.path.isfile(args.ca_bundle):
        parser.error(f"--ca-bundle {args.ca_bundle}: no such file")
    attempts = 1 if args.max_attempts is None else args.max_attempts
    if min(args.part_size, args.last_part_size, args.object_size, attempts) < 1:
        parser.error("sizes and --max-attempts must be positive")
    return args


def main():
    args = parse_arguments()
    # SIGTERM (a test's timeout) unwinds through the finally below, so the cleanup still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    isolated = client(args, sdk_defaults=args.sdk_defaults_everywhere)
    cleanup = Cleanup(isolated, args.bucket)
    verdicts = {}
    try:
        if args.basic:
            verdicts = basic(isolated, args, cleanup)
        for name, feature in ([] if args.basic else FEATURES):
            # A client (and so a connection pool) of its own per feature: a server that answers a request without
            # reading its body (Swift's s3api, 501 to a conditional PUT) can leave the body on the connection, and the
            # next feature's first request on it was then read from those bytes (CI once saw presign's plain PutObject
            # answered 501 with no request id on Swift).
            own = client(args, sdk_defaults=True if name == "aws_chunked" else args.sdk_defaults_everywhere)
            try:
                verdicts[name] = feature(own, args, cleanup)
            except Exception as error:  # noqa: BLE001 - a surprise in one feature must not hide the other four
                traceback.print_exc()
                verdicts[name] = outcome(FAILING, f"compat_reference.py raised {type(error).__name__}: {error}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        cleanup.run(args.prefix)
    print(json.dumps(verdicts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
