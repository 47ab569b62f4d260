"""Fixtures that run testrig/server.py on a free loopback port and reach it with boto3.

`rig` is a server with every fidelity patch, `moto_rig` one started with `--without all`, so a
test can show both what the patch does and the moto 5.2.5 behaviour it replaces. Both servers
live for the whole session, and their state and call log are reset before each test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER = REPO_ROOT / "testrig" / "server.py"
DEFAULT_ACCOUNT = "123456789012"
SOURCE_ACCOUNT = "111111111111"
TARGET_ACCOUNT = "222222222222"
REGION = "us-east-1"
OTHER_REGION = "us-west-2"
READY_TIMEOUT_SECONDS = 20.0

# Lets tests import the fidelity package to check its helpers directly.
sys.path.insert(0, str(REPO_ROOT / "testrig"))

# Dummy credentials, and no file or metadata service that could point boto3 anywhere else.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
)
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
    os.environ.pop(variable, None)

# One attempt, so that moto's HTTP 500 responses show up at once instead of after retries.
CLIENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"})


class Rig:
    """A running server and boto3 clients that act in a chosen account."""

    def __init__(self, process: subprocess.Popen, url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        # One session, so that boto3 loads each service model once.
        self._session = boto3.Session(region_name=REGION)
        self._credentials: dict[str, dict[str, str]] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}

    def credentials(self, account: str) -> dict[str, str]:
        """Return client arguments whose credentials act in `account`, through STS AssumeRole."""
        if account == DEFAULT_ACCOUNT:
            return {}
        if account not in self._credentials:
            sts = self.client("sts")
            credentials = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/amishare", RoleSessionName="testrig"
            )["Credentials"]
            self._credentials[account] = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
        return self._credentials[account]

    def client(self, service: str, account: str = DEFAULT_ACCOUNT, region: str = REGION) -> Any:
        cache_key = (service, account, region)
        if cache_key not in self._clients:
            self._clients[cache_key] = self._session.client(
                service,
                region_name=region,
                endpoint_url=self.url,
                config=CLIENT_CONFIG,
                **self.credentials(account),
            )
        return self._clients[cache_key]

    def request(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def calls(self, **criteria: str) -> list[dict[str, str]]:
        query = "&".join(f"{key}={value}" for key, value in criteria.items())
        return self.request("GET", f"/_rig/calls?{query}")["calls"]

    def reset(self) -> None:
        """Forget all AWS state (assumed roles included) and all recorded calls."""
        self.request("POST", "/moto-api/reset")
        self.request("DELETE", "/_rig/calls")
        self._credentials.clear()
        self._clients.clear()


def start_server(
    directory: Path, *arguments: str, environment: dict[str, str] | None = None
) -> Rig:
    """Start server.py with `arguments` and wait until its ready file appears."""
    ready_file = directory / "url"
    log_path = directory / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--ready-file",
                str(ready_file),
                "--parent-pid",
                str(os.getpid()),
                *arguments,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(environment or {})},
        )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server.py did not start; its log:\n{log_path.read_text()}")
        time.sleep(0.05)
    return Rig(process, ready_file.read_text().strip(), log_path)


def stop_server(rig: Rig) -> None:
    rig.process.terminate()
    try:
        rig.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rig.process.kill()


@pytest.fixture(scope="session")
def patched_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    rig = start_server(
        tmp_path_factory.mktemp("patched"),
        environment={"AMISHARE_RIG_COPY_PENDING_SECONDS": "0.3"},
    )
    yield rig
    stop_server(rig)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    rig = start_server(tmp_path_factory.mktemp("moto"), "--without", "all")
    yield rig
    stop_server(rig)


@pytest.fixture
def rig(patched_server: Rig) -> Rig:
    patched_server.reset()
    return patched_server


@pytest.fixture
def moto_rig(moto_server: Rig) -> Rig:
    moto_server.reset()
    return moto_server
