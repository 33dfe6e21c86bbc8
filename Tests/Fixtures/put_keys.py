"""Writes small objects with boto3 (the integration tests' independent S3 client), one per key given.

    python3 put_keys.py ENDPOINT BUCKET KEY [KEY ...]     (keys from S3CANARY_TEST_RGW_ACCESS_KEY / _SECRET_KEY)
"""
import os
import sys

import boto3
from botocore.config import Config

endpoint, bucket, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
client = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ["S3CANARY_TEST_RGW_ACCESS_KEY"],
    aws_secret_access_key=os.environ["S3CANARY_TEST_RGW_SECRET_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
for key in keys:
    client.put_object(Bucket=bucket, Key=key, Body=b"left behind")
print("PUT-OK")
