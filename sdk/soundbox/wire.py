"""The wire contract between a box and the cloud: topic names, a box's states and ack
statuses, in one place for the firmware, the cloud, the broker's ACL and the tools. Runs on
MicroPython and CPython. The payloads live beside their rules: notifications, their MAC
and the ack message in `soundbox.payment`; the command schema and its check in
`soundbox.commands`; the OTA job framing (JSON head, chunk table) in `soundbox.otamanifest`
and the chunk requests and refusal notices in `soundbox.otatransfer`.

Every topic is sb/<device id>/<kind>; who may publish or read each kind is the broker's
ACL (soundbox_tools.broker), built from the names here.
"""

PREFIX = "sb/"

# box -> cloud
ACK = "ack"  # QoS 1: {"txn", "status", ...} for each notification
STATUS = "status"  # QoS 1, retained: {"state": ONLINE | OFFLINE, "fw"}; the will says OFFLINE
TELEMETRY = "telemetry"  # QoS 0: battery, heap, versions
CMDACK = "cmdack"  # QoS 1: the answer to a command (commands.ack)
OTA_REQ = "ota/req"  # QoS 0: a chunk request
OTA_STATUS = "ota/status"  # QoS 1: an update's progress and verdict

# cloud -> box
NOTIFY = "notify"  # QoS 1: a signed payment notification
CMD = "cmd"  # QoS 1: a command (commands.parse)
OTA_JOB = "ota/job"  # QoS 1: an update's manifest, or its cancel
OTA_CHUNK = "ota/chunk"  # QoS 0: one chunk of an artifact

# A box's state on its status topic: online once connected, offline by its last will.
ONLINE = "online"
OFFLINE = "offline"
DEVICE_STATES = (ONLINE, OFFLINE)

# The statuses a box acks a notification with. A final one settles the payment; a
# duplicate only says the box has it already (its first ack, or the next, settles it).
# A duplicate of one the box has finished carries "was": the final status it finished
# with (ANNOUNCED, STALE or FAILED: from its ledger), which settles the payment as that
# ack would have: the broker may have lost the first (a restart, kill -9) and the cloud
# asks again (any other value is ignored). One still to be said, or held for the clock,
# has no "was"; nor does an older box's: its duplicate settles nothing.
ANNOUNCED = "announced"
DUPLICATE = "duplicate"
STALE = "stale"  # too old to say aloud: counted and summarised instead
INVALID = "invalid"  # its MAC or fields do not check out
FAILED = "failed"  # not said: playback failed, or no trusted clock came in time
FINAL_ACK_STATUSES = (ANNOUNCED, STALE, INVALID, FAILED)
ACK_STATUSES = (ANNOUNCED, DUPLICATE, STALE, INVALID, FAILED)


def topic(device_id, kind):
    """sb/<device_id>/<kind>."""
    return PREFIX + device_id + "/" + kind


def any_device(kind):
    """The filter for one kind from every box: sb/+/<kind>."""
    return PREFIX + "+/" + kind


def parts(topic_name):
    """(device id, kind) of sb/<id>/<kind> (kind may hold a '/': ota/job), or None for a
    topic outside the contract."""
    if not topic_name.startswith(PREFIX):
        return None
    end = topic_name.find("/", len(PREFIX))
    if end <= len(PREFIX) or end == len(topic_name) - 1:
        return None
    return topic_name[len(PREFIX):end], topic_name[end + 1:]


def device_of(topic_name):
    """The device id in sb/<id>/<kind>, or None for a topic outside the contract."""
    split = parts(topic_name)
    return split[0] if split else None
