"""Writes small objects with boto3 (the integration tests' independent S3 client), one per key given.

    python3 put_keys.py ENDPOINT BUCKET KEY [KEY ...]     (keys from S3CANARY_TEST_RGW_ACCESS_KEY / _SECRET_KEY)
"""
import sys

from rgw_client import client

endpoint, bucket, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = client(endpoint)
for key in keys:
    s3.put_object(Bucket=bucket, Key=key, Body=b"left behind")
print("PUT-OK")
