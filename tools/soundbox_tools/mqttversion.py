"""`--mqtt 3.1.1|5`: the MQTT version a box speaks, written as its config's "mqtt" level."""
LEVELS = {"3.1.1": 4, "5": 5}


def add_argument(parser):
    parser.add_argument("--mqtt", choices=sorted(LEVELS),
                        help="MQTT version the box speaks (default 3.1.1; 5 tells the broker its "
                             "64 KiB packet limit and hears the broker's reasons)")


def config(args):
    """The config keys --mqtt sets: {} when not given (the firmware's default, 3.1.1)."""
    return {"mqtt": LEVELS[args.mqtt]} if getattr(args, "mqtt", None) else {}
