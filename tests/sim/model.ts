/**
 * The simulation's model of the store: absolute path → value, nothing else (permissions are not
 * modelled: the simulated clients only do what they are allowed to). Every request the daemon answers
 * is evaluated on the model at the point the daemon served it (its commit order), and the answers
 * must agree; a transaction is replayed whole on the model at its commit point, so a committed history
 * that is not serializable shows up as a read that disagrees (docs/simulation.md).
 */
import { MsgType } from "../../src/protocol/wire.ts";
import type { Node } from "../../src/store/tree.ts";
import { walk } from "../../src/store/tree.ts";

export type ModelResult = { readonly ok: true; readonly payload: string } | {
  readonly ok: false;
  readonly errno: string;
};

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** A node operation in absolute terms. */
export type ModelOp =
  | { readonly op: "read"; readonly path: string }
  | { readonly op: "dir"; readonly path: string }
  | { readonly op: "write"; readonly path: string; readonly value: string }
  | { readonly op: "mkdir"; readonly path: string }
  | { readonly op: "rm"; readonly path: string };

export class Model {
  constructor(
    readonly nodes: Map<string, string> = new Map([["/", ""], ["/tool", ""], ["/tool/xenstored", ""]]),
  ) {}

  clone(): Model {
    return new Model(new Map(this.nodes));
  }

  /** The daemon's tree, as a model (values only). */
  static fromTree(root: Node): Model {
    const m = new Map<string, string>();
    walk(root, "/", (path, n) => void m.set(path, n.value));
    return new Model(m);
  }

  /** A one-line description of the first difference from `other`, or null if equal. */
  diff(other: Model): string | null {
    for (const [p, v] of this.nodes) {
      const o = other.nodes.get(p);
      if (o === undefined) return `${p} missing`;
      if (o !== v) {
        return `${p}: ${JSON.stringify(o.slice(0, 40))} instead of ${JSON.stringify(v.slice(0, 40))}`;
      }
    }
    for (const p of other.nodes.keys()) if (!this.nodes.has(p)) return `${p} should not exist`;
    return null;
  }

  children(path: string): string[] {
    const pre = path === "/" ? "/" : path + "/";
    const out: string[] = [];
    for (const p of this.nodes.keys()) {
      if (p.length > pre.length && p.startsWith(pre) && !p.slice(pre.length).includes("/")) {
        out.push(p.slice(pre.length));
      }
    }
    return out.sort();
  }

  private ensure(path: string): void {
    if (this.nodes.has(path)) return;
    this.ensure(parentOf(path));
    this.nodes.set(path, "");
  }

  /** Remove `path` and everything below it. */
  removeTree(path: string): void {
    const pre = path + "/";
    for (const p of [...this.nodes.keys()]) if (p === path || p.startsWith(pre)) this.nodes.delete(p);
  }

  /** Apply `o`; the reply a daemon must give (reads and failed writes change nothing). */
  apply(o: ModelOp): ModelResult {
    switch (o.op) {
      case "read": {
        const v = this.nodes.get(o.path);
        return v === undefined ? { ok: false, errno: "ENOENT" } : { ok: true, payload: v };
      }
      case "dir":
        if (!this.nodes.has(o.path)) return { ok: false, errno: "ENOENT" };
        return { ok: true, payload: this.children(o.path).map((c) => c + "\0").join("") };
      case "write":
        this.ensure(parentOf(o.path));
        this.nodes.set(o.path, o.value);
        return { ok: true, payload: "OK\0" };
      case "mkdir":
        this.ensure(o.path);
        return { ok: true, payload: "OK\0" };
      case "rm":
        if (!this.nodes.has(o.path)) {
          return this.nodes.has(parentOf(o.path))
            ? { ok: true, payload: "OK\0" }
            : { ok: false, errno: "ENOENT" };
        }
        this.removeTree(o.path);
        return { ok: true, payload: "OK\0" };
    }
  }
}

/** A node request as a model operation (absolute path given), or null for any other request. */
export function modelOp(type: number, payload: string, abs: (p: string) => string): ModelOp | null {
  const nul = payload.indexOf("\0");
  const first = nul < 0 ? payload : payload.slice(0, nul);
  switch (type) {
    case MsgType.READ:
      return { op: "read", path: abs(first) };
    case MsgType.DIRECTORY:
      return { op: "dir", path: abs(first) };
    case MsgType.WRITE:
      return { op: "write", path: abs(first), value: payload.slice(nul + 1) };
    case MsgType.MKDIR:
      return { op: "mkdir", path: abs(first) };
    case MsgType.RM:
      return { op: "rm", path: abs(first) };
    default:
      return null;
  }
}

/** Does `op` modify the store when it succeeds? */
export function modifies(op: ModelOp): boolean {
  return op.op === "write" || op.op === "mkdir" || op.op === "rm";
}
