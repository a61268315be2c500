/**
 * What QEMU's TCG emulated per guest READ (`deno task e2e:xen --tcg-counts`): reads the counts file of
 * the tcgcount plugin (e2e/xen/tcg_plugin/tcgcount.c) of each plan B boot and prints, per READ of the
 * guest's benchmark windows, the instructions executed by class of the code's virtual address, the
 * translation blocks executed and translated, the entries into Xen, the user/kernel mode switches and
 * the code pages entered after them — for dxenstored and cxenstored under the same guest load.
 *
 * The windows are the guest's own marks (tests/xen/qemu/guest/xse2e.c, TCG_MARK): 1/2 around each
 * `xse2e bench`'s timed READs (plan B: the 200 warm-up READs, then 1 000, then 1 000 more), 3/4 around
 * its 2 s idle window after them. Counts cover the whole machine (both vCPUs: Xen, dom0, the guest);
 * the idle window gives the background rate (dom0's init polling the guest's console, timers, the
 * idle daemon), printed as what that rate would add over a READ window's host time.
 *
 * Counts do not depend on the host's load (timings do): the emulation executes the same instructions
 * however slowly; only what depends on time (the background, timer interrupts) changes with it.
 */

/** One line of the plugin's output: cumulative counters at a host instant. */
export interface TcgSnapshot {
  /** Host CLOCK_REALTIME, ms. */
  readonly tMs: number;
  /** "tick", "exit" or "mark". */
  readonly why: string;
  /** The mark's number (why === "mark"). */
  readonly mark?: number;
  /** counter name (insn, tbexec, tbtrans, transinsn, entry, modesw, cpage) → one value per class. */
  readonly rows: Readonly<Record<string, readonly number[]>>;
  readonly flushes: number;
  /** Marks and exit only: instructions per class (outer) and 64 MiB bucket of guest RAM (inner). */
  readonly buckets?: readonly (readonly number[])[];
}

export interface TcgCounts {
  readonly classes: readonly string[];
  /** log2 of a bucket's size in bytes. */
  readonly bucketShift: number;
  readonly snapshots: readonly TcgSnapshot[];
}

export type TcgParseResult = { ok: true; counts: TcgCounts } | { ok: false; error: string };

/** The mark numbers the guest's xse2e executes. */
export const MARK = { readsBegin: 1, readsEnd: 2, idleBegin: 3, idleEnd: 4 } as const;

/** The counters of a snapshot line, in the order the report prints them. */
export const COUNTERS = ["insn", "tbexec", "tbtrans", "transinsn", "entry", "modesw", "cpage"] as const;

const numbers = (s: string) => s.split(",").map(Number);

export function parseTcgCounts(text: string): TcgParseResult {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const head = /^tcgcount v1 .*classes=(\S+) .*bucket_shift=(\d+)/.exec(lines[0] ?? "");
  if (!head) return { ok: false, error: `not a tcgcount v1 file (first line: ${lines[0] ?? "none"})` };
  const classes = head[1].split(",");
  const snapshots: TcgSnapshot[] = [];
  for (const [i, line] of lines.slice(1).entries()) {
    // a line cut short when QEMU was killed mid-write: only the last line may be
    const fields = new Map(line.split(" ").slice(1).map((kv) => kv.split("=", 2) as [string, string]));
    const t = fields.get("t_ns"), why = fields.get("why");
    const complete = line.startsWith("snap ") && t !== undefined && why !== undefined &&
      COUNTERS.every((c) => numbers(fields.get(c) ?? "").length === classes.length) &&
      fields.has("flushes");
    if (!complete) {
      if (i === lines.length - 2) break;
      return { ok: false, error: `line ${i + 2}: not a complete snapshot: ${line.slice(0, 120)}` };
    }
    const rows: Record<string, number[]> = {};
    for (const c of COUNTERS) rows[c] = numbers(fields.get(c)!);
    const buckets = classes.map((_, c) => fields.get(`bucket_${c}`)).every((b) => b !== undefined)
      ? classes.map((_, c) => numbers(fields.get(`bucket_${c}`)!))
      : undefined;
    const [kind, mark] = why!.split(":");
    snapshots.push({
      tMs: Number(BigInt(t!) / 1000n) / 1000,
      why: kind,
      mark: mark === undefined ? undefined : Number(mark),
      rows,
      flushes: Number(fields.get("flushes")),
      buckets,
    });
  }
  return { ok: true, counts: { classes, bucketShift: Number(head[2]), snapshots } };
}

/** What the machine emulated between two snapshots. */
export interface TcgWindow {
  readonly kind: "reads" | "idle";
  readonly ms: number;
  readonly rows: Readonly<Record<string, readonly number[]>>;
  readonly flushes: number;
  readonly buckets?: readonly (readonly number[])[];
}

function delta(a: TcgSnapshot, b: TcgSnapshot, kind: TcgWindow["kind"]): TcgWindow {
  const rows: Record<string, number[]> = {};
  for (const c of COUNTERS) rows[c] = b.rows[c].map((v, i) => v - a.rows[c][i]);
  const buckets = a.buckets && b.buckets
    ? b.buckets.map((cls, c) => cls.map((v, i) => v - a.buckets![c][i]))
    : undefined;
  return { kind, ms: b.tMs - a.tMs, rows, flushes: b.flushes - a.flushes, buckets };
}

/**
 * The guest's windows in order: each begin mark with the next end mark of its kind (a begin without
 * its end — the boot ended or the benchmark failed — is dropped).
 */
export function tcgWindows(counts: TcgCounts): TcgWindow[] {
  const out: TcgWindow[] = [];
  let open: { snap: TcgSnapshot; kind: TcgWindow["kind"] } | undefined;
  for (const s of counts.snapshots) {
    if (s.why !== "mark") continue;
    if (s.mark === MARK.readsBegin) open = { snap: s, kind: "reads" };
    else if (s.mark === MARK.idleBegin) open = { snap: s, kind: "idle" };
    else if (
      open &&
      (s.mark === MARK.readsEnd && open.kind === "reads" || s.mark === MARK.idleEnd && open.kind === "idle")
    ) {
      out.push(delta(open.snap, s, open.kind));
      open = undefined;
    }
  }
  return out;
}

/** A boot's counts with the READs of each of its READ windows (plan B: 200, 1000, 1000). */
export interface TcgBoot {
  readonly xsd: string;
  readonly counts: TcgCounts;
  readonly readsPerWindow: readonly number[];
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

interface Row {
  readonly label: string;
  /** The value of a window, per READ (or per second for the idle window). */
  readonly value: (w: TcgWindow, classes: readonly string[]) => number;
}

const byClass = (counter: string, cls: string): Row["value"] => (w, classes) => {
  const i = classes.indexOf(cls);
  return i < 0 ? NaN : w.rows[counter][i];
};
const total = (counter: string): Row["value"] => (w) => sum(w.rows[counter]);

const ROWS: Row[] = [
  { label: "instructions, total", value: total("insn") },
  { label: "  user space below 4 GiB (guest's xse2e)", value: byClass("insn", "user_low") },
  { label: "  user space (dom0's daemon, dom0's tools)", value: byClass("insn", "user") },
  { label: "  Linux kernels (dom0's and the guest's)", value: byClass("insn", "kernel") },
  { label: "  Xen", value: byClass("insn", "xen") },
  { label: "  other", value: byClass("insn", "other") },
  { label: "TB executions, total", value: total("tbexec") },
  {
    label: "  of which user space",
    value: (w, c) => byClass("tbexec", "user")(w, c) + byClass("tbexec", "user_low")(w, c),
  },
  { label: "TB translations, total", value: total("tbtrans") },
  {
    label: "  user space",
    value: (w, c) => byClass("tbtrans", "user")(w, c) + byClass("tbtrans", "user_low")(w, c),
  },
  { label: "  Linux kernels", value: byClass("tbtrans", "kernel") },
  { label: "  Xen", value: byClass("tbtrans", "xen") },
  { label: "instructions translated", value: total("transinsn") },
  { label: "entries into Xen", value: total("entry") },
  {
    label: "  from user space",
    value: (w, c) => byClass("entry", "user")(w, c) + byClass("entry", "user_low")(w, c),
  },
  { label: "user <-> kernel switches (page tables)", value: total("modesw") },
  { label: "code pages entered after a switch", value: total("cpage") },
  {
    label: "  user space",
    value: (w, c) => byClass("cpage", "user")(w, c) + byClass("cpage", "user_low")(w, c),
  },
  { label: "code-cache flushes", value: (w) => w.flushes },
];

function fmt(x: number): string {
  if (!Number.isFinite(x)) return "-";
  const a = Math.abs(x);
  return a >= 100 ? Math.round(x).toLocaleString("en-US") : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** The windows of a boot, labelled: READ windows after the first (the warm-up) and the idle window. */
function labelled(boot: TcgBoot): { label: string; w: TcgWindow; per: number }[] {
  const ws = tcgWindows(boot.counts);
  const reads = ws.filter((w) => w.kind === "reads");
  const out = reads.map((w, i) => ({
    label: i === 0 ? `warm-up (${boot.readsPerWindow[0] ?? "?"} READs)` : `window ${i}`,
    w,
    per: boot.readsPerWindow[i] ?? NaN,
  }));
  const idle = ws.find((w) => w.kind === "idle");
  if (idle) out.push({ label: "idle", w: idle, per: idle.ms / 1000 });
  return out;
}

/**
 * The report: per READ window (the warm-up skipped), each counter per READ for every boot, with
 * dxenstored's ratio to and difference from the first reference; then the idle window per second and
 * what that background adds per READ.
 */
export function tcgTable(boots: readonly TcgBoot[]): string[] {
  if (boots.length === 0) return [];
  const perBoot = boots.map((b) => ({ boot: b, windows: labelled(b) }));
  const dx = perBoot.find((p) => p.boot.xsd === "dxenstored");
  const ref = perBoot.find((p) => p.boot.xsd !== "dxenstored");
  const names = perBoot.map((p) => p.boot.xsd);
  const out = [
    "what TCG emulated per guest READ (tcgcount plugin; the whole machine: Xen, dom0, the guest)",
  ];
  const labels = [...new Set(perBoot.flatMap((p) => p.windows.map((w) => w.label)))]
    .filter((l) => !l.startsWith("warm-up"));
  for (const label of labels) {
    const idle = label === "idle";
    const cols = perBoot.map((p) => p.windows.find((w) => w.label === label));
    const head = idle ? `${label}: per second` : `${label}: per READ`;
    out.push(
      `  ${head.padEnd(46)}${names.map((n) => n.padStart(14)).join("")}${
        dx && ref && !idle ? "     dx/ref        dx-ref" : ""
      }`,
    );
    const classes = (i: number) => perBoot[i].boot.counts.classes;
    const rows: Row[] = [
      { label: "host time (ms)", value: (w) => w.ms },
      ...ROWS,
    ];
    for (const row of rows) {
      const vals = cols.map((c, i) => (c ? row.value(c.w, classes(i)) / c.per : NaN));
      let tail = "";
      if (dx && ref && !idle) {
        const d = vals[perBoot.indexOf(dx)], r = vals[perBoot.indexOf(ref)];
        tail = `${(r ? (d / r).toFixed(2) : "-").padStart(11)}${fmt(d - r).padStart(14)}`;
      }
      out.push(`  ${row.label.padEnd(46)}${vals.map((v) => fmt(v).padStart(14)).join("")}${tail}`);
    }
    if (!idle) {
      // the background the idle window measured, over this window's host time, per READ
      const bg = cols.map((c, i) => {
        const idleW = perBoot[i].windows.find((w) => w.label === "idle");
        return c && idleW ? (sum(idleW.w.rows.insn) / idleW.w.ms) * c.w.ms / c.per : NaN;
      });
      out.push(
        `  ${"  background at the idle rate (instructions)".padEnd(46)}${
          bg.map((v) => fmt(v).padStart(14)).join("")
        }`,
      );
    }
  }
  out.push(...bucketLines(perBoot));
  return out;
}

/**
 * Where in guest RAM the code of window 1 ran, per class (instructions per READ by 64 MiB bucket of
 * machine memory): dom0's and the guest's kernels share virtual addresses but not memory.
 */
function bucketLines(perBoot: readonly { boot: TcgBoot; windows: ReturnType<typeof labelled> }[]): string[] {
  const out: string[] = [];
  for (const p of perBoot) {
    const w = p.windows.find((x) => x.label === "window 1");
    if (!w?.w.buckets) continue;
    const mib = 2 ** p.boot.counts.bucketShift / 2 ** 20;
    out.push(`  ${p.boot.xsd}, window 1, instructions per READ by ${mib} MiB of guest RAM the code is in:`);
    for (const [c, cls] of p.boot.counts.classes.entries()) {
      const parts = w.w.buckets[c]
        .map((v, b) => ({ b, v: v / w.per }))
        .filter((x) => x.v >= 1)
        .map((x) => `${x.b === w.w.buckets![c].length - 1 ? "rom" : `@${x.b * mib}M`} ${fmt(x.v)}`);
      if (parts.length > 0) out.push(`    ${cls}: ${parts.join(", ")}`);
    }
  }
  return out;
}
