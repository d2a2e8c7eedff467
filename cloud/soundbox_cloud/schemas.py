"""Request bodies of the HTTP API as pydantic models, for validation and the OpenAPI schema.

Each model's before-validator applies the one shared rule for its body (validation.py,
soundbox.commands, the tag and tenant rules), so a refusal reads the same everywhere:
Rejected(status, field, reason), which the app sends as {"error", "field"}.
"""
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soundbox import commands
from soundbox.payment import MAX_PAISE
from soundbox.voice import LANGUAGES, PROVIDERS
from soundbox_cloud.auth import is_tenant
from soundbox_cloud.campaigns import is_tag
from soundbox_cloud.errors import Rejected
from soundbox_cloud.validation import DEVICE_ID, check_payment_request, is_device_id

DEVICE_RULE = "device must match %s" % DEVICE_ID.pattern
TENANT_RULE = "tenant must match [a-z0-9][a-z0-9-]{0,31}"
MAX_TAGS = 100
MAX_PROFILE_TEXT = 64


def _object(body):
    if not isinstance(body, dict):
        raise Rejected(400, "body", "request body must be a JSON object")
    return body


def _known_fields(body, allowed):
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise Rejected(400, extra[0], "unknown field '%s'" % extra[0])


def check_tags(value, field):
    if not isinstance(value, list) or len(value) > MAX_TAGS or not all(is_tag(t) for t in value):
        raise Rejected(400, field, "%s must be a list of at most %d tags ([A-Za-z0-9][A-Za-z0-9._:-]{0,31})"
                       % (field, MAX_TAGS))
    return value


def check_tenant(value, field="tenant"):
    if not is_tenant(value):
        raise Rejected(400, field, TENANT_RULE)
    return value


def _profile_text(value, field):
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_PROFILE_TEXT
                              or not value.isprintable()):
        raise Rejected(400, field, "%s must be 1-%d printable characters" % (field, MAX_PROFILE_TEXT))
    return value


def check_vpa(value):
    """A UPI virtual payment address: handle@bank."""
    _profile_text(value, "vpa")
    if value is not None:
        handle, _, bank = value.partition("@")
        if not handle or not bank or not all(ch.isalnum() or ch in "._-" for ch in handle + bank):
            raise Rejected(400, "vpa", "vpa must look like name@bank")
    return value


class Payment(BaseModel):
    """POST /payments: announce `amount` paise on `device`; `txn` is the PSP's id (idempotent)."""
    device: str = Field(pattern=DEVICE_ID.pattern, examples=["sb-0001"])
    amount: int = Field(ge=1, le=MAX_PAISE, description="integer paise", examples=[25000])
    txn: str = Field(min_length=1, max_length=64, description="1-64 printable ASCII, no spaces")
    provider: Optional[Literal[PROVIDERS]] = None

    @model_validator(mode="before")
    @classmethod
    def _rule(cls, body):
        device, amount, txn, provider = check_payment_request(body)
        return {"device": device, "amount": amount, "txn": txn, "provider": provider}


class Command(BaseModel):
    """POST /devices/<id>/commands; the cloud gives it an id. soundbox.commands has the rule."""
    model_config = ConfigDict(extra="allow")
    cmd: Literal[commands.COMMANDS]
    level: Optional[int] = Field(None, ge=1, le=commands.VOLUME_LEVELS, description="volume only")
    lang: Optional[Literal[LANGUAGES]] = Field(None, description="language only")

    @model_validator(mode="before")
    @classmethod
    def _rule(cls, body):
        body = dict(_object(body))
        body.pop("id", None)   # ids are the cloud's to give
        try:
            return commands.parse(body)
        except commands.CommandError as e:
            raise Rejected(400, e.field, e.reason) from None

    def to_device(self):
        return self.model_dump(exclude_none=True)


class Device(BaseModel):
    """POST /devices: register a device to a tenant with its merchant profile."""
    id: str = Field(pattern=DEVICE_ID.pattern)
    tenant: Optional[str] = Field(None, description="required for admin keys; others register into their own")
    name: Optional[str] = Field(None, max_length=MAX_PROFILE_TEXT, description="the merchant's shop name")
    vpa: Optional[str] = Field(None, description="the merchant's UPI address, name@bank")
    language: Optional[Literal[LANGUAGES]] = None
    tags: list[str] = Field(default_factory=list, description="region / partner tags")

    @model_validator(mode="before")
    @classmethod
    def _rule(cls, body):
        body = _object(body)
        _known_fields(body, cls.model_fields)
        if "id" not in body:
            raise Rejected(400, "id", "missing field 'id'")
        if not is_device_id(body["id"]):
            raise Rejected(400, "id", DEVICE_RULE)
        if body.get("tenant") is not None:
            check_tenant(body["tenant"])
        _profile_text(body.get("name"), "name")
        check_vpa(body.get("vpa"))
        if body.get("language") is not None and body["language"] not in LANGUAGES:
            raise Rejected(400, "language", "language must be one of %s" % ", ".join(LANGUAGES))
        check_tags(body.get("tags", []), "tags")
        return body

    def profile(self):
        return {"name": self.name, "vpa": self.vpa, "language": self.language}


class Move(BaseModel):
    """POST /devices/<id>/move: hand the device to another tenant."""
    tenant: str

    @model_validator(mode="before")
    @classmethod
    def _rule(cls, body):
        body = _object(body)
        _known_fields(body, cls.model_fields)
        if "tenant" not in body:
            raise Rejected(400, "tenant", "missing field 'tenant'")
        check_tenant(body["tenant"])
        return body


class Tags(BaseModel):
    """POST /devices/<id>/tags"""
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _rule(cls, body):
        if not isinstance(body, dict) or not set(body) <= {"add", "remove"}:
            raise Rejected(400, "body", 'body must be {"add": [tags], "remove": [tags]}')
        for field in ("add", "remove"):
            check_tags(body.get(field, []), field)
        return body


class ArtifactName(BaseModel):
    """POST /ota/artifacts: register <name>.bin + <name>.manifest.json already in the OTA dir."""
    name: str

    @model_validator(mode="before")
    @classmethod
    def _rule(cls, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise Rejected(400, "name", 'body must be {"name": "<artifact name>"}')
        return body


class Webhook(BaseModel):
    """PUT /webhook: where the tenant's payment outcomes are POSTed (signed)."""
    url: str = Field(examples=["https://psp.example/soundbox-events"])

    @model_validator(mode="before")
    @classmethod
    def _rule(cls, body):
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise Rejected(400, "url", 'body must be {"url": "https://..."}')
        return body
