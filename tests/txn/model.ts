/**
 * A deliberately simple reference model of the store for the transaction property tests: a Map from
 * path to (value, permissions), with the XenStore semantics of the privileged (dom0) connection.
 * Replies are in the Harness's brief form ("OK", a value, "a,b", "E:ENOENT").
 */
import { type Conn } from "./harness.ts";
import { walk } from "../../src/store/tree.ts";
import type { Node } from "../../src/store/tree.ts";

export interface MNode {
  readonly value: string;
  readonly perms: string;
}
export type MStore = Map<string, MNode>;

export type Op =
  | { readonly k: "read" | "dir" | "dirpart" | "getperms" | "mkdir" | "rm"; readonly p: string }
  | { readonly k: "write"; readonly p: string; readonly v: string }
  | { readonly k: "setperms"; readonly p: string; readonly perms: string };

/** The store dxenstored starts with. */
export function initialStore(): MStore {
  return new Map([
    ["/", { value: "", perms: "n0" }],
    ["/tool", { value: "", perms: "n0" }],
    ["/tool/xenstored", { value: "", perms: "n0" }],
  ]);
}

export function parentPath(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function children(s: MStore, p: string): string[] {
  const prefix = p === "/" ? "/" : p + "/";
  const out: string[] = [];
  for (const k of s.keys()) {
    if (k !== "/" && k.startsWith(prefix) && !k.slice(prefix.length).includes("/")) {
      out.push(k.slice(prefix.length));
    }
  }
  return out.sort();
}

/** Create `p` and its missing ancestors as WRITE/MKDIR do (inheriting the deepest existing perms). */
function create(s: MStore, p: string, value: string): void {
  const comps = p.split("/").slice(1);
  let deepest = s.get("/")!;
  const missing: string[] = [];
  let cur = "";
  for (const c of comps) {
    cur += "/" + c;
    const n = s.get(cur);
    if (n === undefined) missing.push(cur);
    else if (missing.length === 0) deepest = n;
  }
  for (const m of missing) s.set(m, { value: m === p ? value : "", perms: deepest.perms });
}

/** Apply `op` to `s` (mutating it); returns the reply. */
export function apply(s: MStore, op: Op): string {
  const n = s.get(op.p);
  switch (op.k) {
    case "read":
      return n ? n.value : "E:ENOENT";
    case "dir":
    case "dirpart":
      return n ? children(s, op.p).join(",") : "E:ENOENT";
    case "getperms":
      return n ? n.perms : "E:ENOENT";
    case "write":
      if (n) s.set(op.p, { value: op.v, perms: n.perms });
      else create(s, op.p, op.v);
      return "OK";
    case "mkdir":
      if (!n) create(s, op.p, "");
      return "OK";
    case "rm": {
      if (op.p === "/") return "E:EINVAL";
      if (!n) return s.has(parentPath(op.p)) ? "OK" : "E:ENOENT";
      for (const k of [...s.keys()]) if (k === op.p || k.startsWith(op.p + "/")) s.delete(k);
      return "OK";
    }
    case "setperms":
      if (!n) return "E:ENOENT";
      s.set(op.p, { value: n.value, perms: op.perms });
      return "OK";
  }
}

/** Did `op`, answered `reply`, modify (log a modification in) a transaction? */
export function isModification(op: Op, reply: string): boolean {
  return (op.k === "write" || op.k === "mkdir" || op.k === "rm" || op.k === "setperms") && reply === "OK";
}

/** Send `op` through the real core; returns the brief reply. */
export function send(c: Conn, op: Op, tx: number): string {
  switch (op.k) {
    case "read":
      return c.tryRead(op.p, tx);
    case "dir":
      return c.tryDir(op.p, tx);
    case "dirpart":
      return c.tryDirPart(op.p, tx);
    case "getperms":
      return c.tryGetPerms(op.p, tx);
    case "write":
      return c.tryWrite(op.p, op.v, tx);
    case "mkdir":
      return c.tryMkdir(op.p, tx);
    case "rm":
      return c.tryRm(op.p, tx);
    case "setperms":
      return c.trySetPerms(op.p, op.perms, tx);
  }
}

/** The real tree as a model store. */
export function snapshot(root: Node): MStore {
  const s: MStore = new Map();
  walk(root, "/", (p, n) => s.set(p, { value: n.value, perms: n.perms.strings().join(",") }));
  return s;
}

export function showStore(s: MStore): string {
  return [...s.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([p, n]) => `${p}=${n.value}[${n.perms}]`)
    .join(" ");
}

export function showOp(op: Op): string {
  return op.k === "write"
    ? `WRITE ${op.p} ${op.v}`
    : op.k === "setperms"
    ? `SET_PERMS ${op.p} ${op.perms}`
    : `${op.k.toUpperCase()} ${op.p}`;
}
