"""Lists and reads the local S3 server with stock boto3, for stock_sdk.rs.

Run by crates/s3-local/tests/stock_sdk.rs with the repository's .venv and
the AWS_* variables pointing at the server. Puts each key of STOCK_SDK_KEYS
(a JSON list) into the bucket named by argv[1], with the body
"body of KEY\n", then lists the bucket the ways boto3 users do and prints
what came back as one JSON object on stdout; the Rust test compares it
with what was put. Nothing is asserted here, so a difference shows up in
the Rust test's failure message.
"""

import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def keys(response):
    return [o["Key"] for o in response.get("Contents", [])]


def prefixes(response):
    return [p["Prefix"] for p in response.get("CommonPrefixes", [])]


def main():
    bucket = sys.argv[1]
    put = json.loads(os.environ["STOCK_SDK_KEYS"])
    s3 = boto3.client(
        "s3",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
        ),
    )
    for key in put:
        s3.put_object(Bucket=bucket, Key=key, Body=f"body of {key}\n".encode())

    out = {}
    # The default: botocore asks for encoding-type=url and decodes.
    listed = keys(s3.list_objects_v2(Bucket=bucket))
    out["v2"] = listed
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    out["v2_pages"] = [keys(p) for p in pages]
    pages = s3.get_paginator("list_objects").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    out["v1_pages"] = [keys(p) for p in pages]

    # What the client sends (prefix, start-after, marker, delimiter) still
    # selects, and comes back decoded where botocore decodes it.
    r = s3.list_objects_v2(Bucket=bucket, Prefix="\u00fcn\u00ef/")
    out["v2_prefix"] = {"keys": keys(r), "Prefix": r.get("Prefix")}
    r = s3.list_objects_v2(Bucket=bucket, StartAfter="hash#1.png")
    out["v2_start_after"] = {"keys": keys(r), "StartAfter": r.get("StartAfter")}
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    out["v2_delimiter"] = {
        "keys": keys(r),
        "CommonPrefixes": prefixes(r),
        "Delimiter": r.get("Delimiter"),
    }
    r = s3.list_objects_v2(Bucket=bucket, Prefix="x+")
    out["v2_plus_prefix"] = {"keys": keys(r), "Prefix": r.get("Prefix")}
    r = s3.list_objects(Bucket=bucket, Prefix="x+")
    # botocore's decode_list_object leaves a v1 Prefix as S3 sent it.
    out["v1_plus_prefix"] = {"keys": keys(r), "Prefix": r.get("Prefix")}
    r = s3.list_objects(Bucket=bucket, Marker="hash#1.png")
    out["v1_marker"] = {"keys": keys(r), "Marker": r.get("Marker")}

    # Asked for by the caller: botocore leaves the encoded names alone.
    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    out["v2_url_raw"] = {"keys": keys(r), "EncodingType": r.get("EncodingType")}

    try:
        s3.list_object_versions(Bucket=bucket)
        out["versions"] = "served"
    except ClientError as e:
        out["versions"] = e.response["Error"]["Code"]

    # Every listed key reads back with its own body.
    bodies = {}
    for key in listed:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            bodies[key] = body.decode()
        except ClientError as e:
            bodies[key] = "error: " + e.response["Error"]["Code"]
    out["bodies"] = bodies

    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
