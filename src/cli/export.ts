// `dxenstored export|import`: move a whole store between backends, out of a running host, or out of
// a legacy xenstored TDB file. Formats: src/backend/export.ts; docs/backends.md has examples.
import { latin1 } from "../common/latin1.ts";
import { log, setLogLevel } from "../common/log.ts";
import {
  type Backend,
  type BackendSpec,
  formatBackendSpec,
  parseBackendSpec,
  parseSyncMode,
  SYNC_MODES_TEXT,
  type SyncMode,
} from "../backend/backend.ts";
import { createBackend } from "../backend/open.ts";
import { initialRoot } from "../store/database.ts";
import {
  buildExportedTree,
  type ExportedStore,
  fromJsonLines,
  fromLsText,
  ImportError,
  toJsonLines,
  toLsLines,
  treeNodes,
  withoutInactiveEntries,
} from "../backend/export.ts";
import { readXenstoredTdb, TDB_MAGIC_FOOD } from "../backend/xs_tdb.ts";
import { readHostStore, type SnapshotMethod, writeHostStore } from "./host_store.ts";
import { Progress } from "./progress.ts";

export const MIGRATION_USAGE = `Usage:
  dxenstored export (--backend SPEC | --socket PATH) [--format jsonl|ls|ls-f] [--output FILE]
                    [--snapshot auto|transaction|watch]
  dxenstored import (--backend SPEC | --socket PATH) [--format jsonl|ls|xenstored-tdb] [FILE]

export writes a whole store to stdout (or FILE):
  --backend SPEC   a stored backend: file:<dir> | sqlite:<file> | tdb:<file> |
                   so:<library.so>[:<args>], or xenstored-tdb:<file> (a TDB file
                   of Xen's C xenstored). Stop the daemon that uses it first (its
                   lock is taken).
  --socket PATH    a running daemon (Xen's cxenstored/oxenstored or dxenstored), read
                   as one snapshot; node generations are not visible
  --snapshot M     how the snapshot is taken from --socket: transaction (one
                   transaction: dxenstored, oxenstored), watch (read while a watch
                   on / reports changes, re-read until a pass sees none: cxenstored,
                   whose transactions slow down with their size), auto (default:
                   by daemon)
  --format F       jsonl: lossless JSON lines (default); ls: what
                   "xenstore-ls -p /" prints on an unlimited-width terminal;
                   ls-f: "xenstore-ls -f -p /"
  --recover        read a damaged store as the daemon's --recover would

import builds a store from FILE (default: standard input):
  --backend SPEC   a new store (refused if SPEC already holds one); with --sync MODE
                   (${SYNC_MODES_TEXT}; default always)
  --socket PATH    write the nodes into a running daemon (WRITE + SET_PERMS each, in
                   transactions of 128-512 nodes; other nodes are left alone)
  --format F       jsonl | ls (xenstore-ls [-f] [-p] output) | xenstored-tdb (FILE is
                   Xen's TDB, e.g. /var/lib/xenstored/tdb); default: from the content
`;

type Target = { kind: "backend"; spec: BackendSpec | { kind: "xenstored-tdb"; file: string } } | {
  kind: "socket";
  path: string;
};

interface MigrationArgs {
  target: Target;
  format?: string;
  output?: string;
  input?: string;
  sync: SyncMode;
  recover: boolean;
  snapshot: "auto" | SnapshotMethod;
}

function parse(cmd: "export" | "import", argv: readonly string[]): MigrationArgs | string {
  let target: Target | null = null;
  const a: Omit<MigrationArgs, "target"> = { sync: "always", recover: false, snapshot: "auto" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf("=");
    const [flag, inline] = arg.startsWith("--") && eq > 0
      ? [arg.slice(0, eq), arg.slice(eq + 1)]
      : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    try {
      switch (flag) {
        case "--backend": {
          const v = value();
          if (v.startsWith("xenstored-tdb:") && cmd === "export") {
            target = { kind: "backend", spec: { kind: "xenstored-tdb", file: v.slice(14) } };
            break;
          }
          const b = parseBackendSpec(v);
          if (typeof b === "string") return b;
          if (b.kind === "memory") return "the memory backend stores nothing to export or import";
          target = { kind: "backend", spec: b };
          break;
        }
        case "--socket":
          target = { kind: "socket", path: value() };
          break;
        case "--format":
          a.format = value();
          break;
        case "--output":
          if (cmd !== "export") return "--output is for export";
          a.output = value();
          break;
        case "--sync": {
          const m = parseSyncMode(value());
          if (m === null) return `--sync must be ${SYNC_MODES_TEXT}`;
          a.sync = m;
          break;
        }
        case "--recover":
          a.recover = true;
          break;
        case "--snapshot": {
          if (cmd !== "export") return "--snapshot is for export";
          const m = value();
          if (m !== "auto" && m !== "transaction" && m !== "watch") {
            return "--snapshot must be auto, transaction or watch";
          }
          a.snapshot = m;
          break;
        }
        case "-h":
        case "--help":
          return "help";
        default:
          if (cmd === "import" && !arg.startsWith("-") || arg === "-") {
            if (a.input !== undefined) return `one input file only (got ${a.input} and ${arg})`;
            a.input = arg;
            break;
          }
          return `unknown ${cmd} option "${arg}"`;
      }
    } catch (e) {
      return (e as Error).message;
    }
  }
  if (target === null) return `${cmd} needs --backend SPEC or --socket PATH`;
  const formats = cmd === "export" ? ["jsonl", "ls", "ls-f"] : ["jsonl", "ls", "xenstored-tdb"];
  if (a.format !== undefined && !formats.includes(a.format)) {
    return `--format must be one of ${formats.join(", ")} for ${cmd}`;
  }
  return { target, ...a };
}

/** True if the spec names something that exists (export must not create an empty store). */
function storeExists(spec: BackendSpec): boolean {
  try {
    if (spec.kind === "file") {
      return [...Deno.readDirSync(spec.dir)].some((e) => e.name === "snapshot" || e.name === "log");
    }
    if (spec.kind === "so") return true; // only the module can tell: load() returns null for none
    return spec.kind !== "memory" && Deno.statSync(spec.file).size > 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The store to export, and the summary line that describes where it came from. */
async function readExport(a: MigrationArgs): Promise<{ store: ExportedStore; from: string }> {
  const t = a.target;
  if (t.kind === "socket") {
    const progress = new Progress(`exporting from ${t.path}`);
    const r = await readHostStore(t.path, { snapshot: a.snapshot, onProgress: (n) => progress.update(n) });
    progress.done();
    const how = r.method === "transaction"
      ? "one transaction"
      : `a watch on /, ${r.passes} pass(es), ${r.changes} change(s) re-read`;
    return {
      store: { nodes: r.nodes, gen: null, domains: [] },
      from: `${r.daemon} at ${t.path}; snapshot: ${how}` +
        (r.fallback === null ? "" : ` (a transaction failed: ${r.fallback})`),
    };
  }
  if (t.spec.kind === "xenstored-tdb") {
    const r = readXenstoredTdb(t.spec.file);
    for (const w of r.warnings) log("warn", `${t.spec.file}: ${w}`);
    return {
      store: { nodes: treeNodes(r.root), gen: r.gen, domains: [] },
      from: `xenstored-tdb:${t.spec.file}`,
    };
  }
  if (!storeExists(t.spec)) throw new Error(`no store at ${formatBackendSpec(t.spec)}`);
  const backend = createBackend(t.spec, { sync: "always", recover: a.recover });
  try {
    const s = backend.load();
    if (s === null && t.spec.kind === "so") throw new Error(`no store at ${formatBackendSpec(t.spec)}`);
    const root = s?.root ?? initialRoot(0);
    return {
      store: { nodes: treeNodes(root), gen: s?.gen ?? 0, domains: s?.domains ?? [] },
      from: formatBackendSpec(t.spec),
    };
  } finally {
    backend.close();
  }
}

/** "12345 nodes ... in 1.2 s (10288 nodes/s)". */
function timing(nodes: number, seconds: number): string {
  return `in ${seconds.toFixed(1)} s (${Math.round(nodes / Math.max(seconds, 1e-3))} nodes/s)`;
}

const enc = new TextEncoder();

/** Node values are bytes (Latin-1 strings); JSON text is UTF-8 (JSON escapes keep it exact). */
function writeOut(lines: Iterable<string>, output: string | undefined, latin1: boolean): void {
  const f = output === undefined
    ? Deno.stdout
    : Deno.openSync(output, { write: true, create: true, truncate: true });
  try {
    let chunk = "";
    const flush = () => {
      const b = latin1 ? Uint8Array.from(chunk, (c) => c.charCodeAt(0)) : enc.encode(chunk);
      for (let o = 0; o < b.length;) o += f.writeSync(b.subarray(o));
      chunk = "";
    };
    for (const l of lines) {
      chunk += l + "\n";
      if (chunk.length > 1 << 16) flush();
    }
    flush();
  } finally {
    if (f !== Deno.stdout) f.close();
  }
}

async function readInput(input: string | undefined): Promise<Uint8Array> {
  if (input !== undefined && input !== "-") return Deno.readFileSync(input);
  const parts: Uint8Array[] = [];
  for await (const c of Deno.stdin.readable) parts.push(c);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

function detectFormat(b: Uint8Array): string {
  const head = String.fromCharCode(...b.subarray(0, 64));
  if (head.startsWith(TDB_MAGIC_FOOD)) return "xenstored-tdb";
  return head.trimStart().startsWith("{") ? "jsonl" : "ls";
}

async function runImport(a: MigrationArgs): Promise<string> {
  if (a.format === "xenstored-tdb" && (a.input === undefined || a.input === "-")) {
    throw new ImportError("--format xenstored-tdb needs the TDB file as FILE");
  }
  let store: ExportedStore;
  let tree: { root: ReturnType<typeof initialRoot>; gen: number };
  const bytes = a.format === "xenstored-tdb" ? null : await readInput(a.input);
  const format = a.format ?? (bytes === null ? "xenstored-tdb" : detectFormat(bytes));
  if (format === "xenstored-tdb") {
    const r = readXenstoredTdb(a.input!);
    for (const w of r.warnings) log("warn", `${a.input}: ${w}`);
    tree = { root: r.root, gen: r.gen };
    store = { nodes: treeNodes(r.root), gen: r.gen, domains: [] };
  } else {
    // JSON is UTF-8; xenstore-ls output is ASCII (everything else is escaped).
    const text = format === "jsonl" ? new TextDecoder().decode(bytes!) : latin1(bytes!);
    store = format === "jsonl" ? fromJsonLines(text) : fromLsText(text);
    tree = buildExportedTree(store);
  }
  const t = a.target;
  if (t.kind === "socket") {
    const { nodes, dropped } = withoutInactiveEntries(store.nodes);
    if (dropped > 0) {
      log("warn", `left out ${dropped} inactive permission entries (SET_PERMS cannot write one inactive)`);
    }
    const progress = new Progress(`importing into ${t.path}`, nodes.length);
    const r = await writeHostStore(t.path, nodes, { onProgress: (n) => progress.update(n) });
    progress.done();
    return `imported ${r.nodes} nodes into ${r.daemon} at ${t.path} ${timing(r.nodes, progress.seconds)}; ` +
      `${r.transactions} transaction(s), ${r.retries} retried after a conflict` +
      (store.domains.length > 0
        ? `; ${store.domains.length} domain records not applicable over the socket`
        : "");
  }
  if (t.spec.kind === "xenstored-tdb") throw new Error("cannot import into a xenstored TDB");
  const spec = t.spec;
  const backend: Backend = createBackend(spec, { sync: a.sync, recover: false });
  try {
    if (backend.load() !== null) {
      throw new Error(`${formatBackendSpec(spec)} already holds a store: import only builds new ones`);
    }
    backend.compact(tree.root, tree.gen);
    if (store.domains.length > 0) {
      if (backend.persistDomains === undefined) throw new Error(`${backend.name} cannot store domains`);
      backend.persistDomains(store.domains);
    }
    backend.deferredSync?.()?.syncNow();
  } finally {
    backend.close();
  }
  return `imported ${store.nodes.length} nodes, ${store.domains.length} domains, gen ${tree.gen} into ` +
    formatBackendSpec(spec);
}

/** Run `dxenstored export|import ARGS`; returns the exit code. */
export async function migrationCommand(cmd: "export" | "import", argv: readonly string[]): Promise<number> {
  const a = parse(cmd, argv);
  if (a === "help") {
    console.log(MIGRATION_USAGE);
    return 0;
  }
  if (typeof a === "string") {
    console.error(`dxenstored ${cmd}: ${a}\n\n${MIGRATION_USAGE}`);
    return 2;
  }
  setLogLevel("warn");
  try {
    if (cmd === "export") {
      const started = performance.now();
      const { store: s, from } = await readExport(a);
      const f = a.format ?? "jsonl";
      writeOut(f === "jsonl" ? toJsonLines(s) : toLsLines(s.nodes, f === "ls-f"), a.output, f !== "jsonl");
      const seconds = (performance.now() - started) / 1000;
      console.error(`exported ${s.nodes.length} nodes from ${from} ${timing(s.nodes.length, seconds)}`);
      return 0;
    }
    console.error(await runImport(a));
    return 0;
  } catch (e) {
    console.error(`dxenstored ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}
