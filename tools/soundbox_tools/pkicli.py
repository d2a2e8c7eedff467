"""`soundbox pki init|device|revoke|rotate|check`: the command line over soundbox_tools.pki,
which the simulator and the other tools use without it."""

import os
import sys
import time

from soundbox_tools.pki import SERVICE_IDS, Pki, PkiError, check_device_id


def _pki(args):
    return Pki(args.dir)


def cmd_init(args):
    pki = _pki(args)
    had_ca = pki.exists()
    pki.init(force=args.force)
    print("%s CA, broker and cloud certificates in %s"
          % ("kept the existing" if had_ca and not args.force else "created a", pki.root))
    return 0


def _progress(done, total):
    if sys.stdout.isatty():
        print("\r  %d/%d issued" % (done, total), end="" if done < total else "\n", flush=True)


def cmd_device(args):
    pki = _pki(args)
    if args.count is None:
        print(pki.issue_device(args.id, reissue=args.reissue))
        return 0
    if args.count < 1:
        raise PkiError("--count must be at least 1")
    ids = ["%s-%04d" % (args.id, n) for n in range(1, args.count + 1)]
    for i in (ids[0], ids[-1]):
        check_device_id(i)  # a bad prefix fails before anything is written
    started = time.perf_counter()
    pki.issue_devices(ids, progress=_progress if args.count >= 1000 else None, reissue=args.reissue)
    took = time.perf_counter() - started
    print("issued %d device identities (%s .. %s) in %.1f s: %.0f per second, under %s"
          % (len(ids), ids[0], ids[-1], took, len(ids) / took, os.path.join(pki.root, "devices")))
    return 0


def cmd_revoke(args):
    serials = _pki(args).revoke(args.id, old_only=args.old)
    retired = serials and not args.old and args.id not in SERVICE_IDS
    print("revoked %d certificate(s) of %s%s; reload the broker (SIGHUP) to refuse them, restart it "
          "to also cut a live connection" % (len(serials), args.id, "; its payment key is retired"
                                             if retired else ""))
    return 0


def cmd_rotate(args):
    print(_pki(args).rotate(args.id))
    return 0


def cmd_check(args):
    problems = _pki(args).check(args.id)
    if problems:
        raise PkiError("%s: %s" % (args.id, "; ".join(problems)))
    print("%s: identity OK" % args.id)
    return 0


def register(sub):
    """Add `soundbox pki ...` to the CLI's subparsers."""
    p = sub.add_parser("pki", help="development CA, broker/cloud/device certificates, CRL")
    pki_sub = p.add_subparsers(dest="pki_command", required=True, metavar="ACTION")

    def action(name, func, help_text, with_id=True):
        a = pki_sub.add_parser(name, help=help_text)
        a.add_argument("--dir", default="certs", help="PKI workspace (default certs/)")
        if with_id:
            a.add_argument("id", metavar="ID")
        a.set_defaults(func=func)
        return a

    action("init", cmd_init, "create the CA, broker and cloud certificates (keeps an existing CA)",
           with_id=False).add_argument("--force", action="store_true", help="replace the CA too")
    device = action("device", cmd_device, "issue a device identity (CN = ID)")
    device.add_argument("--count", type=int, help="issue N devices; ID is then a prefix: sb -> sb-0001..sb-N")
    device.add_argument("--reissue", action="store_true",
                        help="also issue ids whose certificate is revoked (new certificate, new payment key)")
    action("revoke", cmd_revoke, "add an identity's certificates to the CRL").add_argument(
        "--old", action="store_true", help="only the certificates replaced by a rotation")
    action("rotate", cmd_rotate, "new key and certificate for the same device id")
    action("check", cmd_check, "report problems with a device bundle (expired, mismatched, ...)")
