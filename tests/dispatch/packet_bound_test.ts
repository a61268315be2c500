// Property: whatever sequence of requests dom0 and a guest send — long tokens, long paths, relative
// and special watches, depths, transactions, permission changes, removals — every packet the core
// hands any connection has at most 4096 payload bytes, and every watch event fired is either sent or
// counted as oversized (src/dispatch/events.ts), never lost silently.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { dom0, guest, ok, type TestConn, testCore } from "../helpers/core.ts";
import { MsgType as T, PAYLOAD_MAX } from "../../src/protocol/wire.ts";

const BASES = ["/local/domain/5/w", "/local/domain/5", "/", "/other"];
const TOKEN_LENGTHS = [1, 100, 2000, 3500, 3900, 4000, 4080];
const NAME_LENGTHS = [1, 20, 400, 900, 1500];

type Step =
  | { op: "watch"; who: number; base: number; relative: boolean; token: number; depth: number | null }
  | { op: "write"; who: number; base: number; name: number; tx: boolean }
  | { op: "rm"; who: number; base: number }
  | { op: "perms"; base: number }
  | { op: "dir"; who: number; base: number }
  | { op: "introduce" };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant("watch" as const),
    who: fc.nat(1),
    base: fc.nat(BASES.length - 1),
    relative: fc.boolean(),
    token: fc.nat(TOKEN_LENGTHS.length - 1),
    depth: fc.option(fc.nat(3)),
  }),
  fc.record({
    op: fc.constant("write" as const),
    who: fc.nat(1),
    base: fc.nat(BASES.length - 1),
    name: fc.nat(NAME_LENGTHS.length - 1),
    tx: fc.boolean(),
  }),
  fc.record({ op: fc.constant("rm" as const), who: fc.nat(1), base: fc.nat(BASES.length - 1) }),
  fc.record({ op: fc.constant("perms" as const), base: fc.nat(BASES.length - 1) }),
  fc.record({ op: fc.constant("dir" as const), who: fc.nat(1), base: fc.nat(BASES.length - 1) }),
  fc.constant({ op: "introduce" as const }),
);

Deno.test("property: no packet over 4096 bytes reaches any connection; fired events are sent or counted", () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
      const core = testCore();
      const d0 = dom0(core);
      ok(core, d0, T.WRITE, "/local/domain/5/w\0");
      ok(core, d0, T.SET_PERMS, "/local/domain/5\0n5\0");
      ok(core, d0, T.SET_PERMS, "@introduceDomain\0n0\0r5\0");
      const clients: TestConn[] = [d0, guest(core, 5)];
      let serial = 0;
      // Requests over 4096 bytes never reach the core (the framers close the connection first).
      const send = (c: TestConn, type: number, payload: string, txId = 0) => {
        if (payload.length <= PAYLOAD_MAX) core.message(c.client, { type, reqId: serial++, txId, payload });
      };
      for (const s of steps) {
        const n = serial++;
        if (s.op === "watch") {
          const base = BASES[s.base];
          const path = s.relative && base.startsWith("/local/domain/5/") ? base.slice(16) : base;
          const special = s.base === 2 && s.relative ? "@introduceDomain" : path;
          const token = `${n}-`.padEnd(TOKEN_LENGTHS[s.token], "t");
          send(clients[s.who], T.WATCH, `${special}\0${token}\0${s.depth === null ? "" : `${s.depth}\0`}`);
        } else if (s.op === "write") {
          const path = `${BASES[s.base].replace(/\/$/, "")}/${"n".repeat(NAME_LENGTHS[s.name])}${n}`;
          if (s.tx) {
            send(clients[s.who], T.TRANSACTION_START, "\0");
            const start = clients[s.who].sink.sent.at(-1)!;
            const tx = start.type === T.TRANSACTION_START ? Number(start.payload.slice(0, -1)) : 0;
            send(clients[s.who], T.WRITE, `${path}\0v`, tx);
            send(clients[s.who], T.TRANSACTION_END, "T\0", tx);
          } else send(clients[s.who], T.WRITE, `${path}\0v`);
        } else if (s.op === "rm") {
          send(clients[s.who], T.RM, `${BASES[s.base]}\0`);
        } else if (s.op === "perms") {
          send(d0, T.SET_PERMS, `${BASES[s.base]}\0n0\0r5\0`);
        } else if (s.op === "dir") {
          send(clients[s.who], T.DIRECTORY, `${BASES[s.base]}\0`);
        } else {
          core.watches.fireSpecial("@introduceDomain", 10000 + n % 50000, "both");
        }
        for (const c of clients) {
          for (const m of c.sink.sent) {
            assert.ok(m.payload.length <= PAYLOAD_MAX, `a ${m.payload.length}-byte packet of type ${m.type}`);
          }
        }
      }
      const st = core.watches.stats;
      const sent = clients.reduce(
        (k, c) => k + c.sink.sent.filter((m) => m.type === T.WATCH_EVENT).length,
        0,
      );
      assert.equal(st.undelivered, core.events.stats.oversized, "nothing refused but oversized events");
      assert.equal(sent + core.events.stats.oversized, st.fired);
    }),
    { numRuns: 150 },
  );
});
