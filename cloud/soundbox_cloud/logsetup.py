"""The cloud's log lines on stderr: one handler, set up where a cloud process starts
(service.serve), and the levels its --log-level may take (light to import: the CLI's parser)."""
import logging
import sys

from soundbox_cloud.errors import CloudError

# Every cloud module logs to this one logger. Left unconfigured, Python drops its info lines
# (campaign waves, artifacts registered, devices moved) and prints warnings bare, untimed.
LOGGER = "soundbox_cloud"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def log_to_stderr(level="info"):
    """One stderr handler (time, level, message) on the cloud's logger, at `level` (one of
    LOG_LEVELS); returns a callable that takes it off again. CloudError for another level."""
    if level not in LOG_LEVELS:
        raise CloudError("log level must be one of %s, got %r" % (", ".join(LOG_LEVELS), level))
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level.upper())

    def undo():
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return undo
