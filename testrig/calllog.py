"""WSGI middleware that records every AWS API request and serves the record at /_rig/calls.

Each request becomes {"service", "action", "account", "region"}: the service and region come from
the SigV4 credential scope, the action from X-Amz-Target (JSON protocols such as KMS) or the
Action parameter (query protocols such as EC2 and STS), and the account is the one moto acts in
for the request's credentials: the role's account for STS AssumeRole credentials, else
123456789012. Requests to moto's own /moto-api/ and to /_rig/ are not recorded.

KMS CreateKey and PutKeyPolicy records (X-Amz-Target TrentService.CreateKey or
TrentService.PutKeyPolicy) also have "bypass_lockout_check": true when the JSON request body sets
BypassPolicyLockoutSafetyCheck to true, and false when it omits the parameter, sets it to false
or is not a JSON object. Other records have no such field.

GET /_rig/calls returns {"calls": [...]} in arrival order, filtered by any of the query
parameters account, service, action and region. DELETE /_rig/calls empties the record.
GET /_rig/health returns {"status": "ok"}.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")
CALL_FIELDS = ("service", "action", "account", "region")
# The X-Amz-Target prefix of KMS, and its operations that take BypassPolicyLockoutSafetyCheck.
KMS_TARGET_PREFIX = "TrentService"
LOCKOUT_CHECK_ACTIONS = {"CreateKey", "PutKeyPolicy"}

Call = dict[str, str | bool | None]


class CallLog:
    """Thread-safe list of recorded calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def append(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def select(self, **criteria: str) -> list[Call]:
        with self._lock:
            calls = list(self._calls)
        return [c for c in calls if all(c.get(k) == v for k, v in criteria.items())]

    def clear(self) -> int:
        with self._lock:
            count = len(self._calls)
            self._calls.clear()
        return count


def account_for_access_key(access_key: str | None, account_header: str | None) -> str:
    """Return the account moto acts in for these credentials, in moto's order of precedence.

    `account_header` is the request's x-moto-account-id header, which overrides the credentials.
    """
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if account_header:
        return account_header
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import get_account_id_from

    if not access_key:
        return DEFAULT_ACCOUNT_ID
    return get_account_id_from(access_key)


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so that moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def bypasses_lockout_check(body: bytes) -> bool:
    """Return whether a KMS JSON request body sets BypassPolicyLockoutSafetyCheck to true."""
    try:
        parameters = json.loads(body)
    except ValueError:
        return False
    return isinstance(parameters, dict) and parameters.get("BypassPolicyLockoutSafetyCheck") is True


def describe_request(environ: dict[str, Any]) -> Call:
    """Return the call record of one AWS API request."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    access_key, region, service = match.groups() if match else (None, None, None)

    action = None
    bypass_lockout_check = None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, action = target.rpartition(".")
        if prefix == KMS_TARGET_PREFIX and action in LOCKOUT_CHECK_ACTIONS:
            # NOTE: _read_body reads nothing without Content-Length, so a chunked body logs false.
            bypass_lockout_check = bypasses_lockout_check(_read_body(environ))
    else:
        body = _read_body(environ)
        content_type = environ.get("CONTENT_TYPE", "")
        if body and content_type.startswith("application/x-www-form-urlencoded"):
            action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
        if action is None:
            action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
    if action is None:
        action = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"

    account_header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    call: Call = {
        "service": service,
        "action": action,
        "account": account_for_access_key(access_key, account_header),
        "region": region,
    }
    if bypass_lockout_check is not None:
        call["bypass_lockout_check"] = bypass_lockout_check
    return call


def _json_response(
    start_response: Callable[..., Any], status: str, payload: Any
) -> Iterable[bytes]:
    body = json.dumps(payload).encode("utf-8")
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


class CallLogMiddleware:
    """Record requests to `app` in `log` and serve the /_rig/ endpoints itself."""

    def __init__(self, app: Callable[..., Any], log: CallLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_rig/"):
            return self._serve_rig(environ, start_response, path)
        if not path.startswith("/moto-api"):
            self.log.append(describe_request(environ))
        return self.app(environ, start_response)

    def _serve_rig(
        self, environ: dict[str, Any], start_response: Callable[..., Any], path: str
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if path == "/_rig/health" and method == "GET":
            return _json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_rig/calls" and method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            criteria = {k: v[0] for k, v in query.items() if k in CALL_FIELDS}
            return _json_response(start_response, "200 OK", {"calls": self.log.select(**criteria)})
        if path == "/_rig/calls" and method == "DELETE":
            return _json_response(start_response, "200 OK", {"cleared": self.log.clear()})
        return _json_response(
            start_response,
            "404 Not Found",
            {"error": f"no rig endpoint {method} {path}; see GET /_rig/calls"},
        )
