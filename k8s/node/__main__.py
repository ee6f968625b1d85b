"""``python -m k8s.node up|down|status|load IMAGE...|ingress|backing NAMESPACE``
(see :mod:`k8s.node.cluster` and :mod:`k8s.node.addons`)."""

from __future__ import annotations

import argparse
import sys

from k8s.node.cluster import NodeError, down, load_images, log, status, up


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m k8s.node", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "load", "ingress", "backing"])
    parser.add_argument("args", nargs="*", help="load: image references; backing: a namespace")
    args = parser.parse_args()
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        elif args.command == "status":
            return status()
        elif args.command == "load":
            load_images(args.args)
        elif args.command == "ingress":
            from k8s.node.addons import ingress

            port = ingress()
            log(f"ingress (Traefik) on http://127.0.0.1:{port} (send the Ingress's Host header)")
        else:
            from k8s.node.addons import backing

            if len(args.args) != 1:
                parser.error("backing NAMESPACE")
            backing(args.args[0])
    except NodeError as exc:
        log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
