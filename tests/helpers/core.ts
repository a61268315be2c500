/**
 * Drive the daemon core directly (no socket): a Core with the legacy policy, clients whose replies are
 * collected by a fake ReplySink, and a `call` helper that sends one request and returns its one reply.
 */
import assert from "./assert.ts";
import { Core } from "../../src/dispatch/core.ts";
import { Client, type ReplySink } from "../../src/dispatch/client.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { MsgType } from "../../src/protocol/wire.ts";

export interface Sent {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: string;
}

export class CollectSink implements ReplySink {
  readonly sent: Sent[] = [];
  send(type: number, reqId: number, txId: number, payload: string): boolean {
    this.sent.push({ type, reqId, txId, payload });
    return true;
  }
}

export interface TestClient {
  readonly client: Client;
  readonly sink: CollectSink;
}

export function newCore(): Core {
  return new Core({ policy: new LegacyPolicy() });
}

/** The privileged socket client (dom0), opened the way the transport does. */
export function dom0(core: Core, label = "test-dom0"): TestClient {
  const sink = new CollectSink();
  return { client: core.open(sink, label), sink };
}

let nextId = 10_000;

/** An unprivileged client for domain `domid` (what a guest's ring connection is). */
export function guest(core: Core, domid: number): TestClient {
  const sink = new CollectSink();
  // Built the way a ring connection would be (the only place tests construct a Client by hand).
  const client = new Client(nextId++, domid, false, sink, `dom${domid}`, core.limits.tx);
  core.clients.set(client.id, client);
  return { client, sink };
}

let nextReq = 1;

/** Send one request; exactly one message must come back, echoing req_id and tx_id. */
export function call(core: Core, c: TestClient, type: number, payload: string, txId = 0): Sent {
  const reqId = nextReq++;
  const n = c.sink.sent.length;
  core.message(c.client, { type, reqId, txId, payload });
  const got = c.sink.sent.slice(n);
  assert.equal(got.length, 1, `one reply to type ${type} ${JSON.stringify(payload.slice(0, 60))}`);
  const r = got[0];
  assert.equal(r.reqId, reqId, "reply echoes req_id");
  assert.equal(r.txId, txId, "reply echoes tx_id");
  assert.ok(r.type === type || r.type === MsgType.ERROR, `reply type ${r.type} for request type ${type}`);
  return r;
}

/** The errno of an ERROR reply, or "OK:<payload>" for a success (so assert messages show both). */
export function outcome(r: Sent): string {
  return r.type === MsgType.ERROR ? r.payload.replace(/\0$/, "") : `OK:${r.payload}`;
}

/** Call and expect success; returns the payload. */
export function ok(core: Core, c: TestClient, type: number, payload: string, txId = 0): string {
  const r = call(core, c, type, payload, txId);
  assert.equal(
    r.type,
    type,
    `expected success for type ${type} ${JSON.stringify(payload.slice(0, 60))}, got ${outcome(r)}`,
  );
  return r.payload;
}

/** Call and expect an ERROR reply with `errno` (payload "ERRNO\0"). */
export function err(core: Core, c: TestClient, type: number, payload: string, errno: string, txId = 0): void {
  const r = call(core, c, type, payload, txId);
  assert.equal(outcome(r), errno, `type ${type} ${JSON.stringify(payload.slice(0, 60))}`);
  assert.equal(r.payload, `${errno}\0`, "ERROR payload is the errno name and a NUL");
}
