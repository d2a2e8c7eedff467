"""HTTP routes for OTA: artifacts, campaigns, device tags (called from api.py's dispatcher).

    GET  /ota/artifacts                          registered artifacts
    POST /ota/artifacts {"name": N}              register N.bin + N.manifest.json already in the OTA dir
    PUT  /ota/artifacts/N.manifest.json          upload the signed envelope (first) ...
    PUT  /ota/artifacts/N.bin                    ... then the binary; registered if it matches
    GET  /ota/artifacts/N                        one artifact, by name or manifest id
    GET  /ota/campaigns                          all campaigns, newest last
    POST /ota/campaigns {...}                    create (see campaigns.check_spec)
    GET  /ota/campaigns/C                        status: per-wave counts, per-device state
    POST /ota/campaigns/C/pause|resume|abort
    GET  /devices/D/tags, POST /devices/D/tags {"add": [...], "remove": [...]}
"""
from urllib.parse import unquote

from soundbox_cloud.artifacts import (BIN_SUFFIX, ENVELOPE_SUFFIX, MAX_ARTIFACT_BYTES, MAX_ENVELOPE_BYTES,
                                      ArtifactError)
from soundbox_cloud.errors import Rejected

CAMPAIGN_ACTIONS = ("pause", "resume", "abort")
MAX_CREATE_BYTES = 1024 * 1024   # room for an explicit list of 10,000 device ids


def handles(path):
    parts = path.split("/")
    return parts[1:2] == ["ota"] or (len(parts) == 4 and parts[1] == "devices" and parts[3] == "tags")


def _allow(method, allowed, path):
    if method not in allowed:
        raise Rejected(405, None, "%s is not allowed on %s" % (method, path))


def route(request, method, path):
    """(HTTP status, JSON body) for one OTA request; request is the ApiRequestHandler."""
    cloud = request.server.cloud
    parts = [unquote(p) for p in path.split("/")[1:]]
    try:
        if parts[0] == "devices":
            _allow(method, ("GET", "POST"), path)
            device = parts[1]
            if method == "POST":
                return 200, {"device": device, "tags": cloud.set_tags(device, request.read_json_body())}
            if cloud.store.device(device) is None:
                raise Rejected(404, "device", "unknown device %s" % device)
            return 200, {"device": device, "tags": cloud.campaign_store.tags(device)}
        if parts[1:] == ["artifacts"]:
            _allow(method, ("GET", "POST"), path)
            if method == "GET":
                return 200, [a.summary() for a in cloud.artifacts.all()]
            body = request.read_json_body()
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise Rejected(400, "name", 'body must be {"name": "<artifact name>"}')
            return 201, cloud.artifacts.register(body["name"]).summary()
        if len(parts) == 3 and parts[1] == "artifacts":
            _allow(method, ("GET", "PUT"), path)
            name = parts[2]
            if method == "GET":
                artifact = cloud.artifacts.get(name)
                if artifact is None:
                    raise Rejected(404, "artifact", "no registered artifact %s" % name)
                return 200, artifact.summary()
            if name.endswith(ENVELOPE_SUFFIX):
                name = name[:-len(ENVELOPE_SUFFIX)]
                cloud.artifacts.save_envelope(name, request.read_body(MAX_ENVELOPE_BYTES))
                return 201, {"name": name, "stored": name + ENVELOPE_SUFFIX,
                             "next": "PUT /ota/artifacts/%s%s" % (name, BIN_SUFFIX)}
            if name.endswith(BIN_SUFFIX):
                return 201, cloud.artifacts.save_binary(name[:-len(BIN_SUFFIX)],
                                                        request.read_body(MAX_ARTIFACT_BYTES)).summary()
            raise Rejected(400, "artifact", "PUT /ota/artifacts/<name>%s or <name>%s" % (ENVELOPE_SUFFIX, BIN_SUFFIX))
        if parts[1:] == ["campaigns"]:
            _allow(method, ("GET", "POST"), path)
            if method == "GET":
                return 200, cloud.campaigns.list()
            return 201, cloud.campaigns.create(request.read_json_body(MAX_CREATE_BYTES))
        if len(parts) == 3 and parts[1] == "campaigns":
            _allow(method, ("GET",), path)
            return 200, cloud.campaigns.status(parts[2])
        if len(parts) == 4 and parts[1] == "campaigns" and parts[3] in CAMPAIGN_ACTIONS:
            _allow(method, ("POST",), path)
            return 200, getattr(cloud.campaigns, parts[3])(parts[2])
    except ArtifactError as e:
        raise Rejected(e.http_status, e.field, str(e)) from None
    raise Rejected(404, None, "no such path: %s" % path)
