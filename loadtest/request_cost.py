#!/usr/bin/env python3
"""Results of loadtest/run-request-cost.sh: one row per k6 run, the Markdown table, the CI check.

  request_cost.py row SUMMARY.json LABEL RUN KIND RATE TICKS_BEFORE TICKS_AFTER CLK_TCK T0 T1
      prints one tab-separated row of results.tsv (header: `request_cost.py header`)
  request_cost.py table DIR
      Markdown: medians per (binary, kind, rate) from DIR/results.tsv with the B/A CPU ratio,
      then the drain time and idle cost from DIR/idle.tsv
  request_cost.py check DIR REFERENCE.env
      exit 1 when any request failed or was invalid, or when a kind's median CPU us/request
      exceeds FACTOR x its reference (REFERENCE.env: HEALTHZ_CPU_US, ME_CPU_US, FEED_CPU_US,
      FACTOR)

CPU per request = the server's utime+stime delta over the k6 run / requests completed in it.
Errors = requests failing the body checks (`feed_ok` / `healthz_ok`), which include non-200s and
timeouts.
"""
import json
import statistics
import sys
from pathlib import Path

COLUMNS = ["bin", "run", "kind", "rate", "achieved_rps", "p50_ms", "p99_ms", "max_ms",
           "requests", "errors", "dropped", "cpu_us_per_req", "server_cores"]
OK_METRIC = {"healthz": "healthz_ok", "me": "feed_ok", "feed": "feed_ok"}


def row(summary, label, run, kind, rate, before, after, tck, t0, t1):
    m = json.load(open(summary))["metrics"]
    d = m["http_req_duration"]
    requests = int(m["http_reqs"]["count"])
    ok = m.get(OK_METRIC[kind], {})
    errors = int(ok.get("fails", 0))
    if ok.get("passes", 0) + errors == 0:
        errors = max(1, requests)  # no validated response at all is a failure, not a pass
    cpu_s = (int(after) - int(before)) / int(tck)
    wall = float(t1) - float(t0)
    print("\t".join(str(v) for v in [
        label, run, kind, rate, f'{m["http_reqs"]["rate"]:.1f}', f'{d["med"]:.2f}',
        f'{d["p(99)"]:.2f}', f'{d["max"]:.2f}', requests, errors,
        int(m.get("dropped_iterations", {}).get("count", 0)),
        f"{cpu_s * 1e6 / max(1, requests):.0f}", f"{cpu_s / wall:.2f}"]))


def read_tsv(path):
    lines = [line.split("\t") for line in Path(path).read_text().splitlines() if line.strip()]
    return [dict(zip(lines[0], values)) for values in lines[1:]]


def medians(rows):
    """{(bin, kind, rate): {column: median or total}} in first-seen order."""
    groups = {}
    for r in rows:
        groups.setdefault((r["bin"], r["kind"], r["rate"]), []).append(r)
    out = {}
    for key, group in groups.items():
        agg = {"runs": len(group)}
        for col in ["achieved_rps", "p50_ms", "p99_ms", "max_ms", "cpu_us_per_req", "server_cores"]:
            agg[col] = statistics.median(float(r[col]) for r in group)
        for col in ["errors", "dropped", "requests"]:
            agg[col] = sum(int(r[col]) for r in group)
        out[key] = agg
    return out


def table(directory):
    directory = Path(directory)
    med = medians(read_tsv(directory / "results.tsv"))
    idle_path = directory / "idle.tsv"
    idle = read_tsv(idle_path) if idle_path.exists() else []
    idle_core = {}  # bin -> median idle CPU in cores, subtracted for the "net of idle" column
    for b in dict.fromkeys(r["bin"] for r in idle):
        pct = [float(r["idle_cpu_pct"]) for r in idle if r["bin"] == b and r["idle_cpu_pct"] != "-"]
        if pct:
            idle_core[b] = statistics.median(pct) / 100
    bins = list(dict.fromkeys(k[0] for k in med))
    print("| binary | kind | rate | runs | achieved req/s | p50 ms | p99 ms | max ms | errors (Σ runs) | dropped (Σ runs) "
          "| CPU µs/req | net of idle | B/A CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (b, kind, rate), a in med.items():
        ratio = ""
        if len(bins) > 1 and b != bins[0] and (bins[0], kind, rate) in med:
            base = med[(bins[0], kind, rate)]["cpu_us_per_req"]
            ratio = f"{a['cpu_us_per_req'] / base:.2f}" if base else "n/a"
        net = ""
        if b in idle_core and a["achieved_rps"]:
            net = f"{a['cpu_us_per_req'] - idle_core[b] * 1e6 / a['achieved_rps']:,.0f}"
        print(f"| {b} | {kind} | {rate} | {a['runs']} | {a['achieved_rps']:.1f} | {a['p50_ms']:.2f} "
              f"| {a['p99_ms']:.2f} | {a['max_ms']:.2f} | {a['errors']} | {a['dropped']} "
              f"| {a['cpu_us_per_req']:,.0f} | {net} | {ratio} |")
    if idle:
        print()
        print("| binary | runs | outbox drain s (median) | server CPU s during the drain (median) "
              "| idle CPU % of a core (median) |")
        print("|---|---|---|---|---|")
        for b in dict.fromkeys(r["bin"] for r in idle):
            group = [r for r in idle if r["bin"] == b]
            drain = statistics.median(float(r["drain_s"]) for r in group)
            drain_cpu = statistics.median(float(r["drain_cpu_s"]) for r in group)
            pct = [float(r["idle_cpu_pct"]) for r in group if r["idle_cpu_pct"] != "-"]
            shown = f"{statistics.median(pct):.2f}" if pct else "not measured"
            print(f"| {b} | {len(group)} | {drain:.1f} | {drain_cpu:.1f} | {shown} |")


def check(directory, reference):
    ref = {}
    for line in Path(reference).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            ref[key.strip()] = float(value.strip())
    factor = ref.get("FACTOR", 10.0)
    failures = []
    for (b, kind, rate), a in medians(read_tsv(Path(directory) / "results.tsv")).items():
        if a["errors"]:
            failures.append(f"{b} {kind} at {rate}/s: {a['errors']} failed or invalid responses")
        limit = ref.get(f"{kind.upper()}_CPU_US")
        if limit is None:
            failures.append(f"no reference {kind.upper()}_CPU_US in {reference}")
        elif a["cpu_us_per_req"] > factor * limit:
            failures.append(f"{b} {kind} at {rate}/s: {a['cpu_us_per_req']:.0f} µs CPU/request > "
                            f"{factor:g} × reference {limit:.0f} µs")
        else:
            print(f"ok: {kind} at {rate}/s: {a['cpu_us_per_req']:.0f} µs CPU/request "
                  f"(ceiling {factor * limit:.0f}), 0 errors")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "header":
        print("\t".join(COLUMNS))
    elif len(argv) == 12 and argv[1] == "row":
        row(*argv[2:])
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    elif len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
