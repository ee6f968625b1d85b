"""``python -m k8s.node up|down|status|load IMAGE...`` (see :mod:`k8s.node.cluster`)."""

from __future__ import annotations

import argparse
import sys

from k8s.node.cluster import NodeError, down, load_images, log, status, up


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m k8s.node", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "load"])
    parser.add_argument("images", nargs="*", help="load: image references to import")
    args = parser.parse_args()
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        elif args.command == "status":
            return status()
        else:
            load_images(args.images)
    except NodeError as exc:
        log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
