// The workloads `deno task bench` measures, in run order. Every target runs
// every workload (the echo floor too: with --floor xsbench sends the same
// messages and skips reply checks, so "× floor" compares like with like).
//
// Order matters: the store is never reset between workloads, so the
// txstart runs, which fill it to 1k → 10k → 100k leaves, come last.

export interface Workload {
  /** Short name for --workloads; "txn" selects every "txn-*". */
  id: string;
  /** What one operation is, for the summary. */
  title: string;
  /** xsbench arguments. */
  args: string[];
  /** Part of the --quick set. */
  quick?: boolean;
  /**
   * An issue's target for dxenstored measured on this workload (bench/report.ts: targetTable): such a
   * workload runs at least TARGET_REPEAT rounds, so the target is judged on a median, not one run.
   */
  target?: Target;
}

/**
 * dxenstored's goal on a workload, as a ratio measured in the same round: "floor" = echo-floor ops/s
 * ÷ dxenstored's (its time per operation in floors) at most `at`; "anchor" = dxenstored's `metric`
 * ÷ the best reference daemon's in that round at least `at`.
 */
export type Target =
  | { readonly kind: "floor"; readonly at: number; readonly issue: number }
  | {
    readonly kind: "anchor";
    readonly metric: "ops_per_s" | "commit_per_s";
    readonly at: number;
    readonly issue: number;
  };

/**
 * Rounds of a workload with a target (at least; --repeat may ask for more): one run is not enough on
 * a shared machine (issue 20 saw txn-create at 0.75–1.42× cxenstored's across single runs).
 */
export const TARGET_REPEAT = 5;

const read = (c: number): Workload => ({
  id: `read-c${c}`,
  title: `READ of a 16-byte node, ${c} client${c > 1 ? "s" : ""}`,
  args: ["--workload", "read", "--clients", String(c)],
  quick: c === 1,
  // Issue 20: one-connection READ within 1.5 times the echo floor's time.
  target: c === 1 ? { kind: "floor", at: 1.5, issue: 20 } : undefined,
});

const txn = (mode: string, clients = 8, quick = false): Workload => ({
  id: clients === 8 ? `txn-${mode}` : `txn-${mode}-c${clients}`,
  title: `transaction START, READ, WRITE+1, ${mode === "create" ? "create/rm own child, " : ""}END; ` +
    `mode ${mode}, ${clients} clients, no retry`,
  args: ["--workload", "txn", "--mode", mode, "--clients", String(clients)],
  quick,
  // Issue 20: transactions (create, 16 clients) at 1.3 times the best anchor's commits/s.
  target: mode === "create" && clients === 16
    ? { kind: "anchor", metric: "commit_per_s", at: 1.3, issue: 20 }
    : undefined,
});

const watch = (w: number, quick = false): Workload => ({
  id: `watch-${w}`,
  title: `WRITE + its watch event, ${w} unrelated watches`,
  args: ["--workload", "watch", "--watches", String(w)],
  quick,
});

const txstart = (n: number, label: string, quick = false): Workload => ({
  id: `txstart-${label}`,
  title: `TRANSACTION_START + END(abort) with ${label} leaves in the store`,
  args: ["--workload", "txstart", "--store-nodes", String(n)],
  quick,
});

export const WORKLOADS: Workload[] = [
  read(1),
  {
    id: "write",
    title: "WRITE of a 16-byte value, 1 client",
    args: ["--workload", "write"],
    quick: true,
  },
  { id: "directory", title: "DIRECTORY of a node with 100 children", args: ["--workload", "directory"] },
  read(4),
  read(16),
  {
    id: "pipeline-8",
    title: "READ, 8 in flight on one connection",
    args: ["--workload", "pipeline", "--depth", "8"],
    quick: true,
  },
  {
    id: "pipeline-32",
    title: "READ, 32 in flight on one connection",
    args: ["--workload", "pipeline", "--depth", "32"],
  },
  txn("disjoint"),
  txn("same"),
  txn("create", 8, true),
  txn("create", 16, true),
  watch(10, true),
  watch(1000, true),
  watch(10000),
  txstart(1000, "1k", true),
  txstart(10000, "10k", true),
  txstart(100000, "100k"),
];

/** Workloads chosen by --workloads names (exact id or id prefix before "-"). */
export function selectWorkloads(names: string[] | undefined, quick: boolean): Workload[] {
  if (!names) return quick ? WORKLOADS.filter((w) => w.quick) : WORKLOADS;
  const unknown = names.filter((n) => !WORKLOADS.some((w) => matches(w, n)));
  if (unknown.length > 0) {
    throw new Error(
      `unknown workload ${unknown.join(", ")}; known: ${WORKLOADS.map((w) => w.id).join(", ")}`,
    );
  }
  return WORKLOADS.filter((w) => names.some((n) => matches(w, n)));
}

function matches(w: Workload, name: string): boolean {
  return w.id === name || w.id.startsWith(name + "-");
}
