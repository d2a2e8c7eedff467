"""The merchant's settings on flash: language and volume, one JSON file rewritten whole
(soundbox.storage writes by rename, so a power cut leaves the old or the new file).
The payment desk's own state (held, unsaid, backlog, tally) is soundbox.deskstores.
"""

import json

from soundbox.commands import VOLUME_LEVELS
from soundbox.deskstores import load_json

DEFAULT_VOLUME = 3


class Settings:
    NAME = "settings.json"

    def __init__(self, storage, default_lang, languages, log):
        self.storage = storage
        self.lang, self.volume = default_lang, DEFAULT_VOLUME
        saved = load_json(storage, self.NAME, log, dict, "defaults used")
        if saved:
            if saved.get("lang") in languages:
                self.lang = saved["lang"]
            if type(saved.get("volume")) is int and 1 <= saved["volume"] <= VOLUME_LEVELS:
                self.volume = saved["volume"]

    def save(self):
        self.storage.write(self.NAME, json.dumps({"lang": self.lang, "volume": self.volume}).encode())
