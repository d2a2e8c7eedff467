"""Errors the cloud handler raises; each carries a one-line message meant for a person."""


class CloudError(Exception):
    """Base class: the CLI prints str(error) and exits 1, never a traceback."""


class BrokerUnavailable(CloudError):
    """The MQTT broker could not be reached or refused us."""


class Rejected(CloudError):
    """A payment request the handler will not publish; maps straight onto an HTTP error."""

    def __init__(self, http_status, field, message):
        super().__init__(message)
        self.http_status = http_status
        self.field = field

    def body(self):
        return {"error": str(self), "field": self.field}
