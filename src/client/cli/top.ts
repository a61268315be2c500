// `dxenstore top`: a live view of a dxenstored for an operator, redrawn every second from what the
// daemon already reports — its statistics (CONTROL stats: counters become rates between two reads)
// and CONTROL recent (the slowest requests of the last seconds, the last refusals with their reason).
import type { Command } from "./commands.ts";
import { intArg, UsageError } from "./args.ts";
import type { Sample } from "../admin.ts";
import type { XenStore } from "../xenstore.ts";
import { UnsupportedError } from "../errors.ts";

/** One read of the daemon's numbers. */
export interface Snapshot {
  readonly at: number;
  readonly samples: readonly Sample[];
  readonly recent: string;
}

const sum = (xs: readonly Sample[]) => xs.reduce((n, s) => n + s.value, 0);

function by(samples: readonly Sample[], name: string, label: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name) continue;
    const k = s.labels[label] ?? "";
    m.set(k, (m.get(k) ?? 0) + s.value);
  }
  return m;
}

function one(samples: readonly Sample[], name: string): number {
  return sum(samples.filter((s) => s.name === name));
}

function rates(
  now: Map<string, number>,
  before: Map<string, number> | null,
  secs: number,
): Map<string, number> {
  const r = new Map<string, number>();
  for (const [k, v] of now) r.set(k, before === null ? 0 : Math.max(0, v - (before.get(k) ?? 0)) / secs);
  return r;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function rate(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function ago(ms: number): string {
  return ms < 1000 ? `${ms} ms ago` : `${(ms / 1000).toFixed(0)} s ago`;
}

/** The screen for `now` (and the previous snapshot, for rates), `width` columns wide. */
export function render(now: Snapshot, before: Snapshot | null, target: string, width = 100): string[] {
  const s = now.samples;
  const p = before?.samples ?? null;
  const secs = before === null ? 1 : Math.max(0.001, (now.at - before.at) / 1000);
  const counter = (name: string) => p === null ? 0 : Math.max(0, one(s, name) - one(p, name)) / secs;
  const reqByOp = rates(
    by(s, "dxenstored_requests_total", "op"),
    p && by(p, "dxenstored_requests_total", "op"),
    secs,
  );
  const reqByDom = rates(
    by(s, "dxenstored_domain_requests_total", "domid"),
    p && by(p, "dxenstored_domain_requests_total", "domid"),
    secs,
  );
  const refusals = rates(
    by(s, "dxenstored_refusals_total", "errno"),
    p && by(p, "dxenstored_refusals_total", "errno"),
    secs,
  );
  const totalReq = [...reqByOp.values()].reduce((a, b) => a + b, 0);
  const commits = counter("dxenstored_transactions_committed_total");
  const conflicts = counter("dxenstored_transaction_conflicts_total");
  const limits = by(s, "dxenstored_quota_limit", "quota");
  const dom = (metric: string) => by(s, metric, "domid");
  const nodes = dom("dxenstored_domain_nodes");
  const watches = dom("dxenstored_domain_watches");
  const txns = dom("dxenstored_domain_transactions");
  const memory = dom("dxenstored_domain_memory_bytes");
  const started = one(s, "dxenstored_process_start_time_seconds");
  const up = Math.max(0, Math.round(now.at / 1000 - started));
  const lines: string[] = [];
  const clip = (l: string) => (l.length > width ? l.slice(0, width - 1) + "…" : l);
  lines.push(
    `dxenstore top — ${target} — up ${Math.floor(up / 3600)}h${
      String(Math.floor(up / 60) % 60).padStart(2, "0")
    }m` +
      ` — ${new Date(now.at).toISOString().slice(11, 19)} UTC   (q quits)`,
  );
  lines.push(
    `requests/s ${rate(totalReq)}   watch events/s ${rate(counter("dxenstored_watch_events_total"))}   ` +
      `commits/s ${rate(commits)}   EAGAIN/s ${rate(conflicts)}` +
      `${commits + conflicts > 0 ? ` (${((100 * conflicts) / (commits + conflicts)).toFixed(0)}%)` : ""}` +
      `   open transactions ${sum([...txns.values()].map((value) => ({ name: "", labels: {}, value })))}`,
  );
  lines.push(
    `RSS ${mib(one(s, "dxenstored_process_resident_memory_bytes"))}   heap ${
      mib(one(s, "dxenstored_process_heap_used_bytes"))
    }` +
      `   store ${one(s, "dxenstored_nodes")} nodes, ${
        mib([...memory.values()].reduce((a, b) => a + b, 0))
      }` +
      `   connections ${one(s, "dxenstored_connections")}`,
  );
  lines.push("");
  const ops = [...reqByOp].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).slice(0, 8);
  const doms = [...reqByDom].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).slice(0, 8);
  lines.push(`${"REQUESTS/S BY TYPE".padEnd(32)}REQUESTS/S BY DOMAIN`);
  for (let i = 0; i < Math.max(ops.length, doms.length, 1); i++) {
    const o = ops[i] ? `${ops[i][0].padEnd(22)}${rate(ops[i][1]).padStart(8)}` : i === 0 ? "(idle)" : "";
    const d = doms[i] ? `dom ${doms[i][0].padEnd(10)}${rate(doms[i][1]).padStart(8)}` : "";
    lines.push(`${o.padEnd(32)}${d}`);
  }
  lines.push("");
  const lim = (q: string) => {
    const v = limits.get(q);
    return v === undefined || v === 0 ? "-" : String(v);
  };
  lines.push(
    `${"DOMAIN".padEnd(8)}${"NODES / LIMIT".padStart(18)}${"WATCHES / LIMIT".padStart(18)}${
      "TXNS / LIMIT".padStart(15)
    }` +
      `${"MEMORY / LIMIT".padStart(24)}${"REQ/S".padStart(9)}`,
  );
  const domains = [...nodes.keys()].sort((a, b) =>
    (reqByDom.get(b) ?? 0) - (reqByDom.get(a) ?? 0) || (nodes.get(b) ?? 0) - (nodes.get(a) ?? 0)
  ).slice(0, 10);
  for (const d of domains) {
    const cell = (v: number | undefined, q: string, w: number) => `${v ?? 0} / ${lim(q)}`.padStart(w);
    lines.push(
      `${d.padEnd(8)}${cell(nodes.get(d), "nodes", 18)}${cell(watches.get(d), "watches", 18)}` +
        `${cell(txns.get(d), "transactions", 15)}${cell(memory.get(d), "memory", 24)}` +
        `${rate(reqByDom.get(d) ?? 0).padStart(9)}`,
    );
  }
  lines.push("");
  const refused = [...refusals].filter(([, v]) => v > 0).map(([e, v]) => `${e} ${rate(v)}`);
  const totals = [...by(s, "dxenstored_refusals_total", "errno")].map(([e, v]) => `${e} ${v}`);
  lines.push(
    `REFUSALS/S ${refused.length > 0 ? refused.join("  ") : "0"}   (since start: ${
      totals.join("  ") || "none"
    })`,
  );
  const recent = now.recent.split("\n").filter((l) => l !== "");
  const lastRefusal = recent.filter((l) => l.startsWith("refused ")).pop();
  if (lastRefusal !== undefined) {
    const [, age, ...line] = lastRefusal.split(" ");
    lines.push(`  last: ${line.join(" ")} (${ago(Number(age))})`);
  }
  lines.push("");
  lines.push("SLOWEST REQUESTS (last 10 s)");
  const slow = recent.filter((l) => l.startsWith("slow ")).slice(0, 5);
  if (slow.length === 0) lines.push("  (none)");
  for (const l of slow) {
    const [, us, age, domid, conn, op, ...path] = l.split(" ");
    lines.push(
      `  ${(Number(us) / 1000).toFixed(2).padStart(8)} ms  ${op.padEnd(18)} dom ${domid.padEnd(6)} ${
        conn.padEnd(8)
      } ` +
        `${path.join(" ")}  (${ago(Number(age))})`,
    );
  }
  return lines.map(clip);
}

async function snapshot(xs: XenStore, withRecent: boolean): Promise<Snapshot> {
  const [samples, recent] = await Promise.all([
    xs.stats(),
    withRecent ? xs.control("recent") : Promise.resolve(""),
  ]);
  return { at: Date.now(), samples, recent };
}

const enc = new TextEncoder();

export const TOP: Command = {
  name: "top",
  synopsis: "top [--interval S] [--iterations N]",
  help: "A live view of dxenstored, redrawn every S seconds (default 1): requests/s by type and by\n" +
    "domain, watch events, commits and EAGAIN rate, open transactions, quota use per domain next to\n" +
    "its limit, refusals with the last reason, the slowest recent requests, RSS and store size.\n" +
    "q or Ctrl-C quits. --iterations N: stop after N screens (for scripts; then no screen clearing).",
  flags: [{ name: "interval", value: true }, { name: "iterations", value: true }],
  operands: [0, 0],
  async run(xs, p, io) {
    const interval = p.flags.has("interval") ? Number(p.flags.get("interval")) : 1;
    if (!(interval >= 0.1 && interval <= 3600)) {
      throw new UsageError("--interval is 0.1 to 3600 seconds", "top");
    }
    const iterations = p.flags.has("iterations")
      ? intArg(String(p.flags.get("iterations")), "iterations", 1e9, "top")
      : Infinity;
    const f = await xs.features();
    if (!f.stats) {
      throw new UnsupportedError("top", `top needs CONTROL stats (dxenstored); this is ${f.daemon}`);
    }
    const tty = iterations === Infinity && Deno.stdout.isTerminal();
    let quit = false;
    let wake: () => void = () => {};
    if (tty && Deno.stdin.isTerminal()) {
      Deno.stdin.setRaw(true, { cbreak: true });
      (async () => {
        const buf = new Uint8Array(16);
        for (;;) {
          const n = await Deno.stdin.read(buf).catch(() => null);
          if (n === null || buf.subarray(0, n).some((b) => b === 0x71 || b === 0x51 || b === 3)) break;
        }
        quit = true;
        wake();
      })();
    }
    const size = () => {
      try {
        return Deno.consoleSize();
      } catch {
        return { columns: 100, rows: 40 };
      }
    };
    let before: Snapshot | null = null;
    try {
      for (let i = 0; i < iterations && !quit; i++) {
        const now = await snapshot(xs, f.recent);
        const { columns, rows } = size();
        const lines = render(now, before, xs.target, columns).slice(0, tty ? rows - 1 : undefined);
        if (tty) Deno.stdout.writeSync(enc.encode("\x1b[H\x1b[2J" + lines.join("\n") + "\n"));
        else for (const l of lines) io.out(l);
        before = now;
        if (i + 1 < iterations && !quit) {
          await new Promise<void>((r) => {
            const t = setTimeout(r, interval * 1000);
            wake = () => {
              clearTimeout(t);
              r();
            };
          });
        }
      }
    } finally {
      if (tty && Deno.stdin.isTerminal()) Deno.stdin.setRaw(false);
    }
    if (tty) Deno.exit(0); // the key reader holds stdin open
  },
};
