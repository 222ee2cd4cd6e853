#!/usr/bin/env python3
"""A Python client of `procward serve`, against Python's own subprocess call.

Runs `/bin/true` K times one at a time in each of:

- serve:    `spawn`, `wait`, `release` over the server's stdin/stdout,
            each answered before the next is sent (three round trips);
- one_trip: one `spawn` with `"wait": true, "release": true` (one round
            trip), when the server supports it: a server that answers
            `invalid_request`, or ignores the two keys and answers a
            running spawn, is reported as not supporting it;
- python:   `subprocess.run(["/bin/true"], capture_output=True)`.

The sides alternate within each round (the order rotates), so the drift
of a shared machine hits all alike. Standard library only.

Output on stdout, one JSON object per line: first
`{"one_trip": bool, "reason": str}`, then per round
`{"round": i, "serve": rate, "python": rate, "one_trip": rate | null}`
(rates in processes per second). A summary goes to stderr.

    python3 benches/serve_client.py --server target/release/procward
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

TRUE = "/bin/true"


class Server:
    """`procward serve` with the given flags, one request at a time."""

    def __init__(self, binary, flags):
        self.proc = subprocess.Popen(
            [binary, "serve", *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.next_id = 0

    def call(self, request):
        self.next_id += 1
        request["id"] = self.next_id
        self.proc.stdin.write(json.dumps(request, separators=(",", ":")) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("procward serve closed its stdout")
        response = json.loads(line)
        if response.get("id") != self.next_id:
            raise RuntimeError(f"answer to another request: {line}")
        return response

    def ok(self, request):
        response = self.call(request)
        if not response.get("ok"):
            raise RuntimeError(f"{request['op']} failed: {response}")
        return response["result"]

    def run_true(self):
        handle = self.ok({"op": "spawn", "argv": [TRUE]})["handle_id"]
        done = self.ok({"op": "wait", "handle_id": handle})
        if done["exit_code"] != 0:
            raise RuntimeError(f"/bin/true ended {done}")
        self.ok({"op": "release", "handle_id": handle})

    def run_true_one_trip(self):
        done = self.ok({"op": "spawn", "argv": [TRUE], "wait": True, "release": True})
        if done.get("exit_code") != 0:
            raise RuntimeError(f"/bin/true ended {done}")

    def one_trip_support(self):
        """Whether `spawn` takes `wait` and `release`, and if not, why."""
        response = self.call(
            {"op": "spawn", "argv": [TRUE], "wait": True, "release": True}
        )
        if not response.get("ok"):
            error = response.get("error", {})
            return False, f"the server answered {error.get('kind')}: {error.get('message')}"
        result = response["result"]
        handle = result.get("handle_id")
        if result.get("status") == "running" or result.get("exit_code") is None:
            # The keys were ignored: clean the handle up the long way.
            self.ok({"op": "wait", "handle_id": handle})
            self.ok({"op": "release", "handle_id": handle})
            return False, "the server ignored `wait` and `release` (it answered a running spawn)"
        if result.get("exit_code") != 0:
            return False, f"/bin/true ended {result}"
        if handle is not None and self.call({"op": "poll", "handle_id": handle}).get("ok"):
            self.ok({"op": "release", "handle_id": handle})
            return False, "the handle was still known after a spawn with `release`"
        return True, ""

    def close(self):
        self.proc.stdin.close()
        code = self.proc.wait(timeout=60)
        if code != 0:
            raise RuntimeError(f"procward serve exited with {code}")


def python_true():
    subprocess.run([TRUE], capture_output=True, check=True)


def rate(k, run):
    start = time.perf_counter()
    for _ in range(k):
        run()
    return k / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="the procward binary")
    parser.add_argument("--iterations", type=int, default=300, help="runs per side and round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--flag", action="append", default=[],
                        help="a flag for `procward serve` (default: none)")
    args = parser.parse_args()

    server = Server(args.server, args.flag)
    try:
        one_trip, reason = server.one_trip_support()
        print(json.dumps({"one_trip": one_trip, "reason": reason}), flush=True)
        sides = {"serve": server.run_true, "python": python_true}
        if one_trip:
            sides["one_trip"] = server.run_true_one_trip
        names = list(sides)
        for name in names:  # warm-up: the page cache, the server's threads
            rate(max(args.iterations // 4, 1), sides[name])
        rates = {name: [] for name in names}
        for round_ in range(args.rounds):
            line = {"round": round_, "one_trip": None}
            for i in range(len(names)):
                name = names[(i + round_) % len(names)]
                line[name] = rate(args.iterations, sides[name])
                rates[name].append(line[name])
            print(json.dumps(line), flush=True)
    finally:
        server.close()

    if not one_trip:
        print(f" one_trip: unavailable ({reason})", file=sys.stderr)
    python = statistics.median(rates["python"])
    for name in names:
        median = statistics.median(rates[name])
        print(f"{name:>9}: {median:8.0f}/s (median of {args.rounds}), "
              f"{median / python:.2f}x subprocess.run", file=sys.stderr)


if __name__ == "__main__":
    main()
