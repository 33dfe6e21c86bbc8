"""Lists keys under a prefix with boto3: the independent S3 client of the integration tests.

    python3 list_keys.py ENDPOINT BUCKET PREFIX [uploads]   (keys from S3CANARY_TEST_RGW_ACCESS_KEY / _SECRET_KEY)

With `uploads`, the multipart uploads in progress under PREFIX follow (ListMultipartUploads), as `UPLOAD <key>`.
"""
import sys

from rgw_client import client

endpoint, bucket, prefix = sys.argv[1:4]
for page in client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get("Contents", []):
        print(item["Key"])
if sys.argv[4:5] == ["uploads"]:
    for page in client(endpoint).get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            print("UPLOAD " + upload["Key"])
print("LISTED-OK")
