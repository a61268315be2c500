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
  /** hot=1, marks and exit only: the kernel and Xen TBs executed since the previous such snapshot. */
  readonly tbs?: readonly TbLine[];
  /** hot=1, marks and exit only: user-space code translated again since the previous such snapshot. */
  readonly again?: readonly AgainLine[];
}

/** A user-space address (and TB length) QEMU translated again: how often so far. */
export interface AgainLine {
  readonly vaddr: bigint;
  readonly insns: number;
  readonly times: number;
}

/** One translated kernel or Xen TB (plugin argument hot=1), its executions so far. */
export interface TbLine {
  /** The plugin's record number: one per translation. */
  readonly id: number;
  readonly cls: number;
  readonly vaddr: bigint;
  readonly insns: number;
  readonly execs: number;
  /** Spin-waits begun at a PAUSE in this TB, so far (0 from plugins before they were counted). */
  readonly spins: number;
}

export interface TcgCounts {
  readonly classes: readonly string[];
  /** log2 of a bucket's size in bytes. */
  readonly bucketShift: number;
  readonly snapshots: readonly TcgSnapshot[];
  /** hot=1: the instructions of Xen's TBs by record number (Xen's image carries no symbols). */
  readonly disassembly: ReadonlyMap<number, string>;
}

export type TcgParseResult = { ok: true; counts: TcgCounts } | { ok: false; error: string };

/** The mark numbers the guest's xse2e executes. */
export const MARK = { readsBegin: 1, readsEnd: 2, idleBegin: 3, idleEnd: 4 } as const;

/** The counters of a snapshot line, in the order the report prints them. */
export const COUNTERS = ["insn", "tbexec", "tbtrans", "transinsn", "entry", "modesw", "cpage"] as const;
/** Counters a later plugin added: zero when a file lacks them. */
const LATER_COUNTERS = ["pause", "spins", "retrans"] as const;

const numbers = (s: string) => s.split(",").map(Number);

export function parseTcgCounts(text: string): TcgParseResult {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const head = /^tcgcount v1 .*classes=(\S+) .*bucket_shift=(\d+)/.exec(lines[0] ?? "");
  if (!head) return { ok: false, error: `not a tcgcount v1 file (first line: ${lines[0] ?? "none"})` };
  const classes = head[1].split(",");
  const snapshots: TcgSnapshot[] = [];
  let tbs: TbLine[] | undefined;
  let again: AgainLine[] | undefined;
  const disassembly = new Map<number, string>();
  for (const [i, line] of lines.slice(1).entries()) {
    const rt = /^rt ([0-9a-f]+) (\d+) (\d+)$/.exec(line);
    if (rt && again) {
      again.push({ vaddr: BigInt(`0x${rt[1]}`), insns: Number(rt[2]), times: Number(rt[3]) });
      continue;
    }
    const dis = /^tbdis (\d+) (.*)$/.exec(line);
    if (dis) {
      disassembly.set(Number(dis[1]), dis[2]);
      continue;
    }
    const tb = /^tb (\d+) (\d+) ([0-9a-f]+) (\d+) (\d+)(?: (\d+))?$/.exec(line);
    if (tb && tbs) {
      tbs.push({
        id: Number(tb[1]),
        cls: Number(tb[2]),
        vaddr: BigInt(`0x${tb[3]}`),
        insns: Number(tb[4]),
        execs: Number(tb[5]),
        spins: Number(tb[6] ?? 0),
      });
      continue;
    }
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
    for (const c of LATER_COUNTERS) rows[c] = fields.has(c) ? numbers(fields.get(c)!) : classes.map(() => 0);
    const buckets = classes.map((_, c) => fields.get(`bucket_${c}`)).every((b) => b !== undefined)
      ? classes.map((_, c) => numbers(fields.get(`bucket_${c}`)!))
      : undefined;
    const [kind, mark] = why!.split(":");
    tbs = buckets ? [] : undefined;
    again = buckets ? [] : undefined;
    snapshots.push({
      tMs: Number(BigInt(t!) / 1000n) / 1000,
      why: kind,
      mark: mark === undefined ? undefined : Number(mark),
      rows,
      flushes: Number(fields.get("flushes")),
      buckets,
      tbs,
      again,
    });
  }
  return { ok: true, counts: { classes, bucketShift: Number(head[2]), snapshots, disassembly } };
}

/** What the machine emulated between two snapshots. */
export interface TcgWindow {
  readonly kind: "reads" | "idle";
  /** Its begin and end marks' places in TcgCounts.snapshots. */
  readonly from: number;
  readonly to: number;
  readonly ms: number;
  readonly rows: Readonly<Record<string, readonly number[]>>;
  readonly flushes: number;
  readonly buckets?: readonly (readonly number[])[];
}

function delta(counts: TcgCounts, from: number, to: number, kind: TcgWindow["kind"]): TcgWindow {
  const a = counts.snapshots[from], b = counts.snapshots[to];
  const rows: Record<string, number[]> = {};
  for (const c of [...COUNTERS, ...LATER_COUNTERS]) rows[c] = b.rows[c].map((v, i) => v - a.rows[c][i]);
  const buckets = a.buckets && b.buckets
    ? b.buckets.map((cls, c) => cls.map((v, i) => v - a.buckets![c][i]))
    : undefined;
  return { kind, from, to, ms: b.tMs - a.tMs, rows, flushes: b.flushes - a.flushes, buckets };
}

/**
 * The guest's windows in order: each begin mark with the next end mark of its kind (a begin without
 * its end — the boot ended or the benchmark failed — is dropped).
 */
export function tcgWindows(counts: TcgCounts): TcgWindow[] {
  const out: TcgWindow[] = [];
  let open: { at: number; kind: TcgWindow["kind"] } | undefined;
  for (const [at, s] of counts.snapshots.entries()) {
    if (s.why !== "mark") continue;
    if (s.mark === MARK.readsBegin) open = { at, kind: "reads" };
    else if (s.mark === MARK.idleBegin) open = { at, kind: "idle" };
    else if (
      open &&
      (s.mark === MARK.readsEnd && open.kind === "reads" || s.mark === MARK.idleEnd && open.kind === "idle")
    ) {
      out.push(delta(counts, open.at, at, open.kind));
      open = undefined;
    }
  }
  return out;
}

/** A kernel or Xen code address and the instructions executed from TBs starting there in a window. */
export interface HotTb {
  readonly cls: string;
  readonly vaddr: bigint;
  readonly insns: number;
  /** Spin-waits begun in it. */
  readonly spins: number;
  /** Xen's TBs: their instructions, as QEMU disassembled them. */
  readonly disassembly?: string;
}

/** The window's kernel and Xen TBs (hot=1) by instructions executed, most first (retranslations summed). */
export function hotTbs(counts: TcgCounts, w: TcgWindow): HotTb[] {
  const at = (upTo: number) => {
    const execs = new Map<number, TbLine>();
    for (const s of counts.snapshots.slice(0, upTo + 1)) for (const t of s.tbs ?? []) execs.set(t.id, t);
    return execs;
  };
  const before = at(w.from), after = at(w.to);
  const byAddr = new Map<string, HotTb>();
  for (const [id, t] of after) {
    const insns = (t.execs - (before.get(id)?.execs ?? 0)) * t.insns;
    const spins = t.spins - (before.get(id)?.spins ?? 0);
    if (insns <= 0) continue;
    const key = `${t.cls}:${t.vaddr}`;
    const prev = byAddr.get(key);
    byAddr.set(key, {
      cls: counts.classes[t.cls],
      vaddr: t.vaddr,
      insns: (prev?.insns ?? 0) + insns,
      spins: (prev?.spins ?? 0) + spins,
      disassembly: prev?.disassembly ?? counts.disassembly.get(id),
    });
  }
  return [...byAddr.values()].sort((a, b) => b.insns - a.insns);
}

/**
 * The user-space code a window translated again (hot=1), by address: how many times within the window.
 * Many addresses once each is a page of code invalidated once (new code written beside it); a few
 * addresses many times is the same code invalidated over and over.
 */
export function translatedAgain(
  counts: TcgCounts,
  w: TcgWindow,
): { vaddr: bigint; insns: number; times: number }[] {
  const at = (upTo: number) => {
    const times = new Map<string, AgainLine>();
    for (const s of counts.snapshots.slice(0, upTo + 1)) {
      for (const a of s.again ?? []) times.set(`${a.vaddr}:${a.insns}`, a);
    }
    return times;
  };
  const before = at(w.from);
  return [...at(w.to)]
    .map(([key, a]) => ({ vaddr: a.vaddr, insns: a.insns, times: a.times - (before.get(key)?.times ?? 0) }))
    .filter((a) => a.times > 0)
    .sort((a, b) => b.times - a.times);
}

/**
 * Of hot TBs, the instructions of spin loops: TBs that begin with a PAUSE, the TB right after one (QEMU
 * ends a TB at a PAUSE: the loop's test starts the next), and TBs whose last instruction jumps back to
 * one. A wait loop's callees (a CPU-mask test, say) are not counted: a lower bound.
 */
export function spinInstructions(hot: readonly HotTb[]): number {
  const pauses = new Set(hot.filter((t) => t.disassembly?.startsWith("pause")).map((t) => t.vaddr));
  const jumpsBack = (d: string) => {
    const m = /j[a-z]+ 0x([0-9a-f]+)$/.exec(d.trim());
    return m !== null && pauses.has(BigInt(`0x${m[1]}`));
  };
  return sum(
    hot.filter((t) => pauses.has(t.vaddr) || pauses.has(t.vaddr - 2n) || jumpsBack(t.disassembly ?? ""))
      .map((t) => t.insns),
  );
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
  { label: "  user space below 4 GiB (static: busybox, xse2e)", value: byClass("insn", "user_low") },
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
  { label: "  of code translated before", value: total("retrans") },
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
  { label: "PAUSE executed (spin-waits)", value: total("pause") },
  { label: "  in Xen", value: byClass("pause", "xen") },
  { label: "spin-waits begun (PAUSE loops entered)", value: total("spins") },
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
  out.push(...hotLines(perBoot));
  out.push(...againLines(perBoot));
  return out;
}

/** Window 1's user-space code translated again: how spread over addresses, and the 64 KiB regions most hit. */
function againLines(perBoot: readonly { boot: TcgBoot; windows: ReturnType<typeof labelled> }[]): string[] {
  const out: string[] = [];
  for (const p of perBoot) {
    const w = p.windows.find((x) => x.label === "window 1");
    if (!w || !p.boot.counts.snapshots[w.w.to].again) continue;
    const again = translatedAgain(p.boot.counts, w.w);
    const total = sum(again.map((a) => a.times));
    const once = again.filter((a) => a.times === 1).length;
    const regions = new Map<bigint, number>();
    for (const a of again) regions.set(a.vaddr >> 16n, (regions.get(a.vaddr >> 16n) ?? 0) + a.times);
    const top = [...regions].sort((a, b) => b[1] - a[1]).slice(0, 6)
      .map(([r, n]) => `0x${(r << 16n).toString(16)} ${n}`);
    out.push(
      `  ${p.boot.xsd}, window 1: user code translated again ${total} times at ${again.length} addresses ` +
        `(${once} of them once; most at one address: ${again[0]?.times ?? 0}); by 64 KiB region: ${
          top.join(", ")
        }`,
    );
  }
  return out;
}

/**
 * Window 1's kernel and Xen TBs by instructions per READ, the top HOT_ROWS of each (Xen's with their
 * instructions: neither Xen's image nor Debian's System.map carry symbols).
 */
const HOT_ROWS = 12;
function hotLines(perBoot: readonly { boot: TcgBoot; windows: ReturnType<typeof labelled> }[]): string[] {
  const out: string[] = [];
  for (const p of perBoot) {
    const w = p.windows.find((x) => x.label === "window 1");
    if (!w || !p.boot.counts.snapshots[w.w.to].tbs) continue;
    const hot = hotTbs(p.boot.counts, w.w);
    const xen = hot.filter((t) => t.cls === "xen");
    out.push(
      `  ${p.boot.xsd}, window 1: Xen's instructions per READ in spin loops (at least): ` +
        `${fmt(spinInstructions(xen) / w.per)} of ${fmt(sum(xen.map((t) => t.insns)) / w.per)}`,
    );
    for (const cls of ["kernel", "xen"]) {
      const byName = new Map<string, number>();
      for (const t of hot.filter((t) => t.cls === cls)) {
        const spins = t.spins > 0 ? `  [${fmt(t.spins / w.per)} spin-waits begun]` : "";
        const name = `0x${t.vaddr.toString(16)}${
          t.disassembly ? `  ${t.disassembly.slice(0, 90)}` : ""
        }${spins}`;
        byName.set(name, (byName.get(name) ?? 0) + t.insns);
      }
      const top = [...byName].sort((a, b) => b[1] - a[1]).slice(0, HOT_ROWS);
      if (top.length === 0) continue;
      out.push(
        `  ${p.boot.xsd}, window 1, ${
          cls === "xen" ? "Xen's TBs" : "kernel functions"
        } by instructions per READ:`,
      );
      for (const [name, insns] of top) out.push(`    ${fmt(insns / w.per).padStart(10)}  ${name}`);
    }
  }
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
