/** PASS/FAIL per scenario with milestones; on failure the evidence (serial-log section, daemon log). */
import { type BootLog, relevantLines } from "./serial_log.ts";

export interface BootReport {
  readonly plan: string;
  /** dxenstored, cxenstored or oxenstored. */
  readonly xsd: string;
  /** Whether its scenarios count in the summary (the reference benchmark boot does not). */
  readonly counted: boolean;
  readonly log: BootLog;
  readonly seconds: number;
  readonly logPath: string;
  readonly runOutput: string;
}

const indent = (lines: readonly string[], pad = "      ") => lines.map((l) => pad + l);

/** Prints one scenario's result; true when it passed. */
export function reportScenario(rep: BootReport, id: string): boolean {
  const s = rep.log.scenarios.get(id);
  const fails = s?.checks.filter((c) => c.status === "FAIL") ?? [];
  const pass = s?.verdict === "PASS" && fails.length === 0;
  const title = s?.title || "(not reached)";
  console.log(
    `${pass ? "PASS" : "FAIL"} ${id} ${title} [${rep.xsd}, boot ${rep.plan}, ${rep.seconds.toFixed(1)} s]`,
  );
  if (s) {
    const dom0 = s.checks.filter((c) => c.source === "dom0" && c.status === "ok").length;
    const guest = s.checks.filter((c) => c.source !== "dom0" && c.status === "ok").length;
    console.log(`      checks ok: ${dom0} in dom0, ${guest} in guests; failed: ${fails.length}`);
    for (const m of s.milestones) console.log(`      ${m.seconds.toFixed(1).padStart(6)} s  ${m.label}`);
    for (const c of s.checks.filter((c) => c.status === "note")) {
      console.log(`      note: ${c.what}: ${c.detail}`);
    }
  }
  if (pass) return true;

  if (!s) console.log(`      scenario ${id} never began: ${rep.log.result ?? "dom0 printed no E2E-RESULT"}`);
  else if (!s.verdict) {
    console.log(`      scenario ${id} never finished: ${rep.log.result ?? "dom0 printed no E2E-RESULT"}`);
  }
  for (const c of fails) {
    console.log(`      FAILED (${c.source}): ${c.what}${c.detail ? ` :: ${c.detail}` : ""}`);
  }
  console.log(`    serial log (${rep.logPath}):`);
  console.log(indent(relevantLines(rep.log, s)).join("\n"));
  const xenComplaints = rep.log.lines.filter((l) => /\(XEN\).*(crash|fault|Unhandled|error|denied)/i.test(l));
  if (xenComplaints.length > 0) {
    console.log("    Xen's complaints:");
    console.log(indent(xenComplaints.slice(-20)).join("\n"));
  }
  if (rep.xsd === "dxenstored") {
    console.log(`    dxenstored's log (last 80 of ${rep.log.xsdLog.length} lines):`);
    console.log(indent(rep.log.xsdLog.slice(-80)).join("\n") || "      (empty)");
  } else {
    console.log(`    ${rep.xsd}'s log: not captured (Debian's daemon logs to syslog, absent in this dom0)`);
  }
  const tail = rep.runOutput.trim().split("\n").slice(-4);
  console.log(`    run.sh: ${tail.join(" | ")}`);
  return false;
}

interface BenchRow {
  readonly label: string;
  readonly key: string;
  readonly guest?: string;
  /** The guest's second window of READs (window=2: READs 1201-2200), else its first. */
  readonly window?: string;
}

const ROWS: BenchRow[] = [
  { label: "guest READ round trip, mean (us)", key: "mean_us" },
  { label: "guest READ round trip, p50 (us)", key: "p50_us" },
  { label: "guest READ round trip, p99 (us)", key: "p99_us" },
  { label: "1000 READs, total (ms)", key: "total_us" },
  { label: "next 1000 READs: p50 (us)", key: "p50_us", window: "2" },
  { label: "next 1000 READs: p99 (us)", key: "p99_us", window: "2" },
  { label: "xl create -> 1st xenstore access, PV (s)", key: "create_to_first_access_s", guest: "pv" },
  { label: "  of which xl create -> INTRODUCE (s)", key: "create_to_introduce_s", guest: "pv" },
  { label: "  of which INTRODUCE -> 1st access (s)", key: "introduce_to_first_access_s", guest: "pv" },
];

/** The benchmark lines of the B boots, per daemon, with dxenstored/reference ratios. */
export function benchTable(reports: readonly BootReport[]): string[] {
  const byXsd = new Map<string, Record<string, number>>();
  for (const r of reports.filter((r) => r.plan === "B")) {
    const v: Record<string, number> = byXsd.get(r.xsd) ?? {};
    for (const b of r.log.bench) {
      for (const row of ROWS) {
        if (b[row.key] === undefined || (row.guest && b.guest !== row.guest) || b.window !== row.window) {
          continue;
        }
        v[rowId(row)] = Number(b[row.key]) / (row.key === "total_us" ? 1000 : 1);
      }
    }
    byXsd.set(r.xsd, v);
  }
  if (byXsd.size === 0) return [];
  const names = [...byXsd.keys()];
  const ref = names.find((n) => n !== "dxenstored");
  const out = [
    "benchmark (boot B: 1000 sequential READs from one process in a PV guest over the real ring;",
    "           xl create until dom0 sees the guest kernel's first xenstore write)",
    `  ${"".padEnd(42)}${names.map((n) => n.padStart(12)).join("")}${
      ref && byXsd.has("dxenstored") ? `   ratio dx/${ref.slice(0, 2)}` : ""
    }`,
  ];
  for (const row of ROWS) {
    const vals = names.map((n) => byXsd.get(n)![rowId(row)]);
    if (vals.every((x) => x === undefined)) continue;
    const dx = byXsd.get("dxenstored")?.[rowId(row)];
    const rv = ref ? byXsd.get(ref)?.[rowId(row)] : undefined;
    const ratio = dx !== undefined && rv ? `   ${(dx / rv).toFixed(2)}` : "";
    out.push(
      `  ${row.label.padEnd(42)}${
        vals.map((x) => (x === undefined ? "-" : fmt(x)).padStart(12)).join("")
      }${ratio}`,
    );
  }
  return out;
}

function rowId(row: BenchRow): string {
  return row.window === undefined ? row.key : `${row.key}@${row.window}`;
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(2);
}
