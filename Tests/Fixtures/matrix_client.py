"""boto3 beside the server-matrix test (Tests/IntegrationTests/ServerMatrixTests.swift), one server per call:

    python3 matrix_client.py put ENDPOINT BUCKET ACCESS_KEY SECRET_KEY KEY      writes 16 bytes at KEY
    python3 matrix_client.py list ENDPOINT BUCKET ACCESS_KEY SECRET_KEY PREFIX  keys, then uploads as "UPLOAD <key>"
    python3 matrix_client.py signature ENDPOINT BUCKET ACCESS_KEY SECRET_KEY PREFIX
        prints "refused" or "accepted": a PUT signed with a wrong secret key (an accepted one is deleted again)

Plain HTTP, path addressing, one attempt per request. Exit 0 when the answer was printed, 1 on an error.
"""
import sys
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint, access_key, secret_key):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key,
                        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))


def main():
    command, endpoint, bucket = sys.argv[1:4]
    if command == "put":
        access_key, secret_key, key = sys.argv[4:7]
        client(endpoint, access_key, secret_key).put_object(Bucket=bucket, Key=key, Body=b"stale canary 0123")
    elif command == "list":
        access_key, secret_key, prefix = sys.argv[4:7]
        s3 = client(endpoint, access_key, secret_key)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                print(item["Key"])
        try:
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    print("UPLOAD " + upload["Key"])
        except ClientError as error:
            # rclone serve s3 1.75 answers ListMultipartUploads with 404 NoSuchUpload in a bucket that never had an
            # upload.
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
    elif command == "signature":
        access_key, secret_key, prefix = sys.argv[4:7]
        key = f"{prefix}signature-{uuid.uuid4().hex[:12]}"
        s3 = client(endpoint, access_key, "not-" + secret_key)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"signed with a wrong secret")
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            print("refused" if status == 403 else f"error {status}")
            return 0
        client(endpoint, access_key, secret_key).delete_object(Bucket=bucket, Key=key)
        print("accepted")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
