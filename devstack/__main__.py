"""python -m devstack up|down|status|logs|sink: the local stack behind `make up` and friends."""

from __future__ import annotations

import argparse
import signal

from devstack import stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the backing servers and services; wait until ready")
    commands.add_parser("down", help="stop everything `up` started and check the ports are free")
    commands.add_parser("status", help="what runs, with pids and ports")
    commands.add_parser("clean", help="delete the run folder: every local data and log")
    logs = commands.add_parser("logs", help="the tail of each process's log")
    logs.add_argument("names", nargs="*", help="programs (default: all)")
    logs.add_argument("-n", "--lines", type=int, default=30)
    logs.add_argument("-f", "--follow", action="store_true")
    # Its options are the sink's own (sink --help); aiohttp is imported only for it.
    commands.add_parser(
        "sink", help="run the SMS and push provider sink in the foreground", add_help=False
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "sink":
        from devstack import provider_sink

        provider_sink.main(rest)
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... logs | head` ends quietly
    if args.command == "up":
        return stack.up()
    if args.command == "down":
        return stack.down()
    if args.command == "status":
        return stack.status()
    if args.command == "clean":
        return stack.clean()
    return stack.logs(args.names, args.lines, args.follow)


if __name__ == "__main__":
    raise SystemExit(main())
