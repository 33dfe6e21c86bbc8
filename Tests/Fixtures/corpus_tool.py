"""The durability tests' own look at a corpus, with boto3 (the integration tests' independent S3 client).

    python3 corpus_tool.py rule ENDPOINT BUCKET PREFIX INDEX SIZE   RULE-OK when the object holds what the documented
                                                                  content rule (docs/design.md 4.15) derives
    python3 corpus_tool.py damage ENDPOINT BUCKET PREFIX --delete I,J --corrupt K
                                                                  deletes objects and flips a byte of another
    python3 corpus_tool.py etags ENDPOINT BUCKET PREFIX COUNT       one line per index: the ETag, or - when absent

Keys come from S3CANARY_TEST_RGW_ACCESS_KEY / _SECRET_KEY. The content rule is written here from its description,
not from the Swift code: SplitMix64 seeded with the first eight bytes (big-endian) of SHA-256(key), each 64-bit
output little-endian, cut at the size.
"""
import hashlib
import struct
import sys

from botocore.exceptions import ClientError

from rgw_client import client

MASK = (1 << 64) - 1


def key(prefix, index):
    return f"{prefix}objects/{index:08d}"


def content(object_key, size):
    state = int.from_bytes(hashlib.sha256(object_key.encode()).digest()[:8], "big")
    out = bytearray()
    while len(out) < size:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out += struct.pack("<Q", z)
    return bytes(out[:size])


def main():
    command, endpoint, bucket, prefix = sys.argv[1:5]
    s3 = client(endpoint)
    if command == "rule":
        index, size = int(sys.argv[5]), int(sys.argv[6])
        body = s3.get_object(Bucket=bucket, Key=key(prefix, index))["Body"].read()
        print("RULE-OK" if body == content(key(prefix, index), size) else f"RULE-DIFFERS {len(body)} bytes")
    elif command == "damage":
        args = sys.argv[5:]
        deletes = args[args.index("--delete") + 1].split(",") if "--delete" in args else []
        corrupts = args[args.index("--corrupt") + 1].split(",") if "--corrupt" in args else []
        for index in deletes:
            s3.delete_object(Bucket=bucket, Key=key(prefix, int(index)))
        for index in corrupts:
            body = bytearray(s3.get_object(Bucket=bucket, Key=key(prefix, int(index)))["Body"].read())
            body[len(body) // 2] ^= 0xFF
            s3.put_object(Bucket=bucket, Key=key(prefix, int(index)), Body=bytes(body))
        print("DAMAGE-OK")
    elif command == "etags":
        for index in range(int(sys.argv[5])):
            try:
                print(s3.head_object(Bucket=bucket, Key=key(prefix, index))["ETag"])
            except ClientError:
                print("-")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
