// Watch fan-out: N connections watch one path; one WRITE to it; time until all N events arrived.
// Measured from the WRITE's send. Daemon-agnostic (raw wire protocol), so the same run can measure
// dxenstored, cxenstored and oxenstored.
// Run: deno run --allow-all bench/fanout.ts SOCKET [N=1000] [ROUNDS=5]

const WATCH = 4, WRITE = 11, WATCH_EVENT = 15;

function msg(type: number, payload: string): Uint8Array {
  const b = new Uint8Array(16 + payload.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(12, payload.length, true);
  for (let i = 0; i < payload.length; i++) b[16 + i] = payload.charCodeAt(i);
  return b;
}

/** Reads whole messages off a connection, calling `on(type)` for each. */
async function pump(conn: Deno.UnixConn, on: (type: number) => void): Promise<void> {
  const buf = new Uint8Array(65536);
  let have = new Uint8Array(0);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return;
    const joined = new Uint8Array(have.length + n);
    joined.set(have);
    joined.set(buf.subarray(0, n), have.length);
    let off = 0;
    while (joined.length - off >= 16) {
      const len = new DataView(joined.buffer, off).getUint32(12, true);
      if (joined.length - off < 16 + len) break;
      on(new DataView(joined.buffer, off).getUint32(0, true));
      off += 16 + len;
    }
    have = joined.slice(off);
  }
}

export async function fanout(socket: string, n: number, rounds: number): Promise<number[]> {
  const path = "/bench/fanout/node";
  const writer = await Deno.connect({ transport: "unix", path: socket });
  let writerReplies = 0;
  pump(writer, () => writerReplies++);
  await writer.write(msg(WRITE, `${path}\0init`));
  let received = 0;
  let target = 0;
  let done: (() => void) | null = null;
  const conns: Deno.UnixConn[] = [];
  for (let i = 0; i < n; i++) {
    const c = await Deno.connect({ transport: "unix", path: socket });
    conns.push(c);
    pump(c, (t) => {
      if (t === WATCH_EVENT && ++received === target && done) done();
    });
  }
  // Register all watches; wait for the n initial events.
  target = n;
  let ready = new Promise<void>((r) => (done = r));
  await Promise.all(conns.map((c, i) => c.write(msg(WATCH, `${path}\0t${i}\0`))));
  await ready;
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    received = 0;
    ready = new Promise<void>((res) => (done = res));
    const t0 = performance.now();
    await writer.write(msg(WRITE, `${path}\0v${r}`));
    await ready;
    times.push(performance.now() - t0);
  }
  for (const c of conns) c.close();
  writer.close();
  return times;
}

if (import.meta.main) {
  const [socket, n = "1000", rounds = "5"] = Deno.args;
  const t = await fanout(socket, Number(n), Number(rounds));
  t.sort((a, b) => a - b);
  console.log(
    JSON.stringify({ workload: "fanout", watchers: Number(n), median_ms: t[t.length >> 1], all_ms: t }),
  );
}
