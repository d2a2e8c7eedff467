"""The runner's hook for a scenario's [ota] section.

The cloud's OTA campaigns are built elsewhere; whoever has one registers a creator:

    from soundbox_sim import ota
    ota.register_campaign_creator(fn)

fn(context) is called at the scenario's [ota].at with a dict: api (the cloud's URL),
certs (PKI root), devices (ids), artifact, waves, success_threshold, error_threshold,
state (the run's state directory). It returns a short text for the run's event log.
Without a creator the run notes "OTA not wired" and goes on.
"""

_creator = None


def register_campaign_creator(fn):
    global _creator
    _creator = fn


def start_campaign(runner, ota):
    if _creator is None:
        return "OTA campaign %s not started: no campaign creator registered (soundbox_sim.ota)" % ota["artifact"]
    context = {"api": runner.api, "certs": runner.pki.root, "devices": list(runner.ids),
               "artifact": ota["artifact"], "waves": list(ota["waves"]),
               "success_threshold": ota["success_threshold"], "error_threshold": ota["error_threshold"],
               "state": runner.o.state}
    return "OTA campaign %s: %s" % (ota["artifact"], _creator(context))
