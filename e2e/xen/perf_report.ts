/**
 * The performance boot's report (plan P or P1, tests/xen/qemu/dom0/init.sh scenario 5), one column per
 * daemon booted with it in this run, with dxenstored's ratio to each reference daemon:
 *
 *   t1   one guest reading alone for 10 s: round trip p50/p99, READs/s
 *   t10  ten guests reading at once for 10 s: total READs/s, the guests' median p50 and worst p99
 *   s1   one guest, 500 READs under strace -c -f: the daemon's system calls per request
 *   s10  ten guests, 50 READs each, under strace: the same (batching shows here)
 *
 * For t1 and t10 the daemon's CPU time per READ (E2E-CPU: user and system time of its main thread
 * and of its other threads, from /proc over the phase) says where a request's time goes: running
 * the daemon's own code (user), the kernel and hypervisor work of its system calls (system), or
 * helper threads (V8's compiler and garbage collector for dxenstored).
 *
 * Before each strace phase dom0 counts the idle daemon for 10 s (idle-s1, idle-s10): its timers and
 * the loop's idle wake-ups happen per second, not per request, and under strace in TCG a round trip
 * takes long enough for many of them. That rate times the phase's length is subtracted; the rest is
 * what the requests cost (the raw counts are printed too).
 *
 * Under TCG every system call and page-table change costs far more than on hardware, so compare
 * the ratios, not the microseconds; system-call counts do not depend on speed.
 */
import type { BootReport } from "./report.ts";

interface Phase {
  readonly reads: number;
  readonly readsPerS: number;
  readonly p50: number;
  readonly p99: number;
}

interface Counts {
  readonly requests: number;
  readonly seconds: number;
  /** syscall → [calls, failed] */
  readonly calls: Map<string, [number, number]>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One load phase's E2E-BENCH lines (one per guest) combined. */
function phase(rep: BootReport, name: string): Phase | undefined {
  const rows = rep.log.bench.filter((b) => b.phase === name && b.n !== undefined);
  if (rows.length === 0) return undefined;
  const num = (b: Record<string, string>, k: string) => Number(b[k]);
  return {
    reads: rows.reduce((a, b) => a + num(b, "n"), 0),
    // every guest read for the same 10 s (started by one watch event): the rates add up
    readsPerS: rows.reduce((a, b) => a + num(b, "n") / (num(b, "total_us") / 1e6), 0),
    p50: median(rows.map((b) => num(b, "p50_us"))),
    p99: Math.max(...rows.map((b) => num(b, "p99_us"))),
  };
}

/** The daemon's CPU time per READ of a phase (ms), by thread kind and user/system. */
function cpuPerRead(rep: BootReport, name: string): Record<string, number> | undefined {
  const c = rep.log.cpu.find((x) => x.phase === name);
  const p = phase(rep, name);
  if (c === undefined || p === undefined || !(p.reads > 0)) return undefined;
  const ms = (k: string) => (Number(c[k] ?? 0) * 1000) / Number(c.hz ?? 100) / p.reads;
  const out: Record<string, number> = {
    mainUser: ms("main_user"),
    mainSys: ms("main_sys"),
    otherUser: ms("other_user"),
    otherSys: ms("other_sys"),
  };
  out.total = out.mainUser + out.mainSys + out.otherUser + out.otherSys;
  return out;
}

function counts(rep: BootReport, name: string): Counts | undefined {
  const s = rep.log.strace.find((x) => x.phase === name);
  if (s === undefined) return undefined;
  const calls = new Map<string, [number, number]>();
  for (const [k, v] of Object.entries(s)) {
    if (["xsd", "phase", "requests", "threads", "seconds"].includes(k)) continue;
    const [c, e] = v.split("/");
    calls.set(k, [Number(c), Number(e ?? 0)]);
  }
  return { requests: Number(s.requests ?? 0), seconds: Number(s.seconds ?? 0), calls };
}

/** A phase's counts less what the idle daemon does in as many seconds (idle-<phase>), per request. */
function perRequest(rep: BootReport, name: string): Map<string, number> | undefined {
  const c = counts(rep, name);
  if (c === undefined || !(c.requests > 0)) return undefined;
  const idle = counts(rep, `idle-${name}`);
  const out = new Map<string, number>();
  for (const [k, [calls]] of c.calls) {
    const idleCalls = idle !== undefined && idle.seconds > 0 && c.seconds > 0
      ? (idle.calls.get(k)?.[0] ?? 0) * c.seconds / idle.seconds
      : 0;
    out.set(k, Math.max(0, calls - idleCalls) / c.requests);
  }
  return out;
}

const f = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? "-" : x >= 100 ? x.toFixed(0) : x.toFixed(2);

/** The report lines (empty when no P boot produced numbers). */
export function perfTable(reports: readonly BootReport[]): string[] {
  const boots = reports.filter((r) => r.plan === "P" || r.plan === "P1");
  if (boots.length === 0) return [];
  const names = boots.map((b) => b.xsd);
  const refs = names.filter((n) => n !== "dxenstored");
  const dx = boots.find((b) => b.xsd === "dxenstored");
  const out: string[] = [
    "benchmark (boot P: PV guests READing over real rings; system calls by strace -c -f)",
    `  ${"".padEnd(46)}${names.map((n) => n.padStart(12)).join("")}${
      dx ? refs.map((r) => `   dx/${r.slice(0, 2)}`).join("") : ""
    }`,
  ];
  const row = (label: string, get: (b: BootReport) => number | undefined) => {
    const vals = boots.map(get);
    if (vals.every((v) => v === undefined)) return;
    const mine = dx ? get(dx) : undefined;
    const ratios = dx
      ? refs.map((r) => {
        const v = get(boots.find((b) => b.xsd === r)!);
        return (mine !== undefined && v ? (mine / v).toFixed(2) : "-").padStart(8);
      }).join("")
      : "";
    out.push(`  ${label.padEnd(46)}${vals.map((v) => f(v).padStart(12)).join("")}${ratios}`);
  };
  row("1 guest: READ round trip p50 (us)", (b) => phase(b, "t1")?.p50);
  row("1 guest: READ round trip p99 (us)", (b) => phase(b, "t1")?.p99);
  row("1 guest: READs/s", (b) => phase(b, "t1")?.readsPerS);
  row("10 guests at once: total READs/s", (b) => phase(b, "t10")?.readsPerS);
  row("10 guests at once: p50 (median guest, us)", (b) => phase(b, "t10")?.p50);
  row("10 guests at once: p99 (worst guest, us)", (b) => phase(b, "t10")?.p99);
  for (const [ph, title] of [["t1", "1 guest"], ["t10", "10 guests at once"]]) {
    if (boots.every((b) => cpuPerRead(b, ph) === undefined)) continue;
    out.push(`  daemon CPU per READ, ${title} (ms; /proc utime and stime over the phase):`);
    row("  total", (b) => cpuPerRead(b, ph)?.total);
    row("  main thread, user", (b) => cpuPerRead(b, ph)?.mainUser);
    row("  main thread, system", (b) => cpuPerRead(b, ph)?.mainSys);
    row("  other threads, user", (b) => cpuPerRead(b, ph)?.otherUser);
    row("  other threads, system", (b) => cpuPerRead(b, ph)?.otherSys);
  }
  for (const [ph, title] of [["s1", "1 guest"], ["s10", "10 guests at once"]]) {
    const per = boots.map((b) => perRequest(b, ph));
    if (per.every((c) => c === undefined)) continue;
    out.push(`  system calls per READ, ${title} (all the daemon's threads, idle rate subtracted):`);
    const sum = (m: Map<string, number> | undefined) => m && [...m.values()].reduce((a, b) => a + b, 0);
    row("  total", (b) => sum(perRequest(b, ph)));
    const syscalls = new Set(per.flatMap((m) => m ? [...m.keys()] : []));
    for (const s of [...syscalls].sort()) {
      if (per.every((m) => (m?.get(s) ?? 0) < 0.01)) continue;
      row(`  ${s}`, (b) => perRequest(b, ph)?.get(s) ?? 0);
    }
    out.push(`    raw counts (${ph}; idle-${ph}: the same daemon, idle):`);
    for (const b of boots) {
      for (const name of [ph, `idle-${ph}`]) {
        const c = counts(b, name);
        if (c === undefined) continue;
        const calls = [...c.calls].map(([k, [n, e]]) => `${k} ${n}${e ? ` (${e} failed)` : ""}`).join(", ");
        out.push(
          `      ${b.xsd} ${name} (${c.seconds} s${c.requests ? `, ${c.requests} READs` : ""}): ${calls}`,
        );
      }
    }
  }
  return out;
}
