// Crash tests: the real daemon (`deno run src/cli/main.ts --backend ... --sync=always`), driven
// through a raw socket client, SIGKILLed at seeded random moments while it is writing, restarted.
// After every restart, every acknowledged write must be there, and the one request in flight at the
// kill must be either wholly applied or not at all (a transaction's three keys stay equal).
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { rng } from "./harness.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const ITERATIONS = 22;

interface Slot {
  acked: string | null;
  /** Value of the request in flight when the daemon died (undefined: none). */
  pending?: string | null;
}

async function startDaemon(
  socket: string,
  spec: string,
): Promise<{ child: Deno.ChildProcess; err: () => string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--socket", socket, "--backend", spec, "--sync=always", "--log-level", "warn"],
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
    if (Date.now() > deadline) throw new Error(`daemon not serving after 20 s:\n${err()}`);
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

function crashTest(kind: "file" | "sqlite") {
  return async () => {
    const dir = await Deno.makeTempDir({ prefix: "dxs-crash-" });
    const socket = `${dir}/sock`;
    const spec = kind === "file" ? `file:${dir}/store` : `sqlite:${dir}/store.db`;
    const rand = rng(kind === "file" ? 1234 : 5678);
    const keys = new Map<string, Slot>();
    const TX = ["/c/tx/a", "/c/tx/b", "/c/tx/c"];
    let acknowledged = 0;
    let uncertain = 0;
    try {
      for (let iter = 0; iter < ITERATIONS; iter++) {
        const d = await startDaemon(socket, spec);
        let selfExit: string | null = null;
        const c = await WireClient.connect(socket);
        try {
          // Verify what the previous life acknowledged.
          for (const [p, s] of keys) {
            const v = await readValue(c, p);
            const ok = v === s.acked || (s.pending !== undefined && v === s.pending);
            assert.ok(ok, `iteration ${iter}: ${p} = ${JSON.stringify(v)}, acked ${JSON.stringify(s.acked)}`);
            keys.set(p, { acked: v });
          }
          const tv: Array<string | null> = [];
          for (const p of TX) tv.push(await readValue(c, p));
          assert.ok(tv[0] === tv[1] && tv[1] === tv[2], `iteration ${iter}: partial transaction ${tv}`);
          // Write until killed.
          const killAt = 20 + Math.floor(rand() * 120);
          const timer = setTimeout(() => d.child.kill("SIGKILL"), killAt);
          for (let n = 0;; n++) {
            const value = `${iter}.${n}`;
            const r = rand();
            let touched: string[];
            let next: string | null;
            if (r < 0.2) {
              touched = TX;
              next = value;
            } else {
              touched = [`/c/k${Math.floor(rand() * 8)}`];
              next = r < 0.3 ? null : value;
            }
            for (const p of touched) {
              const s = keys.get(p) ?? { acked: null };
              keys.set(p, { acked: s.acked, pending: next });
            }
            try {
              if (touched === TX) {
                const st = await c.request(XS.TRANSACTION_START, "\0");
                assert.equal(st.type, XS.TRANSACTION_START);
                const tx = Number(st.payload.replace(/\0$/, ""));
                for (const p of TX) {
                  const w = await c.request(XS.WRITE, `${p}\0${value}`, { txId: tx });
                  assert.equal(w.type, XS.WRITE);
                }
                const e = await c.request(XS.TRANSACTION_END, "T\0", { txId: tx });
                assert.equal(e.type, XS.TRANSACTION_END, `commit: ${e.payload}`);
              } else if (next === null) {
                const e = await c.request(XS.RM, `${touched[0]}\0`);
                assert.equal(e.type, XS.RM, `rm: ${e.payload}`);
              } else {
                const e = await c.request(XS.WRITE, `${touched[0]}\0${value}`);
                assert.equal(e.type, XS.WRITE, `write: ${e.payload}`);
              }
            } catch (e) {
              if (e instanceof Error && e.name === "AssertionError") throw e;
              uncertain++;
              break; // the daemon died with this request in flight
            }
            for (const p of touched) keys.set(p, { acked: next });
            acknowledged++;
          }
          clearTimeout(timer);
        } finally {
          c.close();
          try {
            d.child.kill("SIGKILL");
          } catch { /* gone */ }
          const st = await d.child.status;
          if (st.signal !== "SIGKILL") selfExit = `daemon exited on its own (${st.code}):\n${d.err()}`;
        }
        if (selfExit !== null) throw new Error(selfExit);
      }
      console.log(`${kind}: ${acknowledged} acknowledged, ${uncertain} in flight at a kill`);
      assert.ok(acknowledged > ITERATIONS, `only ${acknowledged} writes acknowledged`);
      assert.ok(uncertain > ITERATIONS / 2, `only ${uncertain} kills hit a request in flight`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
}

Deno.test({ name: "crash: file backend, SIGKILL at random moments", fn: crashTest("file") });
Deno.test({ name: "crash: sqlite backend, SIGKILL at random moments", fn: crashTest("sqlite") });
