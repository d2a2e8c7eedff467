"""The cloud's HTTP API: a FastAPI app, a thin side of the Cloud domain object.

Each route authenticates the bearer key, turns the request into one Cloud call and its
answer into JSON. Refusals are one line: {"error": reason, "field": name-or-null}, with
the HTTP status saying what kind (400 bad input, 401 no valid key, 403 role, 404 unknown
or another tenant's, 409 conflict, 413 too big, 422 understood but refused, 429 slow
down, 503 broker away). Bodies are read by one strict parser: a byte limit, a read-time
limit, and JSON with duplicate keys refused (which copy would a checker have seen?).
The interactive docs are at /docs, the schema at /openapi.json.
"""
import asyncio
import json
import logging
import math
import time
from typing import Annotated, Optional

from fastapi import Depends, FastAPI, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from soundbox_cloud import schemas
from soundbox_cloud.artifacts import BIN_SUFFIX, ENVELOPE_SUFFIX, MAX_ARTIFACT_BYTES, MAX_ENVELOPE_BYTES
from soundbox_cloud.auth import Unauthorized
from soundbox_cloud.cloud import CAMPAIGN_ACTIONS
from soundbox_cloud.errors import Rejected
from soundbox_cloud.metrics import CONTENT_TYPE
from soundbox_cloud.validation import is_device_id, is_txn

log = logging.getLogger("soundbox_cloud")

MAX_BODY_BYTES = 16 * 1024
MAX_CAMPAIGN_BYTES = 1024 * 1024   # room for an explicit list of 10,000 device ids
BODY_TIMEOUT_S = 10                # a client trickling its body is cut off after this long
ERROR_TITLES = {400: "bad request", 404: "not found", 405: "method not allowed", 413: "body too large"}


def _refuse_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise Rejected(400, "body", "duplicate key %r in the JSON body" % key[:40])
        seen[key] = value
    return seen


def parse_json(raw):
    """The one strict JSON parser for request bodies."""
    try:
        return json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except (ValueError, RecursionError):
        raise Rejected(400, "body", "body is not valid JSON") from None


async def read_body(request, limit):
    """The body bytes, at most `limit`, read within BODY_TIMEOUT_S. The server (h11 or
    httptools) has already refused conflicting Content-Length headers with a 400."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "body", "body is larger than %d bytes" % limit)

    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Rejected(413, "body", "body is larger than %d bytes" % limit)
                chunks.append(chunk)
    except TimeoutError:
        raise Rejected(408, "body", "body not received within %d s" % BODY_TIMEOUT_S) from None
    return b"".join(chunks)


def json_body(model, limit=MAX_BODY_BYTES):
    """A dependency: the request body checked by `model` (its before-validator applies the
    shared rule and raises Rejected), documented in the OpenAPI schema by the route."""
    async def dependency(request: Request):
        body = parse_json(await read_body(request, limit))
        if model is None:
            return body
        try:
            return model.model_validate(body)
        except ValidationError as e:
            raise _first_error(e.errors()) from None
    return Depends(dependency)


def documented(model):
    """openapi_extra declaring `model` as the route's JSON body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _first_error(errors):
    error = errors[0] if errors else {}
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "path", "query")]
    field = ".".join(loc) or None
    return Rejected(400, field, "%s: %s" % (field or "request", error.get("msg", "invalid")))


async def device_id(device: str) -> str:
    if not is_device_id(device):
        raise Rejected(400, "device", schemas.DEVICE_RULE)
    return device


class CountRequests:
    """ASGI middleware: each request's route template, method, status and time to metrics
    (plain ASGI: the @app.middleware kind costs a task and a stream per request)."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            self.metrics.http(getattr(route, "path", "unmatched"), scope["method"], status[0],
                              time.perf_counter() - started)


bearer = HTTPBearer(auto_error=False, description="an API key from `soundbox cloud key create`")


def create_app(cloud):
    """The app. Routes are coroutines that call the Cloud directly on the event loop: each
    call is a few indexed SQLite statements, and one thread doing them all beat 40 pool
    threads queueing on the database locks (measured 280 payments/s at 100 clients with
    the pool). What can take long (stats over every payment, campaigns over thousands of
    devices, artifact files) runs on a worker thread."""
    app = FastAPI(title="Soundbox cloud", version="1", summary="Payments to soundboxes, devices, commands, OTA",
                  description=__doc__)
    metrics = cloud.metrics

    async def caller(credentials: Annotated[Optional[HTTPAuthorizationCredentials], Security(bearer)]):
        header = None if credentials is None else "%s %s" % (credentials.scheme, credentials.credentials)
        return cloud.authenticate(header)

    Caller = Annotated[object, Depends(caller)]
    Device = Annotated[str, Depends(device_id)]

    app.add_middleware(CountRequests, metrics=metrics)

    @app.exception_handler(Rejected)
    async def rejected(request, e):
        headers = {}
        if e.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(e.retry_after_s)))
        return JSONResponse(e.body(), e.http_status, headers=headers)

    @app.exception_handler(Unauthorized)
    async def unauthorized(request, e):
        return JSONResponse({"error": str(e), "field": "authorization"}, 401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e):
        return JSONResponse(_first_error(e.errors()).body(), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request, e):
        if e.status_code == 404:
            message = "no such path: %s" % request.url.path
        elif e.status_code == 405:
            message = "%s is not allowed on %s" % (request.method, request.url.path)
        else:
            message = e.detail if isinstance(e.detail, str) else ERROR_TITLES.get(e.status_code, "error")
        return JSONResponse({"error": message, "field": None}, e.status_code, headers=e.headers)

    @app.exception_handler(Exception)
    async def internal(request, e):   # a bug, not bad input: one log line, a plain 500
        log.error("internal error on %s %s: %r", request.method, request.url.path, e)
        return JSONResponse({"error": "internal error", "field": None}, 500)

    # load balancer and monitoring: no key

    @app.get("/health", tags=["ops"], summary="liveness: 200 while the process serves")
    async def health():
        return cloud.health()

    @app.get("/ready", tags=["ops"], summary="readiness: 200 only while linked to the broker")
    async def ready():
        state = cloud.health()
        return JSONResponse(state, 200 if state["ok"] else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    async def prometheus():
        return Response(await asyncio.to_thread(metrics.render), media_type=CONTENT_TYPE)

    # payments

    @app.post("/payments", status_code=202, tags=["payments"], openapi_extra=documented(schemas.Payment),
              summary="announce a payment on the merchant's soundbox (psp)")
    async def pay(who: Caller, body: schemas.Payment = json_body(schemas.Payment)):
        return cloud.pay(who, body.device, body.amount, body.txn, body.provider)

    @app.get("/payments/{txn:path}", tags=["payments"], summary="a payment's status, acks and latencies")
    async def payment(who: Caller, txn: str):
        if not is_txn(txn):
            raise Rejected(400, "txn", "txn must be 1-64 printable ASCII characters without spaces")
        return cloud.payment(who, txn)

    @app.put("/webhook", tags=["payments"], openapi_extra=documented(schemas.Webhook),
             summary="where payment outcomes are POSTed, signed; answers the signing secret once")
    async def set_webhook(who: Caller, body: schemas.Webhook = json_body(schemas.Webhook)):
        # On a thread: the URL's host is resolved, and a slow DNS must not stall payments.
        return await asyncio.to_thread(cloud.set_webhook, who, body.url)

    @app.get("/webhook", tags=["payments"], summary="the tenant's webhook endpoint (no secret)")
    async def webhook(who: Caller):
        return cloud.webhook(who)

    # devices and commands

    @app.get("/devices", tags=["devices"], summary="the caller's tenant's devices")
    async def devices(who: Caller):
        return cloud.devices(who)

    @app.post("/devices", status_code=201, tags=["devices"], openapi_extra=documented(schemas.Device),
              summary="register a device to a tenant with its merchant profile (operator)")
    async def register(who: Caller, body: schemas.Device = json_body(schemas.Device)):
        return cloud.register(who, body.id, body.tenant, body.profile(), body.tags)

    @app.get("/devices/{device}", tags=["devices"])
    async def device(who: Caller, device: Device):
        return cloud.device(who, device)

    @app.post("/devices/{device}/move", tags=["devices"], openapi_extra=documented(schemas.Move),
              summary="hand a device to another tenant (admin)")
    async def move(who: Caller, device: Device, body: schemas.Move = json_body(schemas.Move)):
        return cloud.move(who, device, body.tenant)

    @app.get("/devices/{device}/tags", tags=["devices"])
    async def tags(who: Caller, device: Device):
        return {"device": device, "tags": cloud.tags(who, device)}

    @app.post("/devices/{device}/tags", tags=["devices"], openapi_extra=documented(schemas.Tags))
    async def change_tags(who: Caller, device: Device, body: schemas.Tags = json_body(schemas.Tags)):
        return {"device": device, "tags": cloud.change_tags(who, device, body.add, body.remove)}

    @app.post("/devices/{device}/commands", status_code=202, tags=["devices"],
              openapi_extra=documented(schemas.Command), summary="send a command; the box's answer is kept")
    async def command(who: Caller, device: Device, body: schemas.Command = json_body(schemas.Command)):
        return cloud.command(who, device, body.to_device())

    @app.get("/devices/{device}/commands/{command_id}", tags=["devices"], summary="a command and the box's answer")
    async def command_status(who: Caller, device: Device, command_id: str):
        return cloud.command_status(who, device, command_id)

    @app.get("/stats", tags=["ops"], summary="payment counts and latency percentiles (the caller's tenant)")
    async def stats(who: Caller):
        return await asyncio.to_thread(cloud.stats, who)

    @app.get("/audit", tags=["ops"], summary="the newest audit rows: who did what, when, with what result (admin)")
    async def audit(who: Caller, limit: int = 100):
        return cloud.audit_rows(who, limit)

    # OTA

    @app.get("/ota/artifacts", tags=["ota"])
    async def artifacts(who: Caller):
        return cloud.artifacts_list(who)

    @app.post("/ota/artifacts", status_code=201, tags=["ota"], openapi_extra=documented(schemas.ArtifactName),
              summary="register <name>.bin + <name>.manifest.json already in the OTA directory (admin)")
    async def register_artifact(who: Caller, body: schemas.ArtifactName = json_body(schemas.ArtifactName)):
        return await asyncio.to_thread(cloud.register_artifact, who, body.name)

    @app.get("/ota/artifacts/{name}", tags=["ota"])
    async def artifact(who: Caller, name: str):
        return cloud.artifact(who, name)

    @app.put("/ota/artifacts/{filename}", status_code=201, tags=["ota"],
             summary="upload <name>.manifest.json (the signed envelope) first, then <name>.bin (admin)")
    async def upload(request: Request, filename: str):
        who = await caller(await bearer(request))
        if filename.endswith(ENVELOPE_SUFFIX):
            name = filename[:-len(ENVELOPE_SUFFIX)]
            data = await read_body(request, MAX_ENVELOPE_BYTES)
            await asyncio.to_thread(cloud.save_envelope, who, name, data)
            return JSONResponse({"name": name, "stored": filename, "next": "PUT /ota/artifacts/%s%s" % (name, BIN_SUFFIX)},
                                201)
        if filename.endswith(BIN_SUFFIX):
            data = await read_body(request, MAX_ARTIFACT_BYTES)
            return JSONResponse(await asyncio.to_thread(cloud.save_binary, who, filename[:-len(BIN_SUFFIX)], data), 201)
        raise Rejected(400, "artifact", "PUT /ota/artifacts/<name>%s or <name>%s" % (ENVELOPE_SUFFIX, BIN_SUFFIX))

    @app.get("/ota/campaigns", tags=["ota"])
    async def campaigns(who: Caller):
        return await asyncio.to_thread(cloud.campaigns_list, who)

    @app.post("/ota/campaigns", status_code=201, tags=["ota"],
              summary="start a campaign over the caller's tenant's devices (see campaigns.check_spec)")
    async def create_campaign(who: Caller, body: dict = json_body(None, MAX_CAMPAIGN_BYTES)):
        return await asyncio.to_thread(cloud.create_campaign, who, body)

    @app.get("/ota/campaigns/{campaign_id}", tags=["ota"])
    async def campaign(who: Caller, campaign_id: str):
        return await asyncio.to_thread(cloud.campaign, who, campaign_id)

    @app.post("/ota/campaigns/{campaign_id}/{action}", tags=["ota"], summary="pause, resume or abort")
    async def campaign_action(who: Caller, campaign_id: str, action: str):
        if action not in CAMPAIGN_ACTIONS:
            raise Rejected(404, None, "no such path: /ota/campaigns/%s/%s" % (campaign_id, action))
        return await asyncio.to_thread(cloud.campaign_action, who, campaign_id, action)

    return app
