"""Errors the cloud handler raises; each carries a one-line message meant for a person."""


class CloudError(Exception):
    """Base class: the CLI prints str(error) and exits 1, never a traceback."""


class BrokerUnavailable(CloudError):
    """The MQTT broker could not be reached or refused us."""


class Rejected(CloudError):
    """A request the cloud will not serve; maps straight onto an HTTP error.
    retry_after_s: for 429 and 503, when trying again makes sense (the Retry-After header)."""

    def __init__(self, http_status, field, message, retry_after_s=None):
        super().__init__(message)
        self.http_status = http_status
        self.field = field
        self.retry_after_s = retry_after_s

    def body(self):
        return {"error": str(self), "field": self.field}
