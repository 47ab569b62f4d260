"""Run the moto server on loopback with amishare's fidelity patches and a call log.

Usage: .venv/bin/python testrig/server.py --host 127.0.0.1 --port 0 --ready-file PATH
       [--parent-pid PID] [--without PATCH ...] [--verbose] [--list-patches]

Once the server responds to HTTP requests, it writes its URL (http://127.0.0.1:PORT) to the
ready file, atomically. It stops on SIGTERM or SIGINT, and by itself within about a second once
the process --parent-pid names has exited, so a test that crashes does not leave a server
behind. On exit it deletes the ready file.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# moto reads this when it is imported. Without it, each account in us-east-1 starts with 1,301
# public images (moto 5.2.5).
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"

sys.path.insert(0, str(Path(__file__).resolve().parent))

import calllog  # noqa: E402  (needs the path above)

logger = logging.getLogger("testrig.server")

PARENT_POLL_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 10.0


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--ready-file", help="file to write the server URL to once it accepts requests"
    )
    parser.add_argument(
        "--parent-pid", type=int, help="stop when the process with this id has exited"
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="PATCH",
        help="disable a fidelity patch (repeatable, or comma-separated; 'all' disables every one)",
    )
    parser.add_argument(
        "--list-patches", action="store_true", help="print the patch names and exit"
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    arguments = parser.parse_args(argv)

    if not is_loopback(arguments.host):
        parser.error(f"--host {arguments.host} is not an IPv4 loopback address; use 127.0.0.1")
    if not arguments.list_patches and not arguments.ready_file:
        parser.error("--ready-file is required")
    arguments.without = [name for item in arguments.without for name in item.split(",") if name]
    return arguments


def is_loopback(host: str) -> bool:
    """Accept IPv4 loopback addresses only, so that the URL needs no brackets."""
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def parent_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until_answering(url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_rig/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def build_app(disabled: list[str]) -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    import fidelity

    applied = fidelity.apply(disabled)
    skipped = [name for name in fidelity.NAMES if name not in applied]
    logger.info("fidelity patches applied: %s", ", ".join(applied) or "none")
    if skipped:
        logger.info("fidelity patches disabled: %s", ", ".join(skipped))
    moto_app = DomainDispatcherApplication(create_backend_app)
    return calllog.CallLogMiddleware(moto_app, calllog.CallLog())


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.INFO if arguments.verbose else logging.WARNING)

    if arguments.list_patches:
        import fidelity

        for patch in fidelity.PATCHES:
            print(f"{patch.NAME}: {patch.__doc__.splitlines()[0]}")
        return 0

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    try:
        app = build_app(arguments.without)
    except ValueError as error:
        logger.error("%s", error)
        return 2

    server = make_server(
        arguments.host, arguments.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    url = f"http://{arguments.host}:{server.server_port}"
    # A short poll interval lets shutdown() return within 0.1 s instead of werkzeug's 0.5 s.
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="moto-server", daemon=True
    )
    serving.start()

    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda number, _frame: stop.set())

    ready_file = Path(arguments.ready_file)
    wait_until_answering(url)
    write_atomically(ready_file, url + "\n")
    logger.info("moto server started at %s (pid %d)", url, os.getpid())

    try:
        while not stop.wait(PARENT_POLL_SECONDS):
            if arguments.parent_pid and not parent_alive(arguments.parent_pid):
                logger.info("parent process %d has exited", arguments.parent_pid)
                break
    finally:
        server.shutdown()
        serving.join()
        if ready_file.exists() and ready_file.read_text(encoding="utf-8").strip() == url:
            ready_file.unlink()
        logger.info("moto server at %s stopped", url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
