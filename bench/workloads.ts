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
}

const read = (c: number): Workload => ({
  id: `read-c${c}`,
  title: `READ of a 16-byte node, ${c} client${c > 1 ? "s" : ""}`,
  args: ["--workload", "read", "--clients", String(c)],
  quick: c === 1,
});

const txn = (mode: string, quick = false): Workload => ({
  id: `txn-${mode}`,
  title: `transaction START, READ, WRITE+1, ${mode === "create" ? "create/rm own child, " : ""}END; ` +
    `mode ${mode}, 8 clients, no retry`,
  args: ["--workload", "txn", "--mode", mode, "--clients", "8"],
  quick,
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
  txn("create", true),
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
