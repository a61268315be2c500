// A store subtree as JSON and back, and `txn` scripts: both for `dxenstore` and for library users.
//
// JSON shape of a node: {"value": "text", "perms": ["n0", "r5"], "children": {"name": {...}}}; a value
// that is not valid UTF-8 is {"base64": "..."} instead of "value", so any store round-trips.
import type { Transaction } from "../transaction.ts";
import type { XenStore } from "../xenstore.ts";
import { formatPerm } from "../payload.ts";
import { hasErrno } from "../errors.ts";

export interface TreeNode {
  value?: string;
  base64?: string;
  perms?: string[];
  children?: Record<string, TreeNode>;
}

/** Nodes read at once (pipelined) while walking a tree. */
const BATCH = 256;
/** Nodes a tree dump holds at most (the walk stops with an error past it). */
export const MAX_TREE_NODES = 1_000_000;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function toBase64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}

function valueOf(bytes: Uint8Array): Pick<TreeNode, "value" | "base64"> {
  try {
    return { value: dec.decode(bytes) };
  } catch {
    return { base64: toBase64(bytes) };
  }
}

function join(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/**
 * Read the subtree at `path` (breadth first, `BATCH` nodes' reads in flight at once). Nodes that vanish
 * during the walk are left out. Inside a transaction the dump is one consistent snapshot.
 */
export async function readTree(xs: XenStore | Transaction, path: string, perms = true): Promise<TreeNode> {
  const root: TreeNode = {};
  let level: Array<[string, TreeNode]> = [[path, root]];
  let count = 0;
  while (level.length > 0) {
    const next: Array<[string, TreeNode]> = [];
    for (let i = 0; i < level.length; i += BATCH) {
      const chunk = level.slice(i, i + BATCH);
      await Promise.all(chunk.map(async ([p, node]) => {
        try {
          const [bytes, ps, kids] = await Promise.all([
            xs.readBytes(p),
            perms ? xs.getPerms(p) : Promise.resolve(null),
            xs.ls(p),
          ]);
          Object.assign(node, valueOf(bytes));
          if (ps !== null) node.perms = ps.map(formatPerm);
          if (kids.length > 0) {
            node.children = {};
            for (const k of kids.sort()) {
              const child: TreeNode = {};
              node.children[k] = child;
              next.push([join(p, k), child]);
            }
          }
        } catch (e) {
          if (p === path || !hasErrno(e, "ENOENT")) throw e;
        }
      }));
    }
    count += level.length;
    if (count + next.length > MAX_TREE_NODES) {
      throw new RangeError(`more than ${MAX_TREE_NODES} nodes under ${path}`);
    }
    level = next;
  }
  return root;
}

/** Check a parsed JSON value is a TreeNode (a clear message for the first thing wrong). */
export function checkTree(t: unknown, where = "(root)"): TreeNode {
  if (typeof t !== "object" || t === null || Array.isArray(t)) throw new TypeError(`${where}: not an object`);
  const o = t as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!["value", "base64", "perms", "children"].includes(k)) {
      throw new TypeError(`${where}: unknown key "${k}"`);
    }
  }
  if (o.value !== undefined && typeof o.value !== "string") {
    throw new TypeError(`${where}: value is not a string`);
  }
  if (o.base64 !== undefined && typeof o.base64 !== "string") {
    throw new TypeError(`${where}: base64 is not a string`);
  }
  if (o.perms !== undefined) {
    if (!Array.isArray(o.perms) || o.perms.length === 0 || !o.perms.every((p) => typeof p === "string")) {
      throw new TypeError(`${where}: perms must be a non-empty list of strings like "n0"`);
    }
    for (const p of o.perms) formatPerm(p as string);
  }
  if (o.children !== undefined) {
    if (typeof o.children !== "object" || o.children === null || Array.isArray(o.children)) {
      throw new TypeError(`${where}: children is not an object`);
    }
    for (const [k, v] of Object.entries(o.children)) {
      if (k === "" || k.includes("/")) throw new TypeError(`${where}: bad child name "${k}"`);
      checkTree(v, `${where === "(root)" ? "" : where}/${k}`);
    }
  }
  return t as TreeNode;
}

/** Write `tree` at `path` (values, then permissions), parents before children, one level at a time. */
export async function writeTree(tx: XenStore | Transaction, path: string, tree: TreeNode): Promise<number> {
  let level: Array<[string, TreeNode]> = [[path, tree]];
  let n = 0;
  while (level.length > 0) {
    const next: Array<[string, TreeNode]> = [];
    for (let i = 0; i < level.length; i += BATCH) {
      await Promise.all(
        level.slice(i, i + BATCH).map(async ([p, node]) => {
          const value = node.base64 !== undefined ? fromBase64(node.base64) : enc.encode(node.value ?? "");
          await tx.write(p, value);
          if (node.perms !== undefined) await tx.setPerms(p, node.perms);
        }),
      );
    }
    for (const [p, node] of level) {
      n++;
      for (const [k, child] of Object.entries(node.children ?? {})) next.push([join(p, k), child]);
    }
    level = next;
  }
  return n;
}

// --- txn scripts -------------------------------------------------------------------------------------

export type ScriptOp =
  | { op: "read" | "ls" | "rm" | "mkdir" | "exists" | "perms"; path: string; line: number }
  | { op: "write"; path: string; value: string; line: number }
  | { op: "chmod"; path: string; perms: string[]; line: number };

/**
 * A txn script: one operation a line, `#` comments. `write PATH VALUE` takes the rest of the line as the
 * value, or a JSON string if it starts with `"` (for newlines, leading spaces, escapes).
 */
export function parseScript(text: string): ScriptOp[] {
  const ops: ScriptOp[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const at = `line ${i + 1}`;
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (m === null) throw new SyntaxError(`${at}: want "OPERATION PATH [ARGS]"`);
    const [, op, path, rest] = m;
    switch (op) {
      case "read":
      case "ls":
      case "rm":
      case "mkdir":
      case "exists":
      case "perms":
        if (rest !== undefined) throw new SyntaxError(`${at}: ${op} takes only a path`);
        ops.push({ op, path, line: i + 1 });
        break;
      case "write": {
        let value = rest ?? "";
        if (value.startsWith('"')) {
          try {
            value = JSON.parse(value);
          } catch {
            throw new SyntaxError(`${at}: the value starts with " but is not a JSON string`);
          }
          if (typeof value !== "string") throw new SyntaxError(`${at}: not a JSON string`);
        }
        ops.push({ op, path, value, line: i + 1 });
        break;
      }
      case "chmod": {
        const perms = (rest ?? "").split(/\s+/).filter((s) => s !== "");
        if (perms.length === 0) throw new SyntaxError(`${at}: chmod needs permissions (e.g. n0 r5)`);
        for (const p of perms) formatPerm(p);
        ops.push({ op, path, perms, line: i + 1 });
        break;
      }
      default:
        throw new SyntaxError(
          `${at}: unknown operation "${op}" (read, write, mkdir, rm, ls, exists, perms, chmod)`,
        );
    }
  }
  return ops;
}

/** Run a script in `tx`; returns its output lines (what read, ls, exists and perms printed). */
export async function runScript(tx: Transaction, ops: readonly ScriptOp[]): Promise<string[]> {
  const out: string[] = [];
  for (const o of ops) {
    try {
      await runOp(tx, o, out);
    } catch (e) {
      if (e instanceof Error) e.message = `line ${o.line}: ${e.message}`;
      throw e;
    }
  }
  return out;
}

async function runOp(tx: Transaction, o: ScriptOp, out: string[]): Promise<void> {
  {
    switch (o.op) {
      case "read":
        out.push(await tx.read(o.path));
        break;
      case "ls":
        out.push(...await tx.ls(o.path));
        break;
      case "exists":
        out.push(String(await tx.exists(o.path)));
        break;
      case "perms":
        out.push((await tx.getPerms(o.path)).map(formatPerm).join(" "));
        break;
      case "rm":
        await tx.rm(o.path);
        break;
      case "mkdir":
        await tx.mkdir(o.path);
        break;
      case "write":
        await tx.write(o.path, o.value);
        break;
      case "chmod":
        await tx.setPerms(o.path, o.perms);
        break;
    }
  }
}
