// The live-update controller in process (src/live_update/controller.ts), with a fake socket transport
// and a fake exec: what it hands over (the dump, the argv, the descriptors), when it waits, and how it
// fails — the paths an end-to-end test cannot steer (a connection's input too large for a CONN record).
import assert from "../helpers/assert.ts";
import { Core } from "../../src/dispatch/core.ts";
import type { Client } from "../../src/dispatch/client.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";
import {
  type HandedOverSocket,
  LiveUpdateController,
  type LiveUpdateOptions,
} from "../../src/live_update/controller.ts";
import { cxenstoredArgs } from "../../src/cli/handover_args.ts";
import { readStream } from "../../src/migration/reader.ts";
import { hostStateFromStream } from "../../src/migration/host_state.ts";
import { answerFailure, FALLBACK_ENV, parseFallback } from "../../src/live_update/fallback.ts";

interface Sent {
  type: number;
  reqId: number;
  payload: string;
}

function setup(input: Uint8Array = new Uint8Array(0), more: Partial<LiveUpdateOptions> = {}) {
  const rundir = Deno.makeTempDirSync({ prefix: "dxs-luc-" });
  // The dispatcher stamps transactions with Date.now(): the controller's clock starts there.
  const base = Date.now();
  let now = base;
  const core = new Core({ policy: new LegacyPolicy() });
  const execs: Array<{
    file: string;
    argv: readonly string[];
    fds: readonly number[];
    dump: Uint8Array;
    env: Readonly<Record<string, string>>;
    fallbackDump: Uint8Array | null;
  }> = [];
  const lu = new LiveUpdateController({
    core,
    rundir,
    ownArgs: ["--socket", "/s"],
    env: () => ({}),
    flushDurable: () => {},
    guests: () => 0,
    checkFile: () => null,
    now: () => now,
    exec: (file, argv, env, fds) => {
      const dump = Deno.readFileSync(`${rundir}/state_dump`);
      let fallbackDump: Uint8Array | null = null;
      try {
        fallbackDump = Deno.readFileSync(`${rundir}/state_dump.fallback`);
      } catch { /* none: no way back prepared */ }
      execs.push({ file, argv, fds, dump, env, fallbackDump });
      return "execve: /new: no such file (errno 2)";
    },
    ...more,
  });
  const sent = new Map<number, Sent[]>();
  const open = (fd: number): Client => {
    const out: Sent[] = [];
    const c = lu.open(
      { send: (type, reqId, _tx, payload) => (out.push({ type, reqId, payload }), true) },
      `s${fd}`,
    );
    sent.set(c.id, out);
    return c;
  };
  const a = open(7);
  const b = open(8);
  let resumed = 0;
  const state = (c: Client, fd: number): HandedOverSocket => ({
    kind: "socket",
    fd,
    input: c === b ? input : new Uint8Array(0),
    output: new Uint8Array(0),
    partial: 0,
  });
  lu.attach({
    listenerFd: 5,
    connections: () => [
      { client: a, transportState: () => state(a, 7) },
      { client: b, transportState: () => state(b, 8) },
    ],
    resumeHeld: () => resumed++,
  });
  const ctl = (c: Client, reqId: number, ...args: string[]) =>
    lu.message(c, {
      type: MsgType.CONTROL,
      reqId,
      txId: 0,
      payload: ["live-update", ...args, ""].join("\0"),
    });
  return {
    rundir,
    core,
    lu,
    a,
    b,
    execs,
    ctl,
    sent: (c: Client) => sent.get(c.id)!,
    /** ms since setup. */
    set now(t: number) {
      now = base + t;
    },
    get resumed() {
      return resumed;
    },
  };
}

Deno.test("live-update controller: the dump, argv and descriptors handed over; exec failure answered", () => {
  const t = setup();
  t.ctl(t.a, 1, "-f", "/new");
  t.ctl(t.a, 2, "-c", "-N  --socket /s");
  t.ctl(t.a, 3, "-s", "-t", "10");
  assert.deepEqual(t.sent(t.a).map((s) => s.payload), ["OK\0", "OK\0"], "-s is delayed");
  // A transaction start of a connection without a transaction is held from -f on.
  assert.equal(
    t.lu.message(t.b, { type: MsgType.TRANSACTION_START, reqId: 4, txId: 0, payload: "\0" }),
    false,
  );
  t.lu.turnEnd();
  assert.equal(t.execs.length, 1);
  const e = t.execs[0];
  assert.equal(e.file, "/new");
  assert.deepEqual(e.argv, ["/new", "-N", "--socket", "/s", "-U"]);
  assert.deepEqual(e.fds, [5, 7, 8]);
  // The way back (./fallback.ts): the same bytes under a second name, and how to start this program.
  assert.deepEqual(e.fallbackDump, e.dump);
  const fb = parseFallback(e.env[FALLBACK_ENV]);
  assert.ok(fb !== null, "DXENSTORED_LU_FALLBACK set");
  assert.equal(fb!.file, Deno.execPath());
  assert.deepEqual([fb!.fd, fb!.reqId, fb!.txId], [7, 3, 0]);
  assert.equal(fb!.argv.at(-1), "-U");
  // Coming back, the old program answers the asker with the failure instead of OK.
  const back = answerFailure(hostStateFromStream(readStream(e.dump)), { ...fb!, reason: "boom" });
  const asker = back.connections.find((c) => c.endpoint.kind === "socket" && c.endpoint.fd === 7)!;
  assert.deepEqual(asker.output, encodeMessage(MsgType.CONTROL, 3, 0, "live-update failed: boom\0"));
  const host = hostStateFromStream(readStream(e.dump));
  assert.equal(host.global?.socketFd, 5);
  const sockets = host.connections.filter((c) => c.endpoint.kind === "socket");
  assert.deepEqual(sockets.map((c) => c.endpoint.kind === "socket" ? c.endpoint.fd : -1), [7, 8]);
  // The asking connection's reply to -s is in the dump as unsent output.
  assert.deepEqual(sockets[0].output, encodeMessage(MsgType.CONTROL, 3, 0, "OK\0"));
  assert.equal(sockets[1].output.length, 0);
  // The exec failed: answered here, the dump removed, held connections resumed, the session over.
  const last = t.sent(t.a).at(-1)!;
  assert.equal(last.reqId, 3);
  assert.equal(last.payload, "Error activating new binary.\nexecve: /new: no such file (errno 2)\0");
  assert.throws(() => Deno.statSync(`${t.rundir}/state_dump`));
  assert.throws(() => Deno.statSync(`${t.rundir}/state_dump.fallback`));
  assert.ok(t.resumed > 0);
  assert.ok(!t.lu.session.active);
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: waits for open transactions, then refuses or (-F) goes", () => {
  const t = setup();
  t.core.message(t.b, { type: MsgType.TRANSACTION_START, reqId: 1, txId: 0, payload: "\0" });
  t.ctl(t.a, 2, "-f", "/new");
  t.ctl(t.a, 3, "-s", "-t", "2");
  t.now = 1000;
  t.lu.turnEnd();
  assert.equal(t.execs.length, 0, "waiting");
  t.now = 2500;
  t.lu.turnEnd();
  assert.equal(t.execs.length, 0);
  assert.equal(t.sent(t.a).at(-1)!.payload, "Domains with long running transactions:\nDomain 0: 2 s\0");
  t.ctl(t.a, 4, "-f", "/new");
  t.ctl(t.a, 5, "-s", "-t", "2", "-F");
  t.lu.turnEnd();
  assert.equal(t.execs.length, 1, "-F with only long-running transactions: at once");
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: input too large for a CONN record waits, then fails clearly", () => {
  const t = setup(new Uint8Array(70000));
  t.ctl(t.a, 1, "-f", "/new");
  t.ctl(t.a, 2, "-s", "-t", "3");
  t.now = 1000;
  t.lu.turnEnd();
  assert.equal(t.execs.length, 0);
  assert.equal(t.sent(t.a).length, 1, "no reply yet");
  t.now = 3000;
  t.lu.turnEnd();
  assert.equal(t.execs.length, 0);
  assert.ok(t.sent(t.a).at(-1)!.payload.startsWith("A connection holds 70000 bytes of unprocessed input"));
  assert.ok(!t.lu.session.active);
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: the owner's connection closing ends the session", () => {
  const t = setup();
  t.ctl(t.b, 1, "-f", "/new");
  assert.ok(t.lu.session.active);
  t.lu.close(t.b);
  assert.ok(!t.lu.session.active);
  assert.ok(t.resumed > 0, "held requests are served again");
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: only other connections' transaction starts are held", () => {
  const t = setup();
  t.ctl(t.a, 1, "-f", "/new");
  const ts = (c: Client, reqId: number) =>
    t.lu.message(c, { type: MsgType.TRANSACTION_START, reqId, txId: 0, payload: "\0" });
  // The owner's would hold its own -s behind it: processed (its transaction is then waited for).
  assert.notEqual(ts(t.a, 2), false);
  assert.equal(t.a.txns.size, 1);
  assert.equal(ts(t.b, 3), false);
  assert.equal(t.b.txns.size, 0);
  t.lu.message(t.a, { type: MsgType.CONTROL, reqId: 4, txId: 0, payload: "live-update\0-a\0" });
  assert.ok(!t.lu.session.active);
  assert.notEqual(ts(t.b, 5), false, "after the session, nothing is held");
  Deno.removeSync(t.rundir, { recursive: true });
});

/** A -f whose probe says cxenstored; the probe's answer arrives on a later microtask. */
async function cxSession(t: ReturnType<typeof setup>): Promise<void> {
  t.ctl(t.a, 1, "-f", "/cx");
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(t.sent(t.a).at(-1)!.payload, "OK\0");
}

const cxTarget: Partial<LiveUpdateOptions> = {
  probe: (f) => Promise.resolve({ ok: true, program: f === "/cx" ? "cxenstored" : "dxenstored" }),
  cxenstoredArgs,
  socketPath: "/s",
};

Deno.test("live-update controller: dx → cx gets cxenstored's arguments, its rundir and no way back", async () => {
  const t = setup(new Uint8Array(0), cxTarget);
  await cxSession(t);
  t.ctl(t.a, 2, "-s");
  t.lu.turnEnd();
  assert.equal(t.execs.length, 1);
  const e = t.execs[0];
  // --socket is dxenstored's own: cxenstored gets its "foreground" meaning, -N.
  assert.deepEqual(e.argv, ["/cx", "-N", "-U"]);
  assert.equal(e.env.XENSTORED_RUNDIR, t.rundir);
  assert.equal(e.env.XENSTORED_PATH, "/s");
  assert.equal(e.env[FALLBACK_ENV], undefined, "cxenstored must not carry a way back to pass on");
  assert.equal(e.fallbackDump, null);
  // What cxenstored 4.17 needs first: dom0's ring connection, before any socket or node.
  const stream = readStream(e.dump);
  assert.equal(stream.version, 1);
  const first = stream.records.find((r) => r.type === "conn");
  assert.ok(first?.type === "conn" && first.endpoint.kind === "ring" && first.endpoint.domid === 0);
  // -c still wins.
  await cxSession(t);
  t.ctl(t.a, 3, "-c", "-N -E 5000");
  t.ctl(t.a, 4, "-s");
  t.lu.turnEnd();
  assert.deepEqual(t.execs[1].argv, ["/cx", "-N", "-E", "5000", "-U"]);
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: a stream cxenstored 4.17 would die on is refused before the exec", async () => {
  const t = setup(new Uint8Array(0), cxTarget);
  // dxenstored lets dom0 give a node to any domid; cxenstored dies restoring a node of a domain the
  // hypervisor does not report.
  t.core.message(t.a, { type: MsgType.WRITE, reqId: 1, txId: 0, payload: "/g\0v" });
  t.core.message(t.a, { type: MsgType.SET_PERMS, reqId: 2, txId: 0, payload: "/g\0n7\0" });
  await cxSession(t);
  t.ctl(t.a, 3, "-s");
  t.lu.turnEnd();
  assert.equal(t.execs.length, 0, "not started");
  assert.equal(
    t.sent(t.a).at(-1)!.payload,
    "cannot hand over to cxenstored 4.17: 1 node(s) owned by domain 7, which does not exist\0",
  );
  assert.throws(() => Deno.statSync(`${t.rundir}/state_dump`)); // no dump left
  assert.ok(!t.lu.session.active);
  // The same state goes to a dxenstored.
  t.ctl(t.a, 4, "-f", "/new");
  await new Promise((r) => setTimeout(r, 0));
  t.ctl(t.a, 5, "-s");
  t.lu.turnEnd();
  assert.equal(t.execs.length, 1, "the owner check is cxenstored's only");
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: rings go along where the platform can adopt them, else refused", async () => {
  // No way to hand rings over (a platform without adoptInterdomain): refused at -f, as before anything is torn down.
  const refused = setup(new Uint8Array(0), { guests: () => 2 });
  refused.ctl(refused.a, 1, "-f", "/new");
  assert.equal(
    refused.sent(refused.a).at(-1)!.payload,
    "live update while domains' rings are served (2) is not supported by dxenstored on this platform yet.\0",
  );
  Deno.removeSync(refused.rundir, { recursive: true });
  // Real or simulated Xen: the rings and the event-channel descriptor go with the switch.
  const ring = {
    clientId: 99,
    domid: 5,
    target: null,
    localPort: 3,
    input: new Uint8Array([1, 2, 3]),
    output: [{ type: MsgType.READ, reqId: 4, txId: 0, payload: "abcdef" }],
    outputOffset: 18,
  };
  // VIRQ_DOM_EXC: released just before the exec (the new program binds it again), bound again when the
  // exec fails (the fake's does).
  const virq: string[] = [];
  const t = setup(new Uint8Array(0), {
    ...cxTarget,
    guests: () => 1,
    rings: {
      eventFd: 11,
      rings: () => [ring],
      releaseForExec: () => {
        virq.push("released");
        return () => virq.push("bound again");
      },
      cxenstoredCanAdopt: false, // the simulated Xen's
    },
  });
  t.ctl(t.a, 1, "-f", "/new");
  await new Promise((r) => setTimeout(r, 0));
  t.ctl(t.a, 2, "-s");
  assert.deepEqual(virq, []);
  t.lu.turnEnd();
  assert.equal(t.execs.length, 1);
  assert.deepEqual(virq, ["released", "bound again"]);
  assert.deepEqual(t.execs[0].fds, [5, 7, 8, 11], "the event-channel descriptor is kept");
  const host = hostStateFromStream(readStream(t.execs[0].dump));
  assert.equal(host.global?.evtchnFd, 11);
  const r = host.connections.find((c) => c.endpoint.kind === "ring" && c.endpoint.domid === 5)!;
  assert.ok(r.endpoint.kind === "ring" && r.endpoint.evtchn === 3);
  assert.deepEqual([...r.input], [1, 2, 3]);
  // 18 of the 22 bytes were in the ring: the rest ("cdef") goes as a partial message.
  assert.deepEqual(new TextDecoder().decode(r.output), "cdef");
  assert.equal(r.partialOutput, 4);
  // To cxenstored: refused at -s, once the program is known.
  await cxSession(t);
  t.ctl(t.a, 3, "-s");
  t.lu.turnEnd();
  assert.equal(t.execs.length, 1);
  assert.equal(
    t.sent(t.a).at(-1)!.payload,
    "live update while domains' rings are served (1) is not supported by dxenstored to cxenstored yet.\0",
  );
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: under real Xen the rings go to cxenstored too", async () => {
  const ring = {
    clientId: 99,
    domid: 0,
    target: null,
    localPort: 22,
    input: new Uint8Array(0),
    output: [],
    outputOffset: 0,
  };
  let released = 0;
  const t = setup(new Uint8Array(0), {
    ...cxTarget,
    guests: () => 1,
    rings: {
      eventFd: 11,
      rings: () => [ring],
      releaseForExec: () => {
        released++;
        return () => {};
      },
      cxenstoredCanAdopt: true,
    },
  });
  await cxSession(t);
  t.ctl(t.a, 2, "-s");
  t.lu.turnEnd();
  assert.equal(t.execs.length, 1, t.sent(t.a).at(-1)?.payload);
  assert.equal(released, 1, "VIRQ_DOM_EXC released for cxenstored's domain_init");
  assert.equal(t.execs[0].argv.at(-1), "-U");
  assert.deepEqual(t.execs[0].fds.at(-1), 11, "the event-channel descriptor goes to cxenstored");
  const host = hostStateFromStream(readStream(t.execs[0].dump));
  assert.equal(host.global?.evtchnFd, 11);
  const first = host.connections[0].endpoint;
  assert.ok(first.kind === "ring" && first.domid === 0 && first.evtchn === 22, "dom0's real ring first");
  Deno.removeSync(t.rundir, { recursive: true });
});

Deno.test("live-update controller: dx → cx waits for piled-up requests, then refuses (4.17 restores one)", async () => {
  const two = new Uint8Array([
    ...encodeMessage(MsgType.TRANSACTION_START, 1, 0, "\0"),
    ...encodeMessage(MsgType.READ, 2, 0, "/x\0"),
  ]);
  const t = setup(two, cxTarget);
  await cxSession(t);
  t.ctl(t.a, 2, "-s", "-t", "2");
  t.now = 1000;
  t.lu.turnEnd();
  assert.equal(t.execs.length, 0, "waiting");
  assert.equal(t.sent(t.a).length, 1, "no reply yet");
  t.now = 2500;
  t.lu.turnEnd();
  assert.equal(t.execs.length, 0);
  assert.equal(
    t.sent(t.a).at(-1)!.payload,
    "cannot hand over to cxenstored 4.17: more than one unprocessed request in connection 3 (2): " +
      "cxenstored 4.17 restores one\0",
  );
  assert.ok(!t.lu.session.active);
  Deno.removeSync(t.rundir, { recursive: true });
});
