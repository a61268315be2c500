// The memory table of bench/memory.ts: one column per daemon, the issue's targets for dxenstored in
// the last column, with whether this run met them.
import type { MemoryResult, TargetMemory } from "./memory.ts";

const MiB = 1048576;
const mib = (b: number | undefined) => b === undefined ? "–" : `${(b / MiB).toFixed(1)} MiB`;
const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(0)} %`;

/**
 * RSS added per leaf: (settled RSS with `leaves` leaves − idle RSS) ÷ leaves, in bytes (the issue's
 * measure; it includes what serving the fill costs once — compiled code, buffers — which weighs at
 * 10k leaves and hardly at 1M).
 */
export function perLeaf(t: TargetMemory, leaves: number): number | undefined {
  const f = t.fills.find((x) => x.leaves === leaves);
  if (f?.rss == null || t.idle === undefined) return undefined;
  return (f.rss - t.idle) / leaves;
}

/** Largest relative distance of cycles 3.. from cycle 2 (RSS after each cycle). */
export function drift(after: number[]): number | undefined {
  if (after.length < 3) return undefined;
  const base = after[1];
  return Math.max(...after.slice(2).map((x) => Math.abs(x - base) / base));
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? "" : ok ? " (met)" : " (**not met**)";
}

export function memoryMarkdown(r: MemoryResult): string {
  const ts = r.targets;
  const dx = ts.find((t) => t.name === "dxenstored");
  const rows: string[][] = [];
  const row = (label: string, cell: (t: TargetMemory) => string, target = "") =>
    rows.push([
      label,
      ...ts.map((t) => t.error ? (label === "idle RSS" ? `failed: ${t.error}` : "–") : cell(t)),
      target,
    ]);

  row(
    "idle RSS",
    (t) => mib(t.idle),
    `≤ 40 MiB${verdict(dx?.idle === undefined ? undefined : dx.idle <= 40 * MiB)}`,
  );
  row("RSS after the 1k-leaf warm-up", (t) => mib(t.warm));
  for (const n of r.options.leaves) {
    const targetB = n === 100_000 ? 140 : n === 1_000_000 ? 116 : undefined;
    const got = dx && perLeaf(dx, n);
    row(
      `RSS added per leaf, ${n.toLocaleString("en-US")} leaves (vs idle)`,
      (t) => {
        const b = perLeaf(t, n);
        const f = t.fills.find((x) => x.leaves === n);
        if (b !== undefined) return `${b.toFixed(0)} B (RSS ${mib(f!.rss!)})`;
        return f?.note ?? (t.errors.fill ? `failed: ${t.errors.fill}` : "–");
      },
      targetB === undefined ? "" : `≤ ${targetB} B${verdict(got === undefined ? undefined : got <= targetB)}`,
    );
  }
  row("fill rate at the largest size", (t) => {
    const f = [...t.fills].reverse().find((x) => x.fillPerS !== undefined);
    return f
      ? `${Math.round(f.fillPerS!).toLocaleString("en-US")} /s (${f.leaves.toLocaleString("en-US")})`
      : "–";
  });
  const peakRatio = (t: TargetMemory) => t.peak ? t.peak.hwm / t.peak.settled : undefined;
  row(
    "peak RSS during the fill ÷ settled RSS",
    (t) =>
      t.peak
        ? `${peakRatio(t)!.toFixed(2)}× (${mib(t.peak.hwm)} at ${t.peak.leaves.toLocaleString("en-US")})`
        : "–",
    `≤ 1.25×${verdict(dx && peakRatio(dx) !== undefined ? peakRatio(dx)! <= 1.25 : undefined)}`,
  );
  const afterRm = (t: TargetMemory) =>
    t.afterRemove !== undefined && t.idle ? t.afterRemove / t.idle - 1 : undefined;
  row(
    "RSS after removing everything, vs the empty store's (idle)",
    (t) => afterRm(t) === undefined ? "–" : `${mib(t.afterRemove)} (${pct(afterRm(t)!)})`,
    `within 10 %${verdict(dx && afterRm(dx) !== undefined ? afterRm(dx)! <= 0.1 : undefined)}`,
  );
  for (const kind of Object.keys(dx?.cycles ?? ts[0]?.cycles ?? {})) {
    const d = dx?.cycles[kind];
    row(
      `${kind} × ${r.options.cycles}: RSS after cycle 2, then the largest drift`,
      (t) => {
        const c = t.cycles[kind];
        if (c === undefined) return t.errors[kind] ? `failed: ${t.errors[kind]}` : "–";
        if (typeof c === "string") return c;
        const x = drift(c);
        return `${mib(c[1])}, ${x === undefined ? "–" : `±${(x * 100).toFixed(0)} %`}`;
      },
      `±10 %${verdict(Array.isArray(d) && drift(d) !== undefined ? drift(d)! <= 0.1 : undefined)}`,
    );
  }
  row(
    `${
      r.options.guests.toLocaleString("en-US")
    } guests' trees + 5 watches each (socket): RSS added per guest`,
    (t) =>
      t.host
        ? `${((t.host.loaded - t.host.before) / t.host.guests / 1024).toFixed(1)} KiB (${
          mib(t.host.loaded)
        })` +
          (t.host.errors > 0 ? `, ${t.host.errors} watches refused` : "")
        : t.errors.host
        ? `failed: ${t.errors.host}`
        : "–",
  );
  row(
    "the same removed again: RSS vs before",
    (t) => t.host ? `${mib(t.host.after)} (${pct(t.host.after / t.host.before - 1)})` : "–",
  );
  const out = [
    `### memory (RSS of each daemon; settled ${r.options.settle} s before each reading; load average ${r.load} at the end)`,
    "",
    `| | ${ts.map((t) => t.name).join(" | ")} | target (dxenstored) |`,
    `|---|${ts.map(() => "---:").join("|")}|---|`,
    ...rows.map((c) => `| ${c.join(" | ")} |`),
    "",
  ];
  const sim = r.sim;
  if (typeof sim === "string") out.push(`dxenstored under the simulated Xen: failed: ${sim}`, "");
  else if (sim !== undefined) {
    const per = (sim.loaded[0] - sim.idle) / sim.guests / 1024;
    const rel = sim.released;
    const x = drift(rel);
    out.push(
      `dxenstored under the simulated Xen, ${sim.guests} guests (tree, INTRODUCE, 5 watches over each ring): ` +
        `idle ${mib(sim.idle)}, with the guests ${sim.loaded.map(mib).join(" / ")} ` +
        `(${per.toFixed(1)} KiB per guest); after releasing them all ${rel.map(mib).join(" / ")}` +
        (x === undefined
          ? ""
          : ` (drift from cycle 2: ±${(x * 100).toFixed(0)} %, target ±10 %${verdict(x <= 0.1)})`),
      "",
    );
  }
  return out.join("\n");
}
