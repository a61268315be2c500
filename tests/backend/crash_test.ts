// Crash tests: the real daemon (`deno run src/cli/main.ts --backend ... --sync=...`), driven by
// several concurrent raw socket clients (plain writes, removes, three-key transactions), SIGKILLed at
// seeded random moments, restarted. A kill is placed by progress, not by the clock (after a seeded
// number of acknowledgements, then a seeded sub-3 ms delay), so a slow or loaded machine changes when
// it lands, not whether the run acknowledges enough to prove anything. After every restart the store must equal a replay of what was
// acknowledged: every acknowledged change is there, each request in flight at the kill is wholly
// applied or not at all (a transaction's three keys stay equal), and nothing else exists. With group
// commit this is the proof that no reply leaves before the fsync that covers it.
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { rng } from "./harness.ts";
import { libtdbAvailable } from "../../src/backend/tdb_ffi.ts";
import { moduleOrSkip } from "./modules.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const ITERATIONS = 22;

interface Slot {
  acked: string | null;
  /** Value of the request in flight when the daemon died (undefined: none). */
  pending?: string | null;
}

interface CrashSpec {
  readonly kind: "file" | "sqlite" | "tdb" | "lmdb";
  readonly sync: string;
  readonly clients: number;
  readonly seed: number;
}

async function startDaemon(
  socket: string,
  spec: string,
  sync: string,
): Promise<{ child: Deno.ChildProcess; err: () => string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--socket", socket, "--backend", spec, `--sync=${sync}`, "--log-level", "warn"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const chunks: Uint8Array[] = [];
  (async () => {
    for await (const c of child.stderr) chunks.push(c);
  })().catch(() => {});
  const err = () => chunks.map((c) => new TextDecoder().decode(c)).join("");
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited) throw new Error(`daemon exited before serving:\n${err()}`);
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return { child, err };
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`daemon not serving after 20 s:\n${err()}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readValue(c: WireClient, path: string): Promise<string | null> {
  const r = await c.request(XS.READ, `${path}\0`);
  if (r.type === XS.ERROR) {
    assert.equal(r.payload, "ENOENT\0", `READ ${path}`);
    return null;
  }
  return r.payload;
}

async function children(c: WireClient, path: string): Promise<string[]> {
  const r = await c.request(XS.DIRECTORY, `${path}\0`);
  if (r.type === XS.ERROR) return [];
  return r.payload.split("\0").filter((s) => s !== "");
}

/** One client's model: its keys under /c/<id>/ and what the daemon acknowledged for them. */
class Writer {
  readonly keys = new Map<string, Slot>();
  readonly tx: string[];
  acknowledged = 0;
  inFlightAtKill = 0;
  constructor(readonly id: number, readonly rand: () => number) {
    this.tx = ["a", "b", "c"].map((k) => `/c/${id}/tx/${k}`);
  }

  /** After a restart: the store equals the model; pending requests resolved either way. */
  async verify(c: WireClient, iter: number): Promise<void> {
    for (const [p, s] of this.keys) {
      const v = await readValue(c, p);
      const ok = v === s.acked || (s.pending !== undefined && v === s.pending);
      assert.ok(ok, `iteration ${iter}: ${p} = ${JSON.stringify(v)}, acked ${JSON.stringify(s.acked)}`);
      this.keys.set(p, { acked: v });
    }
    const tv: Array<string | null> = [];
    for (const p of this.tx) tv.push(await readValue(c, p));
    assert.ok(tv[0] === tv[1] && tv[1] === tv[2], `iteration ${iter}: partial transaction ${tv}`);
    for (const name of await children(c, `/c/${this.id}`)) {
      if (name === "tx") continue;
      const s = this.keys.get(`/c/${this.id}/${name}`);
      assert.ok(
        s !== undefined && s.acked !== null,
        `iteration ${iter}: /c/${this.id}/${name} exists, never acked`,
      );
    }
  }

  /** Write until the daemon dies under us. */
  async run(socket: string, iter: number, onAck: () => void): Promise<void> {
    const c = await WireClient.connect(socket);
    try {
      for (let n = 0;; n++) {
        const value = `${iter}.${this.id}.${n}`;
        const r = this.rand();
        let touched: string[];
        let next: string | null;
        if (r < 0.2) {
          touched = this.tx;
          next = value;
        } else {
          touched = [`/c/${this.id}/k${Math.floor(this.rand() * 8)}`];
          next = r < 0.3 ? null : value;
        }
        for (const p of touched) {
          const s = this.keys.get(p) ?? { acked: null };
          this.keys.set(p, { acked: s.acked, pending: next });
        }
        try {
          if (touched === this.tx) {
            const st = await c.request(XS.TRANSACTION_START, "\0");
            assert.equal(st.type, XS.TRANSACTION_START);
            const tx = Number(st.payload.replace(/\0$/, ""));
            for (const p of this.tx) {
              const w = await c.request(XS.WRITE, `${p}\0${value}`, { txId: tx });
              assert.equal(w.type, XS.WRITE);
            }
            const e = await c.request(XS.TRANSACTION_END, "T\0", { txId: tx });
            assert.equal(e.type, XS.TRANSACTION_END, `commit: ${e.payload}`);
          } else if (next === null) {
            const e = await c.request(XS.RM, `${touched[0]}\0`);
            assert.ok(e.type === XS.RM || e.payload === "ENOENT\0", `rm: ${e.payload}`);
          } else {
            const e = await c.request(XS.WRITE, `${touched[0]}\0${value}`);
            assert.equal(e.type, XS.WRITE, `write: ${e.payload}`);
          }
        } catch (e) {
          if (e instanceof Error && e.name === "AssertionError") throw e;
          this.inFlightAtKill++;
          return; // the daemon died with this request in flight
        }
        for (const p of touched) this.keys.set(p, { acked: next });
        this.acknowledged++;
        onAck();
      }
    } finally {
      c.close();
    }
  }
}

function crashTest(t: CrashSpec) {
  return async () => {
    const dir = await Deno.makeTempDir({ prefix: "dxs-crash-" });
    const socket = `${dir}/sock`;
    const spec = t.kind === "file" ? `file:${dir}/store` : t.kind === "lmdb"
      ? `so:${LMDB}:${dir}/lmdb` // the C storage module (ffi/dxenstored_backend.h)
      : `${t.kind}:${dir}/store.${t.kind}`;
    const rand = rng(t.seed);
    const writers = Array.from({ length: t.clients }, (_, i) => new Writer(i, rng(t.seed * 31 + i)));
    try {
      for (let iter = 0; iter < ITERATIONS; iter++) {
        const d = await startDaemon(socket, spec, t.sync);
        let selfExit: string | null = null;
        try {
          const c = await WireClient.connect(socket);
          try {
            for (const w of writers) await w.verify(c, iter);
          } finally {
            c.close();
          }
          const killAfterAcks = 1 + Math.floor(rand() * 12);
          const killDelay = rand() * 3;
          let acks = 0;
          let timer: ReturnType<typeof setTimeout> | undefined;
          const onAck = () => {
            if (++acks === killAfterAcks) timer = setTimeout(() => d.child.kill("SIGKILL"), killDelay);
          };
          try {
            await Promise.all(writers.map((w) => w.run(socket, iter, onAck)));
          } finally {
            clearTimeout(timer);
          }
        } finally {
          try {
            d.child.kill("SIGKILL");
          } catch { /* gone */ }
          const st = await d.child.status;
          if (st.signal !== "SIGKILL") selfExit = `daemon exited on its own (${st.code}):\n${d.err()}`;
        }
        if (selfExit !== null) throw new Error(selfExit);
      }
      const acked = writers.reduce((n, w) => n + w.acknowledged, 0);
      const inFlight = writers.reduce((n, w) => n + w.inFlightAtKill, 0);
      console.log(
        `${t.kind} --sync=${t.sync}, ${t.clients} clients: ${acked} acknowledged, ${inFlight} in flight at a kill`,
      );
      assert.ok(acked > ITERATIONS * t.clients, `only ${acked} changes acknowledged`);
      assert.ok(inFlight > ITERATIONS / 2, `only ${inFlight} kills hit a request in flight`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
}

const SPECS: CrashSpec[] = [
  { kind: "file", sync: "always", clients: 2, seed: 1234 },
  { kind: "sqlite", sync: "always", clients: 2, seed: 5678 },
  { kind: "tdb", sync: "always", clients: 2, seed: 9012 },
  { kind: "file", sync: "group:2", clients: 4, seed: 3456 },
  // The recommended group mode: a write is nearly always in flight (asynchronous, Linux AIO).
  { kind: "file", sync: "group:0", clients: 4, seed: 2468 },
  { kind: "sqlite", sync: "group:1", clients: 4, seed: 7890 },
  { kind: "lmdb", sync: "always", clients: 2, seed: 4321 },
  // Inline syncs (a C module has no asynchronous path): each group is one LMDB parent transaction.
  { kind: "lmdb", sync: "group:0", clients: 4, seed: 8765 },
];

const LMDB = await moduleOrSkip("lmdb");

for (const t of SPECS) {
  Deno.test({
    name: `crash: ${t.kind} --sync=${t.sync}, ${t.clients} concurrent clients, SIGKILL at random moments`,
    ignore: (t.kind === "tdb" && !libtdbAvailable()) || (t.kind === "lmdb" && LMDB === null),
    fn: crashTest(t),
  });
}
