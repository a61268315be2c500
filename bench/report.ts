// Turns xsbench result rows into the markdown summary: one table per
// workload, then the derived ratios. "× floor" = floor ops/s ÷ target ops/s,
// as in anchors/RESULTS.md (how many times a bare round trip of the same
// messages the target costs; lower is better). "dx ÷ cx" compares ops/s the
// other way round (above 1: dxenstored is faster).

import type { Workload } from "./workloads.ts";

/** One xsbench JSON line plus our tags (target, wl), or a failure. */
export type Row = Record<string, unknown> & { ok: boolean; target: string; wl: string; error?: string };

export const FLOOR = "echo";
const SUBJECT = "dxenstored";
const PEERS = ["cxenstored", "oxenstored"];

const num = (r: Row | undefined, k: string): number | undefined => {
  const v = r?.ok ? r[k] : undefined;
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
};

function fmt(v: number | undefined, digits = 1): string {
  if (v === undefined) return "–";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  return v.toFixed(digits);
}

const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a !== undefined && b !== undefined && b > 0 ? a / b : undefined;

const times = (v: number | undefined, digits = 2) => v === undefined ? "–" : `${v.toFixed(digits)}×`;

function notes(r: Row): string {
  if (!r.ok) {
    const why = String(r.error ?? "?").replaceAll("\n", " ").replaceAll("|", "/").slice(0, 200).trim();
    return `**FAILED**: ${why}${r.daemon_died ? " (**daemon died**)" : ""}`;
  }
  const n: string[] = [];
  if (r.workload === "txn") {
    n.push(`commits/s ${fmt(num(r, "commit_per_s"))}`);
    n.push(`EAGAIN ${fmt((num(r, "eagain_ratio") ?? NaN) * 100)} %`);
    if ("verified" in r) n.push(r.verified ? "verified" : "**NOT verified**");
  }
  if (num(r, "event_p50_us") !== undefined) {
    n.push(`event p50/p99 ${fmt(num(r, "event_p50_us"))} / ${fmt(num(r, "event_p99_us"))} µs`);
  }
  if (r.workload === "txstart") {
    n.push(`abort p50 ${fmt(num(r, "abort_p50_us"))} µs`, `fill ${fmt(num(r, "fill_per_s"))} writes/s`);
  }
  if (num(r, "errors")) n.push(`errors ${num(r, "errors")}`);
  const rss = num(r, "rss_kb");
  if (rss !== undefined) n.push(`RSS ${(rss / 1024).toFixed(1)} MiB`);
  if (r.daemon_died) n.push("**daemon died**");
  return n.join(", ");
}

export function workloadTable(w: Workload, rows: Map<string, Row>, targets: string[]): string {
  const floor = num(rows.get(FLOOR), "ops_per_s");
  const out = [
    `### ${w.id}: ${w.title}`,
    "",
    "| target | ops/s | p50 µs | p99 µs | × floor | notes |",
    "|---|---:|---:|---:|---:|---|",
  ];
  for (const t of targets) {
    const r = rows.get(t);
    if (!r) continue;
    const ops = num(r, "ops_per_s");
    const xf = t === FLOOR ? undefined : ratio(floor, ops);
    out.push(
      `| ${t} | ${fmt(ops)} | ${fmt(num(r, "p50_us"))} | ${fmt(num(r, "p99_us"))} | ${times(xf)} | ${
        notes(r)
      } |`,
    );
  }
  const dx = rows.get(SUBJECT);
  if (dx?.ok) {
    const vs = PEERS.filter((p) => rows.get(p)?.ok).map((p) => {
      const opsR = ratio(num(dx, "ops_per_s"), num(rows.get(p), "ops_per_s"));
      const p50R = ratio(num(dx, "p50_us"), num(rows.get(p), "p50_us"));
      return `vs ${p}: ops/s ${times(opsR)}, p50 ${times(p50R)}`;
    });
    if (vs.length) {
      out.push("", `${SUBJECT} ${vs.join("; ")} (ops/s above 1×, p50 below 1×: dxenstored better)`);
    }
  }
  return out.join("\n");
}

/** The derived ratios across workloads, one column per target. */
export function derivedTable(
  all: Map<string, Map<string, Row>>,
  targets: string[],
  exits: Map<string, string>,
) {
  const get = (wl: string, t: string) => all.get(wl)?.get(t);
  // Largest ÷ smallest size actually measured (--quick stops at 10k).
  const span = (prefix: string) => {
    const ids = [...all.keys()].filter((k) => k.startsWith(prefix));
    return ids.length >= 2 ? [ids[0], ids[ids.length - 1]] : undefined;
  };
  const lines: [string, (t: string) => string][] = [];
  const tx = span("txstart-");
  if (tx) {
    lines.push([
      `txstart p50, ${tx[1].slice(8)} ÷ ${tx[0].slice(8)} leaves`,
      (t) => times(ratio(num(get(tx[1], t), "p50_us"), num(get(tx[0], t), "p50_us"))),
    ]);
  }
  const wa = span("watch-");
  if (wa) {
    lines.push([
      `watch event p50, ${wa[1].slice(6)} ÷ ${wa[0].slice(6)} watches`,
      (t) => times(ratio(num(get(wa[1], t), "event_p50_us"), num(get(wa[0], t), "event_p50_us"))),
    ]);
  }
  if (all.has("txn-create")) {
    lines.push([
      "txn create (c=8) EAGAIN ratio",
      (t) => t === FLOOR ? "–" : fmt(num(get("txn-create", t), "eagain_ratio"), 3),
    ]);
  }
  // One number per daemon: geometric mean of × floor over the workloads it completed.
  lines.push(["geomean × floor (workloads)", (t) => {
    if (t === FLOOR) return "–";
    const xs = [...all.values()]
      .map((m) => ratio(num(m.get(FLOOR), "ops_per_s"), num(m.get(t), "ops_per_s")))
      .filter((x): x is number => x !== undefined);
    if (xs.length === 0) return "–";
    const g = Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
    return `${g.toFixed(2)}× (${xs.length})`;
  }]);
  lines.push([
    "failed runs",
    (t) => String([...all.values()].filter((m) => m.get(t) && !m.get(t)!.ok).length),
  ]);
  if ([...exits.values()].some((e) => e)) lines.push(["stop", (t) => exits.get(t) || "–"]);
  return [
    "### derived",
    "",
    `| | ${targets.join(" | ")} |`,
    `|---|${targets.map(() => "---:").join("|")}|`,
    ...lines.map(([label, f]) => `| ${label} | ${targets.map(f).join(" | ")} |`),
  ].join("\n");
}
