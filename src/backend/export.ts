// Whole-store export and import formats, for migrating between backends and from a running host
// (`dxenstored export|import`, src/cli/export.ts does the I/O):
//
// JSON lines (lossless):
//   {"dxenstored":"export","version":1,"gen":1234}          header; gen = the database counter (or null)
//   {"path":"/","value":"","perms":["n0"],"gen":0}           one line per node, parents first
// "perms" are GET_PERMS's strings, an inactive entry (spec PERM-10) marked "!" ("r9!"): an older
// dxenstored refuses such a line rather than import the entry as active.
//   {"domain":{"domid":1,"ringGfn":...,"eventChannel":...}}  introduced domains (src/backend/domains.ts)
// Values are byte strings: each byte is one character (U+0000..U+00FF) of the JSON string.
// "gen" of a node is optional (a host read over the socket has none: nodes get 0).
//
// `xenstore-ls -p` text: exactly what Xen 4.17's `xenstore-ls -p /` prints on an unlimited-width
// terminal (tools/xenstore/xenstore_client.c do_ls: one line per node below "/", one space of indent
// per level, the value escaped by sanitise_value, padding to column 60, then the permissions).
// Import also reads `xenstore-ls -f -p` (full paths) and output without -p (a created node then gets
// its parent's permissions, as a WRITE would). It refuses values xenstore-ls cut short ("\..."), i.e.
// output taken on a narrow terminal or through a pipe: run it with `-f`, which never cuts.
// This text cannot carry the root's own value and permissions, generation counts, domains, or which
// entries are inactive (xenstore-ls shows them as GET_PERMS does): exported entries lose the mark, and
// imported ones are active as written. JSON lines keep all of it.
import { joinPath, parentOf } from "../store/path.ts";
import { INACTIVE_MARK, Perms } from "../store/perms.ts";
import type { Node } from "../store/tree.ts";
import { checkDomainRecords, type DomainRecord } from "./domains.ts";
import { buildTree, maxGen, parentsFirst } from "./records.ts";
import { isNodePath } from "./xs_tdb.ts";

/** One node as exported: its permissions' stored strings (Perms.storedStrings); gen when known. */
export interface ExportNode {
  readonly path: string;
  readonly value: string;
  readonly perms: readonly string[];
  readonly gen?: number;
}

export interface ExportedStore {
  /** Parents before children. */
  readonly nodes: readonly ExportNode[];
  /** The database counter, or null (unknown: a host read over the socket). */
  readonly gen: number | null;
  readonly domains: readonly DomainRecord[];
}

/** The whole tree parents first, children in DIRECTORY order (sorted), iteratively. */
export function treeNodes(root: Node): ExportNode[] {
  const out: ExportNode[] = [];
  const paths: string[] = ["/"];
  const nodes: Node[] = [root];
  while (nodes.length > 0) {
    const p = paths.pop()!;
    const n = nodes.pop()!;
    out.push({ path: p, value: n.value, perms: n.perms.storedStrings(), gen: n.gen });
    const names = n.childNames();
    for (let i = names.length - 1; i >= 0; i--) {
      paths.push(joinPath(p, names[i]));
      nodes.push(n.child(names[i])!);
    }
  }
  return out;
}

/** Order nodes as treeNodes() does: depth-first, parents first, siblings by name. */
export function sortDepthFirst(nodes: ExportNode[]): void {
  const key = new Map<ExportNode, string[]>();
  for (const n of nodes) key.set(n, n.path === "/" ? [] : n.path.slice(1).split("/"));
  nodes.sort((a, b) => {
    const x = key.get(a)!;
    const y = key.get(b)!;
    for (let i = 0; i < x.length && i < y.length; i++) {
      if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return x.length - y.length;
  });
}

// ---- JSON lines ----------------------------------------------------------------------------------

export const JSONL_MAGIC = "dxenstored";

export function* toJsonLines(s: ExportedStore): Generator<string> {
  yield JSON.stringify({ [JSONL_MAGIC]: "export", version: 1, gen: s.gen });
  for (const n of s.nodes) {
    yield JSON.stringify(n.gen === undefined ? { path: n.path, value: n.value, perms: n.perms } : n);
  }
  for (const d of s.domains) yield JSON.stringify({ domain: d });
}

export class ImportError extends Error {
  override name = "ImportError";
}

function byteString(v: unknown, what: string): string {
  if (typeof v !== "string") throw new ImportError(`${what}: not a string`);
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) > 0xff) throw new ImportError(`${what}: character beyond U+00FF (values are bytes)`);
  }
  return v;
}

/** Parse JSON lines (header optional); throws ImportError naming the line. */
export function fromJsonLines(text: string): ExportedStore {
  const nodes: ExportNode[] = [];
  const domains: unknown[] = [];
  let gen: number | null = null;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const where = `line ${i + 1}`;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new ImportError(`${where}: ${(e as Error).message}`);
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      throw new ImportError(`${where}: not an object`);
    }
    if (JSONL_MAGIC in o) {
      if (o.version !== 1) throw new ImportError(`${where}: unsupported export version ${o.version}`);
      if (o.gen !== null && o.gen !== undefined) {
        if (!Number.isSafeInteger(o.gen) || (o.gen as number) < 0) throw new ImportError(`${where}: bad gen`);
        gen = o.gen as number;
      }
    } else if ("domain" in o) {
      domains.push(o.domain);
    } else {
      const path = byteString(o.path, `${where}: path`);
      if (!isNodePath(path)) {
        throw new ImportError(`${where}: invalid path ${JSON.stringify(path.slice(0, 80))}`);
      }
      if (!Array.isArray(o.perms) || !o.perms.every((p) => typeof p === "string")) {
        throw new ImportError(`${where}: perms must be a list of strings such as ["n0", "r5"]`);
      }
      if (o.gen !== undefined && (!Number.isSafeInteger(o.gen) || (o.gen as number) < 0)) {
        throw new ImportError(`${where}: bad gen`);
      }
      nodes.push({
        path,
        value: byteString(o.value, `${where}: value`),
        perms: o.perms as string[],
        gen: o.gen as number | undefined,
      });
    }
  }
  try {
    return { nodes, gen, domains: checkDomainRecords(domains) };
  } catch (e) {
    throw new ImportError((e as Error).message);
  }
}

/** A stored permission string as GET_PERMS shows it. */
function withoutMark(s: string): string {
  return s.endsWith(INACTIVE_MARK) ? s.slice(0, -INACTIVE_MARK.length) : s;
}

/**
 * The nodes as SET_PERMS can write them into a running daemon: without their inactive entries, and
 * how many there were. The daemon would decide such an entry afresh and make it active if its domain
 * exists there now; left out, it grants nothing, as before.
 */
export function withoutInactiveEntries(
  nodes: readonly ExportNode[],
): { nodes: ExportNode[]; dropped: number } {
  let dropped = 0;
  const out = nodes.map((n) => {
    const kept = n.perms.filter((p, i) => i === 0 || !p.endsWith(INACTIVE_MARK));
    if (kept.length === n.perms.length) return n;
    dropped += n.perms.length - kept.length;
    return { ...n, perms: kept };
  });
  return { nodes: out, dropped };
}

// ---- xenstore-ls -p text -------------------------------------------------------------------------

const DESIRED_WIDTH = 60;

/** xs_lib.c sanitise_value: printable ASCII but "\" as is; \t \n \r \\; \ooo below 8; \xhh. */
export function sanitiseValue(v: string): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x5c) out += v[i];
    else if (c === 0x09) out += "\\t";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x5c) out += "\\\\";
    else if (c < 8) out += "\\" + c.toString(8).padStart(3, "0");
    else out += "\\x" + c.toString(16).padStart(2, "0");
  }
  return out;
}

/** Inverse of sanitiseValue (xs_lib.c unsanitise_value); null if `s` has a broken escape. */
export function unsanitiseValue(s: string): string | null {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = s[++i];
    if (e === "t") out += "\t";
    else if (e === "n") out += "\n";
    else if (e === "r") out += "\r";
    else if (e === "\\") out += "\\";
    else if (e === "x" && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/^[0-7]{3}$/.test(s.slice(i, i + 3))) {
      out += String.fromCharCode(parseInt(s.slice(i, i + 3), 8) & 0xff);
      i += 2;
    } else return null;
  }
  return out;
}

/** do_ls's padding after a value: one space, then ". " alternating up to column 60. */
function padding(linewid: number, desired: number): string {
  let s = " ";
  for (let w = linewid + 1; w < desired; w++) s += w & 1 ? "." : " ";
  return s;
}

/** The lines of `xenstore-ls -p /` (or `-f -p` with fullPaths) for a tree, unlimited width. */
export function* toLsLines(nodes: readonly ExportNode[], fullPaths = false): Generator<string> {
  for (const n of nodes) {
    if (n.path === "/") continue;
    const depth = n.path.split("/").length - 2;
    const head = fullPaths ? n.path : " ".repeat(depth) + n.path.slice(n.path.lastIndexOf("/") + 1);
    const shown = `${head} = "${sanitiseValue(n.value)}"`;
    const perms = n.perms.map(withoutMark).join(",");
    yield `${shown}${padding(shown.length, fullPaths ? 0 : DESIRED_WIDTH)}  (${perms})`;
  }
}

const PERMS_AT_END = / {2}\(([nrwb][0-9]+(?:,[nrwb][0-9]+)*)\)$/;
const NAME = /^[A-Za-z0-9\-_@]+$/;

/**
 * Parse `xenstore-ls [-f] [-p] /` output. Nodes without permissions get their parent's (a created
 * node's default); the root is not part of the text and keeps the default. Throws ImportError.
 */
export function fromLsText(text: string): ExportedStore {
  const nodes: ExportNode[] = [{ path: "/", value: "", perms: ["n0"] }];
  const permsOf = new Map<string, readonly string[]>([["/", ["n0"]]]);
  const stack: string[] = []; // path components of the previous line, for indented input
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") continue;
    const where = `line ${i + 1}`;
    const eq = line.indexOf(' = "');
    if (eq < 0) {
      throw new ImportError(
        `${where}: no ' = "' (a node xenstore-ls could not read, or not xenstore-ls output): ${
          line.slice(0, 80)
        }`,
      );
    }
    const head = line.slice(0, eq);
    let path: string;
    let indentWidth: number;
    if (head.startsWith("/")) {
      path = head;
      indentWidth = 0;
      if (!isNodePath(path) || path === "/") {
        throw new ImportError(`${where}: invalid path ${head.slice(0, 80)}`);
      }
    } else {
      const name = head.trimStart();
      const depth = head.length - name.length;
      if (!NAME.test(name)) {
        throw new ImportError(`${where}: invalid node name ${JSON.stringify(name.slice(0, 80))}`);
      }
      if (depth > stack.length) {
        throw new ImportError(`${where}: indented ${depth} under a node of depth ${stack.length - 1}`);
      }
      stack.length = depth;
      stack.push(name);
      path = "/" + stack.join("/");
      indentWidth = DESIRED_WIDTH;
    }
    // The value runs to the last '"' (the padding and the permissions contain none).
    const pm = PERMS_AT_END.exec(line);
    const body = pm === null ? line : line.slice(0, pm.index);
    const close = body.lastIndexOf('"');
    if (close < eq + 3) throw new ImportError(`${where}: unterminated value`);
    const shown = body.slice(eq + 4, close);
    if (/(^|[^\\])(\\\\)*\\\.\.\.$/.test(shown)) {
      throw new ImportError(
        `${where}: the value of ${path} was cut short by xenstore-ls ("\\..."); take the listing with ` +
          `xenstore-ls -f -p, which never cuts values`,
      );
    }
    const tail = body.slice(close + 1);
    if (pm !== null ? tail !== padding(close + 1, indentWidth) : tail !== "") {
      throw new ImportError(`${where}: unexpected text after the value`);
    }
    const value = unsanitiseValue(shown);
    if (value === null) throw new ImportError(`${where}: broken escape in the value of ${path}`);
    const perms = pm !== null ? pm[1].split(",") : permsOf.get(parentOf(path));
    if (perms === undefined) throw new ImportError(`${where}: ${path} listed before its parent`);
    permsOf.set(path, perms);
    nodes.push({ path, value, perms });
  }
  return { nodes, gen: null, domains: [] };
}

// ---- Building a tree -----------------------------------------------------------------------------

/**
 * The tree of an export: every node's parent must be present (the root may be missing: it is then
 * created owned by dom0). Node gens are kept (missing ones are 0); the counter is the export's gen,
 * raised to the highest node gen. Throws ImportError on invalid permissions, duplicates, orphans.
 */
export function buildExportedTree(s: ExportedStore): { root: Node; gen: number } {
  const seen = new Set<string>();
  const entries: Array<{ path: string; value: string; perms: Perms; gen: number }> = [];
  for (const n of s.nodes) {
    if (seen.has(n.path)) throw new ImportError(`node ${n.path} given twice`);
    seen.add(n.path);
    let perms: Perms;
    try {
      perms = Perms.parseStored(n.perms);
    } catch (e) {
      throw new ImportError(`${n.path}: ${(e as Error).message}`);
    }
    entries.push({ path: n.path, value: n.value, perms, gen: n.gen ?? 0 });
  }
  if (!seen.has("/")) {
    entries.push({ path: "/", value: "", perms: Perms.of(0, 0), gen: 0 });
    seen.add("/");
  }
  for (const e of entries) {
    if (e.path !== "/" && !seen.has(parentOf(e.path))) throw new ImportError(`${e.path}: parent missing`);
  }
  let root: Node;
  try {
    root = buildTree(parentsFirst(entries));
  } catch (e) {
    throw new ImportError((e as Error).message);
  }
  return { root, gen: Math.max(s.gen ?? 0, maxGen(root)) };
}
