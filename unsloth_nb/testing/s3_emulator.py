"""A loopback S3 server for tests and tutorials: moto's server mode, spoken to by the unmodified boto3.

moto implements S3's REST API (buckets, objects, ranged GETs, listings with pagination,
multipart uploads) as AWS documents it; we only start it on a free loopback port and
give a test the environment boto3 reads: ``AWS_ENDPOINT_URL`` and a key pair that moto
accepts. The same server stands in for RunPod's network-volume S3 API (the bucket is
the volume id). moto is a test dependency (the ``test`` extra), imported only here.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

TEST_ACCESS_KEY = "loopback-access-key"
TEST_SECRET_KEY = "loopback-secret-key"  # not a secret: moto accepts any key pair
TEST_REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LoopbackS3:
    """A running S3 server on 127.0.0.1; :attr:`url` is what ``AWS_ENDPOINT_URL`` should be."""

    url: str = ""
    _server: Any = field(default=None, repr=False)

    def __enter__(self) -> LoopbackS3:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
        port = _free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to read and write this server with boto3."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_DEFAULT_REGION": TEST_REGION,
        }

    def client(self) -> Any:
        """A boto3 S3 client on this server, for a test to put and inspect objects."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            region_name=TEST_REGION,
        )

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Create ``bucket`` if needed and store ``data`` at ``key``."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=key, Body=data)

    def reset(self) -> None:
        """Forget every bucket and stop checking keys (moto's own routes), so tests sharing the server start alike."""
        import requests

        requests.post(f"{self.url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def check_keys(self) -> tuple[str, str]:
        """From now on every request must be signed by a key moto knows; returns one that may use S3.

        A wrong secret is then refused with ``SignatureDoesNotMatch`` and an unknown key with
        ``InvalidAccessKeyId``, as AWS does. :meth:`reset` turns the checks off again.
        """
        import boto3
        import requests

        iam = boto3.session.Session().client(
            "iam",
            endpoint_url=self.url,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            region_name=TEST_REGION,
        )
        iam.create_user(UserName="reader")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="reader", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        requests.post(f"{self.url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


__all__ = ["TEST_ACCESS_KEY", "TEST_REGION", "TEST_SECRET_KEY", "LoopbackS3"]
