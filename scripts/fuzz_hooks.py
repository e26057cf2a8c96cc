# Schemathesis hooks for `make fuzz` (scripts/fuzz.mjs passes them through SCHEMATHESIS_HOOKS).
#
# Two jobs. First, valid credentials on every request, so generated input reaches the code
# behind the checks: the fuzz instance in `{instance}`, its bearer token on `/api/otp/v2` and
# its WhatOTP key on `/v1`, its publishable key and an allowed `Origin` on `/widget/v1`, the
# verify token on Meta's handshake, and a real signature over the body as sent on the Meta and
# Twilio webhooks. One request in twenty keeps what the generator made (a random instance, key
# or signature), so the refusals are fuzzed too. Live identifiers: half the requests that
# name a challenge (validate-code, the status lookup, the widget's verify and poll) get one that
# exists, made just before through the API (a fresh code, a fresh widget session), sometimes
# with its right code, so the fuzzer reaches the states behind "no such challenge". These
# seeding calls are counted apart. Second, counting: every answer by operation and
# status, and every failed check (by the check that reports it), written as JSON to $FUZZ_STATS when the run ends.
import atexit
import base64
import hashlib
import hmac
import json
import os
import random
import threading
from urllib.parse import quote

import requests
import schemathesis

ENV = os.environ
INSTANCE = ENV["FUZZ_INSTANCE"]
TOKEN = ENV["FUZZ_TOKEN"]
PUBLISHABLE_KEY = ENV["FUZZ_PUBLISHABLE_KEY"]
ORIGIN = ENV["FUZZ_ORIGIN"]
META_APP_SECRET = ENV["FUZZ_META_APP_SECRET"].encode()
META_VERIFY_TOKEN = ENV["FUZZ_META_VERIFY_TOKEN"]
TWILIO_AUTH_TOKEN = ENV["FUZZ_TWILIO_AUTH_TOKEN"].encode()
BASE_URL = ENV["FUZZ_BASE_URL"].rstrip("/")
STATS = ENV["FUZZ_STATS"]

# Reproducible for a given SCHEMATHESIS seed is not needed; a fixed seed keeps runs comparable.
_rng = random.Random(int(ENV.get("FUZZ_SEED", "12")))
_lock = threading.Lock()
_stats = {"operations": {}, "seeding": {}}
_http = threading.local()


def _session():
    if not hasattr(_http, "s"):
        _http.s = requests.Session()
    return _http.s


def _chance(p):
    with _lock:
        return _rng.random() < p


def _seed_call(what, method, path, body, headers):
    try:
        r = _session().request(method, BASE_URL + path, json=body, headers=headers, timeout=20)
    except requests.RequestException:
        status = "error"
        r = None
    else:
        status = str(r.status_code)
    with _lock:
        entry = _stats["seeding"].setdefault(what, {})
        entry[status] = entry.get(status, 0) + 1
    if r is None or r.status_code != 200:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def _fresh_phone():
    with _lock:
        return "20" + "".join(str(_rng.randrange(10)) for _ in range(9))


def _fresh_code():
    """A code just sent to a fresh number: (chat id, code, uuid), or None."""
    chat = _fresh_phone()
    got = _seed_call("request-code", "POST", f"/api/otp/v2/{INSTANCE}/request-code", {"chatId": chat},
                     {"Authorization": f"Bearer {TOKEN}"})
    data = (got or {}).get("data") or {}
    return (chat, data["code"], data["uuid"]) if "code" in data and "uuid" in data else None


def _fresh_widget(mode):
    """A widget session just started: its answer, or None."""
    body = {"publishable_key": PUBLISHABLE_KEY, "mode": mode}
    if mode == "code":
        body["phone"] = "+" + _fresh_phone()
    return _seed_call(f"widget start ({mode})", "POST", "/widget/v1/start", body, {"Origin": ORIGIN})


def _seed(case, path):
    """Puts a live challenge into half the requests that name one."""
    body = case.body
    if path == "/api/otp/v2/{instance}/validate-code" and isinstance(body, dict) and _chance(0.5):
        fresh = _fresh_code()
        if fresh:
            chat, code, _ = fresh
            case.body = {**body, "chatId": chat, **({"code": code} if _chance(0.5) else {})}
    elif path == "/api/otp/v2/{instance}/otps/{uuid}" and isinstance(case.path_parameters, dict) and _chance(0.5):
        fresh = _fresh_code()
        if fresh:
            case.path_parameters = {**case.path_parameters, "uuid": fresh[2]}
    elif path == "/widget/v1/verify" and isinstance(body, dict) and _chance(0.5):
        got = _fresh_widget("code")
        if got and "session" in got:
            case.body = {**body, "session": got["session"]}
    elif path == "/widget/v1/poll" and isinstance(body, dict) and _chance(0.5):
        got = _fresh_widget("link")
        if got and "session" in got:
            extra = {"poll_secret": got["poll_secret"]} if _chance(0.7) and "poll_secret" in got else {}
            case.body = {**body, "session": got["session"], **extra}


def _keep_generated():
    with _lock:
        return _rng.random() < 0.05


def _label(case):
    return f"{case.operation.method.upper()} {case.operation.path}"


def _set_header(case, name, value):
    headers = dict(case.headers or {})
    for k in list(headers):
        if k.lower() == name.lower():
            del headers[k]
    headers[name] = value
    case.headers = headers


def _json_bytes(body):
    # What `requests` sends for `json=`: json.dumps with its defaults, UTF-8.
    return json.dumps(body, allow_nan=False).encode("utf-8")


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    method = case.operation.method.upper()
    keep = _keep_generated()
    if not keep and isinstance(case.path_parameters, dict) and "instance" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "instance": INSTANCE}

    if path.startswith("/api/otp/v2/") or path.startswith("/v1/"):
        if not keep:
            _set_header(case, "Authorization", f"Bearer {TOKEN}")
    elif path.startswith("/widget/v1/"):
        if not keep:
            _set_header(case, "Origin", ORIGIN)
            if method == "GET" and isinstance(case.query, dict):
                case.query = {**case.query, "key": PUBLISHABLE_KEY}
            if method == "POST" and isinstance(case.body, dict):
                case.body = {**case.body, "publishable_key": PUBLISHABLE_KEY}
    if not keep:
        _seed(case, path)
    if path == "/webhooks/whatsapp/{instance}":
        if method == "GET" and not keep and isinstance(case.query, dict):
            case.query = {**case.query, "hub.verify_token": META_VERIFY_TOKEN}
        if method == "POST" and not keep and case.body is not None and not isinstance(case.body, (bytes, str)):
            try:
                raw = _json_bytes(case.body)
            except (TypeError, ValueError):
                raw = None
            if raw is not None:
                digest = hmac.new(META_APP_SECRET, raw, hashlib.sha256).hexdigest()
                _set_header(case, "X-Hub-Signature-256", f"sha256={digest}")
    elif path == "/webhooks/twilio/{instance}":
        if method == "POST" and not keep and isinstance(case.body, dict) and isinstance(case.path_parameters, dict):
            # Twilio signs the full URL it posted to and each form field, names sorted.
            url = BASE_URL + "/webhooks/twilio/" + quote(str(case.path_parameters.get("instance", "")), safe="")
            data = url
            for k in sorted(case.body):
                v = case.body[k]
                for item in sorted(v if isinstance(v, list) else [v], key=str):
                    data += str(k) + _form_value(item)
            sig = base64.b64encode(hmac.new(TWILIO_AUTH_TOKEN, data.encode("utf-8"), hashlib.sha1).digest()).decode()
            _set_header(case, "X-Twilio-Signature", sig)


@schemathesis.deserializer("text/html")
def _html(ctx, response):
    # The login pages: their documented schemas are patterns over the page's text.
    return response.text


def _form_value(v):
    # How `requests` writes a form value: str() of it, booleans and numbers alike.
    return str(v)


@schemathesis.hook
def after_call(context, case, response):
    label = _label(case)
    with _lock:
        op = _stats["operations"].setdefault(label, {"requests": 0, "statuses": {}, "failures": {}})
        op["requests"] += 1
        key = str(response.status_code)
        op["statuses"][key] = op["statuses"].get(key, 0) + 1


@schemathesis.hook
def filter_failure(context, failure, case, response):
    # Called for every failed check of every answer: count it, keep it.
    checks = getattr(type(failure), "checks", ()) or ("custom",)
    label = _label(case)
    with _lock:
        op = _stats["operations"].setdefault(label, {"requests": 0, "statuses": {}, "failures": {}})
        name = checks[0]
        op["failures"][name] = op["failures"].get(name, 0) + 1
    return True


def _write():
    with _lock:
        with open(STATS, "w") as f:
            json.dump(_stats, f)


atexit.register(_write)
