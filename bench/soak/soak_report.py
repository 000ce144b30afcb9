#!/usr/bin/python3
"""Sampler and report for bench/soak/daemon_soak.sh (docs/benchmarks.md, "Daemon soak").

  soak_report.py sample --work DIR --csv FILE --duration-s S --sample-s S [--churn-site NAME]
                        NAME:PID_OR_PIDFILE:METRICS_PORT...
  soak_report.py summarize --csv FILE [--gossip-ms MS] [--log-max-bytes B] [--log-files K]
                           [--json FILE] [--exit-codes NAME:RC...] [--churn-site NAME]

`sample` appends one CSV row per site every --sample-s seconds, read from
/proc/PID (VmRSS, VmHWM, threads, open fds), the site's state/status.json
(gossip rounds, bytes, shares), the sizes of its log files, and one scrape of
its Prometheus endpoint. It stops early, exiting 1, if a daemon dies (the
churned site, restarted on purpose, is read from its pid file at every sample).

`summarize` can also be run on the CSV of a soak still in progress. It exits 0
when every bound holds (PASS), 1 otherwise.
"""
import argparse
import csv
import json
import os
import socket
import sys
import time

FIELDS = [
    "t_s", "site", "pid", "alive", "rss_kib", "hwm_kib", "threads", "fds", "rounds",
    "bytes_in", "bytes_out", "shares_accepted", "shares_rejected", "peers_connected", "phase",
    "steps_done", "log_bytes", "log_file_count", "stderr_bytes", "metrics_ok", "loadavg1",
]

# The bounds a soak must meet (docs/benchmarks.md states them).
MAX_SLOPE_KIB_PER_H = 1024.0  # second-half RSS growth
FD_THREAD_SLACK = 2           # second-half max may exceed the first-half max by this much


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def status_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}  # rewritten atomically, so only "not there yet"


def dir_bytes(path):
    total, count = 0, 0
    try:
        for entry in os.scandir(path):
            if entry.is_file():
                total += entry.stat().st_size
                count += 1
    except OSError:
        pass
    return total, count


def scrape(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return 1 if b"dpnode_bytes_in" in data else 0
    except OSError:
        return 0


def current_pid(pid_or_file):
    if pid_or_file.isdigit():
        return int(pid_or_file)
    try:
        with open(pid_or_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return -1


def sample(args):
    sites = []
    for spec in args.sites:
        name, pid, port = spec.rsplit(":", 2)
        sites.append((name, pid, int(port)))
    start = time.monotonic()
    new = not os.path.exists(args.csv)
    dead = set()
    with open(args.csv, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        next_at = start
        while True:
            now = time.monotonic()
            t = now - start
            with open("/proc/loadavg") as la:
                load1 = float(la.read().split()[0])
            for name, pid_spec, port in sites:
                pid = current_pid(pid_spec)
                row = {k: "" for k in FIELDS}
                row.update(t_s=f"{t:.1f}", site=name, pid=pid, loadavg1=load1)
                try:
                    st = proc_status(pid)
                    fds = len(os.listdir(f"/proc/{pid}/fd"))
                    row.update(alive=1, rss_kib=st["VmRSS"], hwm_kib=st["VmHWM"],
                               threads=st["Threads"], fds=fds)
                except (OSError, KeyError):
                    row["alive"] = 0
                    if name == args.churn_site:
                        pass  # between a stop and its restart
                    elif name not in dead:
                        print(f"soak: {name} (pid {pid}) is gone at t={t:.0f}s", file=sys.stderr)
                    if name != args.churn_site:
                        dead.add(name)
                site_dir = os.path.join(args.work, name)
                js = status_json(os.path.join(site_dir, "state", "status.json"))
                for k in ("rounds", "bytes_in", "bytes_out", "shares_accepted", "shares_rejected",
                          "peers_connected", "phase", "steps_done"):
                    row[k] = js.get(k, "")
                row["log_bytes"], row["log_file_count"] = dir_bytes(os.path.join(site_dir, "log"))
                try:
                    row["stderr_bytes"] = os.path.getsize(os.path.join(site_dir, "stderr.txt"))
                except OSError:
                    row["stderr_bytes"] = ""
                row["metrics_ok"] = scrape(port) if row["alive"] else 0
                w.writerow(row)
            f.flush()
            if dead:
                return 1
            if t >= args.duration_s:
                return 0
            next_at += args.sample_s
            time.sleep(max(0.0, next_at - time.monotonic()))


def lsq_slope(xs, ys):
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def median(v):
    v = sorted(v)
    if not v:
        return float("nan")
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def summarize(args):
    rows = {}
    with open(args.csv) as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["site"], []).append(r)
    if not rows:
        print("soak: no samples", file=sys.stderr)
        return 1
    exit_codes = dict(e.split(":", 1) for e in (args.exit_codes or []))
    cap = args.log_max_bytes * (args.log_files + 1) if args.log_max_bytes else None
    t_end = max(float(r["t_s"]) for rs in rows.values() for r in rs)
    loads = [float(r["loadavg1"]) for rs in rows.values() for r in rs if r["loadavg1"]]
    report = {"duration_s": t_end, "gossip_interval_ms": args.gossip_ms,
              "log_cap_bytes": cap, "loadavg1_mean": sum(loads) / len(loads) if loads else None,
              "loadavg1_max": max(loads) if loads else None, "sites": {}}
    ok_all = True
    lines = []
    hdr = (f"{'site':<12} {'RSS@10%':>8} {'RSS end':>8} {'HWM':>8} {'slope 2nd half':>15} "
           f"{'per 1e5 rnd':>11} {'rounds':>9} {'MB out':>8} {'log max':>8} {'fds':>7} "
           f"{'threads':>7} {'exit':>4}  verdict")
    lines.append(hdr)
    lines.append(f"{'':<12} {'MiB':>8} {'MiB':>8} {'MiB':>8} {'KiB/h':>15} {'KiB':>11}")
    for site, rs in sorted(rows.items()):
        live = [r for r in rs if r["alive"] == "1"]
        problems = []
        if site == args.churn_site:
            # Restarted on purpose: its memory and counters start over, so
            # only the log cap and its final clean exit are checked.
            pids = {r["pid"] for r in rs}
            log_max = max(int(r["log_bytes"]) for r in rs)
            code = exit_codes.get(site)
            if cap is not None and log_max > cap:
                problems.append(f"log files {log_max} B > cap {cap} B")
            if code is not None and code != "0":
                problems.append(f"exit status {code} after SIGTERM")
            ok_all &= not problems
            hwm = max((int(r["hwm_kib"]) for r in live), default=0)
            lines.append(f"{site:<12} churned: {len(pids)} processes, HWM max {hwm / 1024:.1f} MiB, "
                         f"log max {log_max} B, exit {code if code is not None else '-'}  "
                         + ("PASS" if not problems else "FAIL: " + "; ".join(problems)))
            report["sites"][site] = {"pass": not problems, "problems": problems, "churned": True,
                                     "processes": len(pids), "hwm_kib": hwm,
                                     "log_bytes_max": log_max, "exit_code": code,
                                     "stderr_bytes_end": max((int(r["stderr_bytes"]) for r in rs
                                                              if r["stderr_bytes"]), default=0)}
            continue
        if len(live) != len(rs):
            problems.append("daemon died")
        if len(live) < 4:
            problems.append("too few samples")
            ok_all = False
            lines.append(f"{site:<12} FAIL: " + ", ".join(problems))
            report["sites"][site] = {"pass": False, "problems": problems}
            continue
        t = [float(r["t_s"]) for r in live]
        rss = [int(r["rss_kib"]) for r in live]
        T = t_end
        at10 = [x for tt, x in zip(t, rss) if 0.075 * T <= tt <= 0.125 * T] or [rss[0]]
        end = [x for tt, x in zip(t, rss) if tt >= 0.95 * T] or [rss[-1]]
        second = [(tt, x, r) for tt, x, r in zip(t, rss, live) if tt >= T / 2]
        slope_h = lsq_slope([tt / 3600 for tt, _, _ in second], [x for _, x, _ in second])
        rounds2 = [(int(r["rounds"]), x) for _, x, r in second if r["rounds"]]
        slope_r = lsq_slope([a / 1e5 for a, _ in rounds2], [x for _, x in rounds2])
        rounds_end = max((int(r["rounds"]) for r in live if r["rounds"]), default=0)
        rounds_half = min((int(r["rounds"]) for _, _, r in second if r["rounds"]), default=0)
        bytes_out = max((int(r["bytes_out"]) for r in live if r["bytes_out"]), default=0)
        log_max = max(int(r["log_bytes"]) for r in rs)
        files_max = max(int(r["log_file_count"]) for r in rs)
        stderr_end = max((int(r["stderr_bytes"]) for r in rs if r["stderr_bytes"]), default=0)
        warm = [r for r in live if 0.1 * T <= float(r["t_s"]) < T / 2]
        fd1 = max((int(r["fds"]) for r in warm), default=0)
        th1 = max((int(r["threads"]) for r in warm), default=0)
        fd2 = [int(r["fds"]) for _, _, r in second]
        th2 = [int(r["threads"]) for _, _, r in second]
        # Scrapes before the endpoint first answered (start-up) do not count.
        first_ok = next((i for i, r in enumerate(live) if r["metrics_ok"] == "1"), len(live))
        metrics_fail = sum(1 for r in live[first_ok:] if r["metrics_ok"] != "1")
        if first_ok == len(live):
            problems.append("metrics endpoint never answered")
        if not slope_h < MAX_SLOPE_KIB_PER_H:
            problems.append(f"RSS grows {slope_h:.0f} KiB/h in the second half")
        if cap is not None and log_max > cap:
            problems.append(f"log files {log_max} B > cap {cap} B")
        if max(fd2) > fd1 + FD_THREAD_SLACK:
            problems.append(f"fds rose to {max(fd2)} (first half max {fd1})")
        if max(th2) > th1 + FD_THREAD_SLACK:
            problems.append(f"threads rose to {max(th2)} (first half max {th1})")
        if rounds_end <= rounds_half:
            problems.append("no gossip rounds in the second half")
        if metrics_fail:
            problems.append(f"{metrics_fail} failed metrics scrapes")
        code = exit_codes.get(site)
        if code is not None and code != "0":
            problems.append(f"exit status {code} after SIGTERM")
        ok = not problems
        ok_all &= ok
        rotated = f"{files_max} files" if files_max else "none"
        lines.append(
            f"{site:<12} {median(at10) / 1024:>8.1f} {median(end) / 1024:>8.1f} "
            f"{max(int(r['hwm_kib']) for r in live) / 1024:>8.1f} {slope_h:>15.1f} "
            f"{slope_r:>11.2f} {rounds_end:>9} {bytes_out / 1e6:>8.1f} {log_max:>8} "
            f"{min(fd2)}-{max(fd2):<4} {min(th2)}-{max(th2):<4} {code if code is not None else '-':>4}  "
            + ("PASS" if ok else "FAIL: " + "; ".join(problems)))
        report["sites"][site] = {
            "pass": ok, "problems": problems, "rss_kib_at_10pct": median(at10),
            "rss_kib_end": median(end), "hwm_kib": max(int(r["hwm_kib"]) for r in live),
            "rss_slope_kib_per_h_second_half": slope_h,
            "rss_slope_kib_per_1e5_rounds_second_half": slope_r, "rounds": rounds_end,
            "bytes_out": bytes_out, "log_bytes_max": log_max, "log_files_max": files_max,
            "stderr_bytes_end": stderr_end, "fds_first_half_max": fd1,
            "fds_second_half": [min(fd2), max(fd2)], "threads_first_half_max": th1,
            "threads_second_half": [min(th2), max(th2)], "exit_code": code,
            "samples": len(rs)}
    report["pass"] = ok_all
    print(f"soak summary: {len(rows)} sites, {t_end / 60:.1f} min, gossip interval "
          f"{args.gossip_ms} ms, load average (1 min) mean {report['loadavg1_mean']:.2f} "
          f"max {report['loadavg1_max']:.2f}")
    print("\n".join(lines))
    print(f"bounds: second-half RSS slope < {MAX_SLOPE_KIB_PER_H:.0f} KiB/h; log bytes <= "
          f"{cap if cap is not None else '?'} (log_max_bytes x (log_files + 1)); second-half fds "
          f"and threads <= first-half max + {FD_THREAD_SLACK}; rounds still rising; every "
          f"metrics scrape answered; exit 0 on SIGTERM")
    print(f"stderr (uncapped copy of the log, outside the bound): "
          + ", ".join(f"{s} {v.get('stderr_bytes_end', 0) / 1e6:.2f} MB"
                      for s, v in sorted(report["sites"].items())))
    print("RESULT:", "PASS" if ok_all else "FAIL")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if ok_all else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--work", required=True)
    s.add_argument("--csv", required=True)
    s.add_argument("--duration-s", type=float, required=True)
    s.add_argument("--sample-s", type=float, default=5)
    s.add_argument("--churn-site", help="a site restarted on purpose (its pid file is re-read)")
    s.add_argument("sites", nargs="+", help="NAME:PID_OR_PIDFILE:METRICS_PORT")
    r = sub.add_parser("summarize")
    r.add_argument("--csv", required=True)
    r.add_argument("--gossip-ms", type=float)
    r.add_argument("--log-max-bytes", type=int)
    r.add_argument("--log-files", type=int)
    r.add_argument("--json")
    r.add_argument("--exit-codes", nargs="*")
    r.add_argument("--churn-site")
    a = p.parse_args()
    return sample(a) if a.cmd == "sample" else summarize(a)


if __name__ == "__main__":
    sys.exit(main())
