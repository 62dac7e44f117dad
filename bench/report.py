#!/usr/bin/python3
"""bench/report.py: render a bench results file (bench/results/latest.json) as the Markdown
tables of docs/PERFORMANCE.md.

Usage: /usr/bin/python3 bench/report.py [bench/results/latest.json]
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def f0(x):
    return "-" if x is None else "{:,.0f}".format(x)


def f2(x):
    return "-" if x is None else "%.2f" % x


def fx(x):
    return "-" if x is None else "%.2fx" % x


def pct(x):
    return "-" if x is None else "%.0f%%" % x


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "results", "latest.json")
    with open(path) as f:
        r = json.load(f)
    m = r["machine"]
    s = r["settings"]
    out = []
    out.append("Run: %s, %s mode, %d CPUs (%s), kernel %s, %s MB RAM; %s; %s; proxies on CPU %s, "
               "load and backends on CPU %s; medians of %d rounds; %.0f s." % (
                   r["date"], r["mode"], m["cpus"], m["cpu_model"], m["kernel"], m["mem_mb"],
                   r["versions"].get("keymux", "?").replace("This is ", "") + (" (" + r["versions"]["keymux_git"] + ")"
                                                      if "keymux_git" in r["versions"] else ""),
                   r["versions"].get("nutcracker", "?").replace("This is ", ""), s["proxy_cpus"], s["load_cpus"],
                   s["rounds"], r.get("elapsed_s", 0)))
    out.append("")
    out.append("| workload | keymux req/s | nutcracker req/s | ratio | keymux CPU us/req | "
               "nutcracker CPU us/req | ratio | keymux peak RSS KB | nutcracker peak RSS KB | ratio |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in r["workloads"]:
        k, n = w["keymux"], w["nutcracker"]
        if k["status"] != "ok" and not k.get("rounds"):
            out.append("| %s | %s | %s | - | - | %s | - | - | %s | - |" % (
                w["title"], "unavailable", f0(n.get("rps")), f2(n.get("cpu_us_per_req")),
                n.get("peak_rss_kb", "-")))
            continue
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            w["title"], f0(k.get("rps")), f0(n.get("rps")), fx(w["ratio"]["rps"]),
            f2(k.get("cpu_us_per_req")), f2(n.get("cpu_us_per_req")), fx(w["ratio"]["cpu"]),
            f0(k.get("peak_rss_kb")), f0(n.get("peak_rss_kb")), fx(w["ratio"]["rss"])))
    fr = r.get("fixed_rate")
    if fr:
        out.append("| GET at a fixed %d/s, both at once | | | | %s | %s | %s | | | |" % (
            fr["rate"], f2(fr["keymux"]["cpu_us_per_req"]), f2(fr["nutcracker"]["cpu_us_per_req"]),
            fx(fr["ratio"])))
    out.append("")
    be = [w for w in r["workloads"]
          if w["keymux"].get("backend_us_per_req") is not None
          or w["nutcracker"].get("backend_us_per_req") is not None]
    if be:
        out.append("| backends' CPU per request (all servers), us | through keymux | "
                   "through nutcracker | ratio |")
        out.append("| --- | ---: | ---: | ---: |")
        for w in be:
            kb, nb = w["keymux"].get("backend_us_per_req"), w["nutcracker"].get("backend_us_per_req")
            out.append("| %s | %s | %s | %s |" % (
                w["title"], f2(kb), f2(nb), fx(kb / nb if kb is not None and nb else None)))
        out.append("")
    lat = r.get("latency")
    if lat:
        out.append("| GET at %d/s, us | p50 | p99 | added p50 | added p99 |" % lat["rate"])
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for name in ("direct", "keymux", "nutcracker"):
            d = lat[name]
            out.append("| %s | %s | %s | %s | %s |" % (
                name, d["p50_us"], d["p99_us"], d.get("added_p50_us", "-"), d.get("added_p99_us", "-")))
        out.append("")
    bm = r.get("big_mget")
    if bm:
        out.append("| MGET of 10,000 keys (median of %d), us | median | min | max | vs direct |" % bm["reps"])
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for name in ("direct", "keymux", "nutcracker"):
            d = bm[name]
            vs = {"direct": 1.0, "keymux": bm["keymux_vs_direct"],
                  "nutcracker": bm["nutcracker_vs_direct"]}[name]
            out.append("| %s | %s | %s | %s | %s |" % (
                name, f0(d["median_us"]), f0(d["min_us"]), f0(d["max_us"]), fx(vs)))
        out.append("")
    if r.get("memory_burst"):
        out.append("| burst: %d clients x MGET 10 x 1 KB | RSS before KB | peak KB | 10 s after KB | "
                   "growth given back |" % r["memory_burst"][0]["clients"])
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for row in r["memory_burst"]:
            for kind in ("keymux", "nutcracker"):
                d = row[kind]
                if d.get("status") != "ok":
                    out.append("| %s -m %d | %s | | | |" % (kind, row["mbuf"], d.get("status")))
                    continue
                out.append("| %s -m %d | %s | %s | %s | %s |" % (
                    kind, row["mbuf"], f0(d["rss_before_kb"]), f0(d["peak_kb"]), f0(d["rss_10s_kb"]),
                    pct(d["given_back_pct"])))
        out.append("")
    if r.get("idle"):
        out.append("| %d idle clients | RSS before KB | RSS with them KB | bytes per client |" %
                   r["idle"][0]["clients"])
        out.append("| --- | ---: | ---: | ---: |")
        for row in r["idle"]:
            for kind in ("keymux", "nutcracker"):
                d = row[kind]
                if d.get("status") != "ok":
                    continue
                out.append("| %s (round %d) | %s | %s | %.0f |" % (
                    kind, row["round"], f0(d["rss_before_kb"]), f0(d["rss_idle_kb"]),
                    d["bytes_per_client"]))
        out.append("")
    out.append("| target | measured | |")
    out.append("| --- | --- | --- |")
    for t in r["targets"]:
        out.append("| %s | %s | %s |" % (t["target"], t["measured"], t["status"]))
    if r.get("problems"):
        out.append("")
        out.append("Problems seen during the run:")
        out.append("")
        for p in r["problems"]:
            out.append("- " + p)
    print("\n".join(out))


if __name__ == "__main__":
    main()
