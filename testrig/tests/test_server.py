"""server.py's command line contract and the moto-start / moto-stop scripts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import REPO_ROOT, SERVER, SOURCE_ACCOUNT, Rig, start_server, stop_server


def wait_for_exit(process: subprocess.Popen, timeout: float) -> int | None:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def is_rig_server(pid: int) -> bool:
    """Tell whether `pid` runs server.py; a stopped server may linger as a zombie without one."""
    try:
        return b"testrig/server.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_ready_file_holds_loopback_url(rig: Rig) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", rig.url)
    assert not rig.url.endswith(":0")


def test_default_amis_not_loaded(rig: Rig) -> None:
    assert rig.client("ec2").describe_images()["Images"] == []


def test_sigterm_stops_and_removes_ready_file(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    server.process.send_signal(signal.SIGTERM)
    assert wait_for_exit(server.process, 10) == 0
    assert not (tmp_path / "url").exists()
    assert "stopped" in server.log_path.read_text()


def test_exits_when_parent_exits(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ready_file = tmp_path / "url"
    server = subprocess.Popen(
        [
            sys.executable,
            str(SERVER),
            "--port",
            "0",
            "--ready-file",
            str(ready_file),
            "--parent-pid",
            str(parent.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not ready_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready_file.exists()
        parent.kill()
        parent.wait()
        assert wait_for_exit(server, 5) == 0
    finally:
        parent.kill()
        server.kill()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--host", "0.0.0.0", "--ready-file", "x"], "not an IPv4 loopback address"),
        (["--host", "192.168.1.10", "--ready-file", "x"], "not an IPv4 loopback address"),
        (["--port", "0"], "--ready-file is required"),
    ],
)
def test_rejects_bad_arguments(arguments: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVER), *arguments], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_rejects_unknown_patch(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVER), "--ready-file", str(tmp_path / "url"), "--without", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unknown patch name(s) nope" in result.stderr
    assert not (tmp_path / "url").exists()


def test_without_disables_one_patch(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--without", "image-attribute-not-found")
    try:
        ec2 = server.client("ec2", SOURCE_ACCOUNT)
        with pytest.raises(Exception) as error:
            ec2.describe_image_attribute(
                ImageId="ami-0123456789abcdef0", Attribute="launchPermission"
            )
        assert not isinstance(error.value, ClientError) or "500" in str(error.value)
        key = server.client("kms", SOURCE_ACCOUNT).describe_key(KeyId="alias/aws/ebs")
        assert key["KeyMetadata"]["KeyManager"] == "AWS"
        assert "fidelity patches disabled: image-attribute-not-found" in server.log_path.read_text()
    finally:
        stop_server(server)


def test_list_patches() -> None:
    result = subprocess.run(
        [sys.executable, str(SERVER), "--list-patches"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    names = [line.split(":", 1)[0] for line in result.stdout.splitlines()]
    assert "copy-image" in names
    assert len(names) == len(set(names))


def test_moto_start_and_stop_scripts(tmp_path: Path) -> None:
    environment = {**os.environ, "AMISHARE_RIG_DIR": str(tmp_path)}
    start = REPO_ROOT / "scripts" / "moto-start"
    stop = REPO_ROOT / "scripts" / "moto-stop"

    started = subprocess.run(
        [str(start)], capture_output=True, text=True, timeout=120, env=environment
    )
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert (tmp_path / "moto.url").read_text().strip() == url
        pid = int((tmp_path / "moto.pid").read_text())

        again = subprocess.run(
            [str(start)], capture_output=True, text=True, timeout=120, env=environment
        )
        assert again.stdout.strip() == url
    finally:
        stopped = subprocess.run(
            [str(stop)], capture_output=True, text=True, timeout=60, env=environment
        )
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "moto.pid").exists()
    assert not (tmp_path / "moto.url").exists()
    assert not is_rig_server(pid)
    assert subprocess.run([str(stop)], env=environment, timeout=60).returncode == 0
