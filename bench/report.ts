// Turns xsbench result rows into the markdown summary: one table per
// workload, then the derived ratios and the issues' targets. "× floor" = floor
// ops/s ÷ target ops/s, as in anchors/RESULTS.md (how many times a bare round
// trip of the same messages the target costs; lower is better). "dx ÷ cx"
// compares ops/s the other way round (above 1: dxenstored is faster).
//
// A workload may run several rounds (every target once per round, back to
// back): a ratio is then taken within each round, where the load was the same
// for both sides, and the median of the rounds' ratios is reported with their
// range. Absolute figures (ops/s, p50, p99) are medians over the rounds.

import type { Target, Workload } from "./workloads.ts";

/** One xsbench JSON line plus our tags (target, wl, rep), or a failure. */
export type Row = Record<string, unknown> & { ok: boolean; target: string; wl: string; error?: string };

/** A workload's runs: per target, one row per round, in round order (`rep`). */
export type Rounds = Map<string, Row[]>;

export const FLOOR = "echo";
const SUBJECT = "dxenstored";
/** Above this load average a target's verdict is flagged as unreliable (bench/main.ts: "noisy"). */
export const LOAD_RELIABLE = 1;
/** The daemon's CPU time per operation, all threads (bench/main.ts reads it from /proc). */
const CPU = "daemon_cpu_us_per_op";
/** Another build of dxenstored measured in the same run (bench/main.ts: DXENSTORED_BASELINE_CMD). */
const BASELINE = "baseline";
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

/** The median of the defined values (the mean of the middle two for an even count). */
export function median(xs: readonly (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Per-round values of a ratio, rounds where either side failed left out. */
export interface Spread {
  readonly median: number | undefined;
  readonly min: number | undefined;
  readonly max: number | undefined;
  /** Rounds with both sides measured. */
  readonly n: number;
}

function spread(xs: readonly (number | undefined)[]): Spread {
  const v = xs.filter((x): x is number => x !== undefined);
  return {
    median: median(v),
    min: v.length ? Math.min(...v) : undefined,
    max: v.length ? Math.max(...v) : undefined,
    n: v.length,
  };
}

/** "1.42× (1.30–1.55, 5 rounds)", or just "1.42×" for one round. */
function timesSpread(s: Spread, digits = 2): string {
  if (s.n <= 1) return times(s.median, digits);
  return `${times(s.median, digits)} (${s.min!.toFixed(digits)}–${s.max!.toFixed(digits)}, ${s.n} rounds)`;
}

/** How many rounds the workload ran (the most any target has). */
function roundCount(rounds: Rounds): number {
  return Math.max(0, ...[...rounds.values()].map((rs) => rs.length));
}

/** `f(a's row, b's row)` for every round both ran, in round order. */
function paired(
  rounds: Rounds,
  a: string,
  b: string,
  f: (x: Row, y: Row) => number | undefined,
): (number | undefined)[] {
  const xs = rounds.get(a) ?? [];
  const ys = rounds.get(b) ?? [];
  const out: (number | undefined)[] = [];
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) out.push(f(xs[i], ys[i]));
  return out;
}

/** Per round: `metric` of a ÷ that of b. */
const pairedRatio = (rounds: Rounds, a: string, b: string, metric: string) =>
  spread(paired(rounds, a, b, (x, y) => ratio(num(x, metric), num(y, metric))));

/**
 * The row standing for a target's rounds: the round with the median ops/s (the lower middle one for an
 * even count), so its notes (commits/s, EAGAIN, RSS) belong to one real run; a failed round if none
 * succeeded.
 */
export function representative(rows: readonly Row[]): Row | undefined {
  const ok = rows.filter((r) => num(r, "ops_per_s") !== undefined);
  if (ok.length === 0) return rows[rows.length - 1];
  const sorted = [...ok].sort((a, b) => num(a, "ops_per_s")! - num(b, "ops_per_s")!);
  return sorted[(sorted.length - 1) >> 1];
}

/** Median of `metric` over a target's rounds. */
const medianOf = (rows: readonly Row[] | undefined, metric: string) =>
  median((rows ?? []).map((r) => num(r, metric)));

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

export function workloadTable(w: Workload, rounds: Rounds, targets: string[]): string {
  const n = roundCount(rounds);
  const out = [
    `### ${w.id}: ${w.title}`,
    "",
    ...(n > 1
      ? [
        `${n} rounds (every target once per round, in rotating order); ops/s, p50 and p99 are medians, ` +
        "ratios the median of the rounds' ratios (range in brackets); notes from the median round",
        "",
      ]
      : []),
    "| target | ops/s | p50 µs | p99 µs | × floor | CPU µs/op | CPU × floor | notes |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const t of targets) {
    const rows = rounds.get(t);
    if (!rows || rows.length === 0) continue;
    const rep = representative(rows)!;
    const xf = t === FLOOR ? "–" : timesSpread(pairedRatio(rounds, FLOOR, t, "ops_per_s"));
    const cf = t === FLOOR ? "–" : timesSpread(pairedRatio(rounds, t, FLOOR, CPU));
    const failed = rows.filter((r) => !r.ok).length;
    const note = notes(rep) + (failed > 0 && rep.ok ? `, **${failed} of ${rows.length} rounds failed**` : "");
    out.push(
      `| ${t} | ${fmt(medianOf(rows, "ops_per_s"))} | ${fmt(medianOf(rows, "p50_us"))} | ${
        fmt(medianOf(rows, "p99_us"))
      } | ${xf} | ${fmt(medianOf(rows, CPU), 2)} | ${cf} | ${note} |`,
    );
  }
  if ((rounds.get(SUBJECT) ?? []).some((r) => r.ok)) {
    const vs = [...PEERS, BASELINE].filter((p) => (rounds.get(p) ?? []).some((r) => r.ok)).map((p) => {
      const opsR = pairedRatio(rounds, SUBJECT, p, "ops_per_s");
      const p50R = pairedRatio(rounds, SUBJECT, p, "p50_us");
      return `vs ${p}: ops/s ${timesSpread(opsR)}, p50 ${timesSpread(p50R)}`;
    });
    if (vs.length) {
      out.push("", `${SUBJECT} ${vs.join("; ")} (ops/s above 1×, p50 below 1×: dxenstored better)`);
    }
  }
  return out.join("\n");
}

/**
 * The issues' targets (workloads with a `target`), judged on the median of the per-round ratios:
 * a ratio from one round compares two runs made under the same load.
 */
export function targetTable(workloads: readonly Workload[], all: Map<string, Rounds>, maxLoad = 0): string {
  const lines: string[] = [];
  for (const w of workloads) {
    const t = w.target;
    const rounds = all.get(w.id);
    if (t === undefined || rounds === undefined) continue;
    // The subject, and another build measured in the same run (DXENSTORED_BASELINE_CMD) beside it.
    for (const subject of [SUBJECT, BASELINE].filter((s) => rounds.has(s))) {
      const r = targetSpread(t, rounds, subject);
      const verdict = r.median === undefined
        ? "not measured"
        : meets(t, r.median)
        ? "**met**"
        : "**not met**";
      // Other processes on the (pinned) CPU: per-round pairing removes a steady load, not one that comes
      // and goes within a round — the verdict is then only a hint.
      const met = maxLoad > LOAD_RELIABLE && r.median !== undefined
        ? `${verdict} (unreliable: load average up to ${maxLoad})`
        : verdict;
      const what = t.kind === "floor"
        ? `${subject}'s time per operation ÷ the echo floor's (floor ops/s ÷ ${subject}'s)`
        : `${subject}'s ${
          t.metric === "commit_per_s" ? "commits/s" : "ops/s"
        } ÷ the best anchor's in the round`;
      const rule = t.kind === "floor" ? `≤ ${t.at}` : `≥ ${t.at}`;
      lines.push(
        `| ${w.id} (issue ${t.issue}) | ${what} | ${rule} | ${timesSpread(r)} | ${r.n} of ${
          roundCount(rounds)
        } | ${met} | ${timesSpread(targetCpuSpread(t, rounds, subject))} |`,
      );
    }
  }
  if (lines.length === 0) return "";
  return [
    "### targets",
    "",
    "| workload | ratio | target | median (range, rounds) | rounds measured | | the same in CPU time |",
    "|---|---|---:|---:|---:|---|---:|",
    ...lines,
    "",
    "The same in CPU time: the ratio computed from the daemons' CPU time per operation (per commit for " +
    "commits/s) instead of throughput — what the load of other processes changes least, so it tells more " +
    "than ops/s on a busy machine (it leaves out the client's share of a round trip).",
  ].join("\n");
}

/**
 * A target's ratio in CPU time: floor — the subject's CPU per operation ÷ the floor's; anchor — the
 * best (cheapest) reference's CPU per unit of the metric ÷ the subject's (above 1: the subject cheaper).
 */
export function targetCpuSpread(t: Target, rounds: Rounds, subject = SUBJECT): Spread {
  if (t.kind === "floor") return pairedRatio(rounds, subject, FLOOR, CPU);
  // CPU per unit of the metric (per commit: CPU per operation × operations per commit).
  const perUnit = (r: Row | undefined) => {
    const cpu = num(r, CPU);
    const ops = num(r, "ops_per_s");
    const m = num(r, t.metric);
    return cpu !== undefined && ops !== undefined && m !== undefined && m > 0 ? cpu * ops / m : undefined;
  };
  const rows = rounds.get(subject) ?? [];
  return spread(rows.map((row, i) => {
    const best = Math.min(
      ...PEERS.map((p) => perUnit(rounds.get(p)?.[i])).filter((v): v is number => v !== undefined),
    );
    return Number.isFinite(best) ? ratio(best, perUnit(row)) : undefined;
  }));
}

/** A target's per-round ratios for `subject` (rounds where it or every reference failed left out). */
export function targetSpread(t: Target, rounds: Rounds, subject = SUBJECT): Spread {
  if (t.kind === "floor") return pairedRatio(rounds, FLOOR, subject, "ops_per_s");
  const rows = rounds.get(subject) ?? [];
  const xs: (number | undefined)[] = rows.map((row, i) => {
    const best = Math.max(
      ...PEERS.map((p) => num(rounds.get(p)?.[i], t.metric)).filter((v): v is number => v !== undefined),
    );
    return Number.isFinite(best) ? ratio(num(row, t.metric), best) : undefined;
  });
  return spread(xs);
}

function meets(t: Target, r: number): boolean {
  return t.kind === "floor" ? r <= t.at : r >= t.at;
}

/** The derived ratios across workloads, one column per target. */
export function derivedTable(
  all: Map<string, Rounds>,
  targets: string[],
  exits: Map<string, string>,
) {
  // Latency ratios across workloads: from each target's median round.
  const get = (wl: string, t: string) => representative(all.get(wl)?.get(t) ?? []);
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
      .map((m) => pairedRatio(m, FLOOR, t, "ops_per_s").median)
      .filter((x): x is number => x !== undefined);
    if (xs.length === 0) return "–";
    const g = Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
    return `${g.toFixed(2)}× (${xs.length})`;
  }]);
  lines.push([
    "failed runs",
    (t) => String([...all.values()].reduce((k, m) => k + (m.get(t) ?? []).filter((r) => !r.ok).length, 0)),
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
