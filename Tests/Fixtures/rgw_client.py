"""The boto3 client of the integration tests' independent checks (keys from S3CANARY_TEST_RGW_ACCESS_KEY / _SECRET_KEY).
"""
import os

import boto3
from botocore.config import Config


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=os.environ["S3CANARY_TEST_RGW_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3CANARY_TEST_RGW_SECRET_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
