"""The gevent client of compare-download (optional peer `gevent`).

The same work as the Rust clients: N GETs, C worker greenlets, a new
connection per request, the same request, read to EOF, the same checks.
Plain `socket` after `monkey.patch_all()`, as gevent users write it.

Run by the parent as:
    python3 gevent_client.py ADDR N CONC SIZE CORE
and prints one RESULT line like the Rust clients. The parent adds
target/pydeps to PYTHONPATH (`pip install --target target/pydeps gevent`).
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402


def cpu_ns():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return int((r.ru_utime + r.ru_stime) * 1e9)


def check(resp, size):
    head_end = resp.find(b"\r\n\r\n")
    if head_end < 0:
        raise ValueError("no end of head")
    head = resp[:head_end].decode()
    if not head.startswith("HTTP/1.1 200 "):
        raise ValueError("status is not 200")
    length = None
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    if length != size or len(resp) - head_end - 4 != length:
        raise ValueError("wrong body length")


def get(addr, req, size):
    s = socket.create_connection(addr)
    try:
        s.sendall(req)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        s.close()
    check(b"".join(chunks), size)


def main():
    addr, n, conc, size, core = sys.argv[1:6]
    host, port = addr.rsplit(":", 1)
    addr = (host, int(port))
    n, conc, size, core = int(n), int(conc), int(size), int(core)
    try:
        os.sched_setaffinity(0, {core})
    except OSError as e:
        print(f"warning: cannot pin to core {core}: {e}", file=sys.stderr)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    req = (
        f"GET /bytes HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "User-Agent: compare-download\r\nConnection: close\r\n\r\n"
    ).encode()
    get(addr, req, size)  # warm-up

    def worker(w):
        ok, error = 0, None
        for _ in range(w, n, conc):
            try:
                get(addr, req, size)
                ok += 1
            except Exception as e:  # noqa: BLE001
                error = error or repr(e)
        return ok, error

    t0, c0 = time.perf_counter_ns(), cpu_ns()
    workers = [gevent.spawn(worker, w) for w in range(min(conc, n))]
    gevent.joinall(workers)
    wall, cpu = time.perf_counter_ns() - t0, cpu_ns() - c0
    ok = sum(g.value[0] for g in workers)
    error = next((g.value[1] for g in workers if g.value[1]), None)
    line = (
        f"RESULT download gevent n={n} conc={conc} size={size} ok={ok} "
        f"wall_ns={wall} cpu_ns={cpu}"
    )
    if error:
        line += f" first_error={error}"
    print(line, flush=True)


if __name__ == "__main__":
    main()
