#!/usr/bin/env python3
"""Memory after a connection peak (issue 10), measured on an example server.

Starts a built example server (echo_server or http_server), reads its
resident set (VmRSS, /proc/PID/status) idle, then opens N connections
that each complete one exchange (so every handler greenlet has run and
parked) and stay open, reads the peak, closes them all, and reads the RSS
again after the hub has gone idle (1 s and 10 s later).

    cargo build --release --example echo_server --example http_server
    python3 scripts/rss_after_peak.py --server echo_server --connections 19900
    python3 scripts/rss_after_peak.py --server http_server --connections 19900

The fd limit of this script (and so of the server it starts) is raised to
the hard limit; N connections need about N fds on each side.

With --malloc-trim (needs gdb), the script then attaches gdb to the server,
prints glibc's malloc_stats() (how much of the heap is still in use versus
merely kept by the allocator) and calls malloc_trim(0), and reads the RSS
once more: what that gives back was free memory glibc had kept, not memory
the server still used.
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="echo_server", choices=["echo_server", "http_server"])
    ap.add_argument("--connections", type=int, default=19900)
    ap.add_argument("--profile", default="release")
    ap.add_argument("--malloc-trim", action="store_true")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 100:
        sys.exit(f"fd limit {hard} too low for {args.connections} connections")

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = os.path.join(root, "target", args.profile, "examples", args.server)
    cmd = [exe, "--port", "0"]
    if args.server == "http_server":
        cmd += ["--max-connections", str(args.connections + 100)]
    # The server's stderr goes to a file: malloc_stats() prints there.
    errlog = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, text=True)
    try:
        line = proc.stdout.readline().strip()
        addr = line.rsplit(" ", 1)[-1].removeprefix("http://")
        host, port = addr.rsplit(":", 1)
        port = int(port)
        time.sleep(0.5)
        before = rss_kib(proc.pid)

        if args.server == "echo_server":
            message, reply_len = b"x", 1
        else:
            message = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            reply_len = None
        conns = []
        for _ in range(args.connections):
            s = socket.create_connection((host, port))
            s.sendall(message)
            got = s.recv(4096)
            assert got, "server closed a connection"
            if reply_len is not None:
                assert len(got) == reply_len
            conns.append(s)
        time.sleep(1.0)
        peak = rss_kib(proc.pid)

        for s in conns:
            s.close()
        conns = []
        time.sleep(1.0)
        after_1s = rss_kib(proc.pid)
        time.sleep(9.0)
        after_10s = rss_kib(proc.pid)
        trimmed = None
        if args.malloc_trim:
            subprocess.run(
                ["gdb", "-p", str(proc.pid), "-batch",
                 "-ex", "call (void)malloc_stats()",
                 "-ex", "call (int)malloc_trim(0)"],
                capture_output=True, text=True)
            time.sleep(0.5)
            errlog.seek(0)
            stats = [l.rstrip() for l in errlog
                     if "bytes" in l or "Arena" in l or "Total" in l]
            trimmed = rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    print(f"{args.server} ({args.profile}), {args.connections} connections:")
    print(f"  RSS before   {before / 1024:8.1f} MiB")
    print(f"  RSS peak     {peak / 1024:8.1f} MiB")
    print(f"  RSS after 1s {after_1s / 1024:8.1f} MiB")
    print(f"  RSS after 10s{after_10s / 1024:8.1f} MiB ({(after_10s - before) / 1024:+.1f} MiB vs before)")
    if trimmed is not None:
        print("  glibc malloc_stats() after the peak (before malloc_trim):")
        for l in stats:
            print("     ", l)
        print(f"  RSS after malloc_trim(0) {trimmed / 1024:8.1f} MiB")


if __name__ == "__main__":
    main()
