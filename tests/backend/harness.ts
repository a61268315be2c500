// Drive a Core (the real dispatcher, policy, transactions) over a backend without sockets, through
// the in-process harness (tests/helpers/core.ts), and compare trees path by path.
import { DirectAppender } from "../../src/backend/direct_log.ts";
import { type Backend, openDatabase } from "../../src/backend/backend.ts";
import { flatten } from "../../src/backend/records.ts";
import type { Core } from "../../src/dispatch/core.ts";
import { checkStore } from "../../src/store/check.ts";
import type { Node } from "../../src/store/tree.ts";
import { XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { dom0, type TestConn, testCore } from "../helpers/core.ts";
import { AioContext } from "../../ffi/aio.ts";

export class ReplyError extends Error {
  constructor(readonly errno: string) {
    super(errno);
  }
}

export class Harness {
  readonly core: Core;
  /** The privileged connection every request is made on. */
  readonly conn: TestConn;
  /** db.generation right after the last commit (what a backend stores). */
  committedGen: number;

  constructor(readonly backend: Backend) {
    const db = openDatabase(backend);
    this.committedGen = db.generation;
    db.onCommit(() => this.committedGen = db.generation);
    this.core = testCore({ db });
    this.conn = dom0(this.core, "test");
  }

  /** One request; returns the reply payload without its trailing NUL, throws ReplyError on ERROR. */
  req(type: number, payload: string, txId = 0): string {
    const r = this.conn.request(type, payload, txId);
    if (r.type === XS.ERROR) throw new ReplyError(r.payload.replace(/\0$/, ""));
    return r.payload.replace(/\0$/, "");
  }

  write(path: string, value: string, tx = 0): void {
    this.req(XS.WRITE, `${path}\0${value}`, tx);
  }
  mkdir(path: string, tx = 0): void {
    this.req(XS.MKDIR, `${path}\0`, tx);
  }
  rm(path: string, tx = 0): void {
    this.req(XS.RM, `${path}\0`, tx);
  }
  setPerms(path: string, perms: string[], tx = 0): void {
    this.req(XS.SET_PERMS, `${path}\0${perms.map((p) => p + "\0").join("")}`, tx);
  }
  start(): number {
    return Number(this.req(XS.TRANSACTION_START, "\0"));
  }
  end(tx: number, commit = true): void {
    this.req(XS.TRANSACTION_END, commit ? "T\0" : "F\0", tx);
  }

  get root(): Node {
    return this.core.db.root;
  }

  close(): void {
    this.backend.close();
  }
}

/** Trees equal node by node: same paths, values, permissions and generations. */
export function assertSameTree(actual: Node, expected: Node, msg = "tree"): void {
  const a = flatten(actual);
  const e = flatten(expected);
  for (const [p, v] of e) {
    assert.ok(a.has(p), `${msg}: ${p} missing after reload`);
    assert.deepEqual(a.get(p), v, `${msg}: node ${p}`);
  }
  for (const p of a.keys()) assert.ok(e.has(p), `${msg}: ${p} appeared after reload`);
}

export function assertSound(root: Node, gen: number): void {
  assert.deepEqual(checkStore(root, gen), [], "checkStore");
}

/** A small seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Whether this machine's temp file system takes O_DIRECT (tmpfs and some overlays do not). */
/** Can this process use Linux native AIO (io_setup may fail: aio-max-nr reached, a kernel without AIO)? */
export function aioWorks(): boolean {
  try {
    AioContext.create(1).destroy();
    return true;
  } catch {
    return false;
  }
}

export function directIoWorks(): boolean {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-direct-probe-" });
  try {
    Deno.writeFileSync(`${dir}/f`, new Uint8Array(0));
    const d = DirectAppender.open(`${dir}/f`);
    d?.close();
    return d !== null;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
