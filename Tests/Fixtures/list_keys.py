"""Lists keys under a prefix with boto3: the independent S3 client of the integration tests.

    python3 list_keys.py ENDPOINT BUCKET PREFIX     (keys from S3CANARY_TEST_RGW_ACCESS_KEY / _SECRET_KEY)
"""
import os
import sys

import boto3
from botocore.config import Config

endpoint, bucket, prefix = sys.argv[1:4]
client = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ["S3CANARY_TEST_RGW_ACCESS_KEY"],
    aws_secret_access_key=os.environ["S3CANARY_TEST_RGW_SECRET_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get("Contents", []):
        print(item["Key"])
print("LISTED-OK")
