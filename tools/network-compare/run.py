#!/usr/bin/env python3
"""Confab vs headless Chromium under the same kernel-side network impairment.

Creates a private network namespace (loopback only), adds an nftables rule that drops a share of
the UDP packets entering it at random (and optionally polices a rate), then runs, inside it:
  1. a 1:1 call between two RTCPeerConnections in headless Chromium (chromium_call.html:
     1280x720 30 fps canvas, H.264 capped at --kbps), and
  2. `confab loopback` with the same size, frame rate and cap,
and prints both sets of figures as JSON lines. The namespace is deleted when done.

Needs root, nftables, chromium and chromium-driver (Debian packages), and a built confab.
Example:  sudo tools/network-compare/run.py --loss 5 --seconds 20 --confab target/release/confab
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def make_namespace(name, loss, rate_kbytes):
    sh("ip", "netns", "add", name)
    ns = ["ip", "netns", "exec", name]
    sh(*ns, "ip", "link", "set", "lo", "up")
    # Chromium gathers no host candidates without a non-loopback interface and a default route:
    # a veth pair inside the namespace gives it one (traffic still never leaves the namespace).
    sh(*ns, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    sh(*ns, "ip", "addr", "add", "10.77.0.1/24", "dev", "v0")
    sh(*ns, "ip", "addr", "add", "10.77.0.2/24", "dev", "v1")
    sh(*ns, "ip", "link", "set", "v0", "up")
    sh(*ns, "ip", "link", "set", "v1", "up")
    sh(*ns, "ip", "route", "add", "default", "via", "10.77.0.2", "dev", "v0")
    sh(*ns, "nft", "add", "table", "inet", "t")
    sh(*ns, "nft", "add", "chain", "inet", "t", "in",
       "{ type filter hook input priority 0; }")
    if loss > 0:
        sh(*ns, "nft", "add", "rule", "inet", "t", "in", "udp", "dport", "1-65535",
           "numgen", "random", "mod", "100", "<", str(loss), "drop")
    if rate_kbytes > 0:
        sh(*ns, "nft", "add", "rule", "inet", "t", "in", "udp", "dport", "1-65535",
           "limit", "rate", "over", f"{rate_kbytes}", "kbytes/second", "drop")
    return ns


def webdriver(port, method, path, body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())["value"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"webdriver {method} {path}: {e.read().decode()[:500]}") from None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_inside(args):
    """Runs inside the namespace: drives Chromium through chromedriver, prints its result."""
    port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        binary = "/usr/lib/chromium/chromium"
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": binary if os.path.exists(binary) else "chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
                     "--disable-background-networking", "--disable-component-update",
                     "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
                     "--window-size=1280,800"]}}}}
        session = webdriver(port, "POST", "/session", caps)["sessionId"]
        try:
            webdriver(port, "POST", f"/session/{session}/timeouts",
                      {"script": (args.seconds + 60) * 1000})
            url = (f"file://{HERE}/chromium_call.html?seconds={args.seconds}&kbps={args.kbps}"
                   f"&width={args.width}&height={args.height}&fps={args.fps}")
            webdriver(port, "POST", f"/session/{session}/url", {"url": url})
            result = webdriver(port, "POST", f"/session/{session}/execute/async", {
                "script": "const done = arguments[0]; window.result.then(done);",
                "args": []}, timeout=args.seconds + 90)
        finally:
            webdriver(port, "DELETE", f"/session/{session}")
    finally:
        driver.kill()
    print(json.dumps(result))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loss", type=int, default=5, help="percent of UDP packets dropped")
    p.add_argument("--rate-kbytes", type=int, default=0, help="police UDP at this many kB/s")
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--kbps", type=int, default=1500)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--confab", default="target/release/confab")
    p.add_argument("--skip-confab", action="store_true")
    p.add_argument("--skip-chromium", action="store_true")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inside:
        chromium_inside(args)
        return
    name = f"cfbcmp{os.getpid()}"
    ns = make_namespace(name, args.loss, args.rate_kbytes)
    try:
        if not args.skip_chromium:
            r = subprocess.run(ns + [sys.executable, os.path.abspath(__file__), "--inside",
                                     "--seconds", str(args.seconds), "--kbps", str(args.kbps),
                                     "--width", str(args.width), "--height", str(args.height),
                                     "--fps", str(args.fps)],
                               capture_output=True, text=True)
            out = r.stdout.strip().splitlines()
            print(json.dumps({"who": "chromium", "loss": args.loss,
                              "result": json.loads(out[-1]) if out else r.stderr[-2000:]}))
        if not args.skip_confab:
            r = subprocess.run(ns + [args.confab, "loopback", "--json",
                                     "--seconds", str(args.seconds),
                                     "--bitrate-kbps", str(args.kbps),
                                     "--resolution", f"{args.width}x{args.height}",
                                     "--fps", str(args.fps)],
                               capture_output=True, text=True)
            try:
                result = json.loads(r.stdout)
            except json.JSONDecodeError:
                result = {"stdout": r.stdout[-2000:], "stderr": r.stderr[-2000:]}
            print(json.dumps({"who": "confab", "loss": args.loss, "result": result}))
    finally:
        sh("ip", "netns", "delete", name, check=False)


if __name__ == "__main__":
    main()
