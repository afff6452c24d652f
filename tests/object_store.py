"""A real S3-compatible server on loopback for the poll log's object-store tests (moto's
server: HTTP, S3's API and errors), with a bucket made and the variables that reach it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.request import Request, urlopen

import boto3
from moto.server import ThreadedMotoServer

BUCKET = "poll-log"
REGION = "eu-north-1"


@contextmanager
def s3_bucket() -> Iterator[dict[str, str]]:
    """Start the server on 127.0.0.1 (a free port), empty, make `BUCKET`, and yield the
    environment variables a client needs to reach it; the server stops on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ACCESS_KEY_ID": "test-access-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret-key",
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ALLOW_HTTP": "true",
        }
        # The server's state lives in the process, not the server: start from an empty one.
        urlopen(Request(f"{env['AWS_ENDPOINT_URL']}/moto-api/reset", method="POST")).close()
        boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield env
    finally:
        server.stop()
