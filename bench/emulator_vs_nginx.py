"""Emulator vs nginx: one curl stream of the same file to /dev/null, interleaved rounds.

    python3 bench/emulator_vs_nginx.py [--size-mib 1024] [--rounds 5]

Seeds one object into a temporary emulator root, serves its data file with nginx (sendfile on,
one worker, its own config on 127.0.0.1) and the same object with ``python -m cosfast.emulator
--no-auth`` in a subprocess, then times ``curl -s -o /dev/null`` from each, alternating, after
one warm-up each. Prints the median GB/s of each and the ratio (goal: emulator >= 0.8 x nginx).
Needs Debian's nginx package and curl. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cosfast.emulator import Emulator  # noqa: E402

BUCKET = "bench-1250000000"
KEY = "bench.bin"

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /{key} {{ alias {data}; default_type application/octet-stream; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for offset in range(0, size, len(block)):
            f.write(block[: min(len(block), size - offset)])


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def curl_seconds(url: str, size: int) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download} %{http_code}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    seconds, downloaded, status = float(out[0]), int(out[1]), out[2]
    if status != "200" or downloaded != size:
        raise RuntimeError(f"{url}: status {status}, {downloaded} of {size} bytes")
    return seconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def only_child(pid: int) -> int:
    """nginx's single worker: the process that does the sending."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("nginx started no worker")


def start_emulator(root: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cosfast.emulator", "--root", str(root), "--no-auth"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in proc.stdout:
        if line.startswith("endpoint: "):
            return proc, line.split(": ", 1)[1].strip()
    raise RuntimeError("the emulator exited before printing its endpoint")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        print("nginx is not installed (Debian: apt-get install nginx)", file=sys.stderr)
        return 2
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    size = args.size_mib << 20
    tmp = Path(tempfile.mkdtemp(prefix="cosfast-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        source = tmp / "source.bin"
        write_file(source, size)
        seeder = Emulator(tmp / "root")
        seeder.create_bucket(BUCKET)
        info = seeder.put_object(BUCKET, KEY, path=source)
        source.unlink()
        # nginx's workers run as nobody: let them read the one data file.
        for folder in [tmp, *Path(info.path).relative_to(tmp).parents]:
            (tmp / folder).chmod(0o755)
        Path(info.path).chmod(0o644)
        port = free_port()
        (tmp / "nginx.conf").write_text(
            NGINX_CONF.format(tmp=tmp, port=port, key=KEY, data=info.path)
        )
        nginx = subprocess.Popen([nginx_bin, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)])
        procs.append(nginx)
        wait_listening(port)
        emulator, endpoint = start_emulator(tmp / "root")
        procs.append(emulator)
        urls = {"nginx": f"http://127.0.0.1:{port}/{KEY}", "emulator": f"{endpoint}/{BUCKET}/{KEY}"}
        senders = {"nginx": only_child(nginx.pid), "emulator": emulator.pid}
        for url in urls.values():
            curl_seconds(url, size)  # warm-up: page cache, first connection
        times: dict[str, list[float]] = {name: [] for name in urls}
        cpu: dict[str, list[float]] = {name: [] for name in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():
                before = cpu_seconds(senders[name])
                times[name].append(curl_seconds(url, size))
                cpu[name].append((cpu_seconds(senders[name]) - before) / (size / 2**30))
        rates = {name: [size / t / 1e9 for t in ts] for name, ts in times.items()}
        medians = {name: statistics.median(r) for name, r in rates.items()}
        print(f"object {args.size_mib} MiB, {args.rounds} interleaved rounds, curl -s -o /dev/null")
        for name in urls:
            print(
                f"{name:9s} median {medians[name]:.2f} GB/s, "
                f"server CPU {statistics.median(cpu[name]):.2f} s/GiB   rounds: "
                + " ".join(f"{r:.2f}" for r in rates[name])
            )
        ratios = [e / n for e, n in zip(rates["emulator"], rates["nginx"])]
        print(
            "ratio emulator/nginx: median of medians "
            f"{medians['emulator'] / medians['nginx']:.2f}, "
            f"median of paired rounds {statistics.median(ratios):.2f}"
        )
        return 0
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
