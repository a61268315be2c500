// What a ring held when a live update's new program mapped it again (src/domains/adopt_rings.ts
// ringBacklog, logged by src/live_update/adopt.ts describeBacklog): the bytes between the consumer and
// producer index of each direction, as the guest and the old program left them. The real-Xen E2E
// (tests/xen/qemu/dom0/live_update.sh) reads the log line to show a guest caught mid-request.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { ringBacklog } from "../../src/domains/adopt_rings.ts";
import { describeBacklog } from "../../src/live_update/adopt.ts";
import {
  encode,
  Field,
  REQUESTS,
  RESPONSES,
  ringConsume,
  RingPage,
  ringProduce,
} from "../../src/xen/ring.ts";

Deno.test("ring backlog: a request the guest put in and nobody took off, a reply nobody read", () => {
  const bytes = new Uint8Array(4096);
  const page = new RingPage(bytes);
  assert.deepEqual(ringBacklog(bytes), { requestBytes: 0, replyBytes: 0 });
  const req = encode(2, 7, 0, "data/s6/n\0");
  assert.equal(ringProduce(page, REQUESTS, req), req.length);
  assert.deepEqual(ringBacklog(bytes), { requestBytes: req.length, replyBytes: 0 });
  // the old program took it off and answered; the guest has not read the reply yet
  ringConsume(page, REQUESTS, new Uint8Array(req.length));
  const rsp = encode(2, 7, 0, "41");
  ringProduce(page, RESPONSES, rsp);
  assert.deepEqual(ringBacklog(bytes), { requestBytes: 0, replyBytes: rsp.length });
});

Deno.test("ring backlog: any index positions (wrapping included); inconsistent indexes count as 0", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 1024 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 1025, max: 0x7fffffff }),
      (cons, used, rcons, bad) => {
        const bytes = new Uint8Array(4096);
        const page = new RingPage(bytes);
        page.set(Field.REQ_CONS, cons);
        page.set(Field.REQ_PROD, cons + used);
        page.set(Field.RSP_CONS, rcons);
        page.set(Field.RSP_PROD, rcons + bad);
        assert.deepEqual(ringBacklog(bytes), { requestBytes: used, replyBytes: 0 });
      },
    ),
  );
});

Deno.test("ring backlog: the log text names the rings and bytes, and says none when none", () => {
  assert.equal(describeBacklog([]), "in the rings: requests waiting in 0, replies unread in 0");
  assert.equal(
    describeBacklog([
      { domid: 0, requestBytes: 0, replyBytes: 19 },
      { domid: 3, requestBytes: 35, replyBytes: 0 },
      { domid: 4, requestBytes: 52, replyBytes: 0 },
    ]),
    "in the rings: requests waiting in 2 (domain 3: 35 bytes, domain 4: 52 bytes), " +
      "replies unread in 1 (domain 0: 19 bytes)",
  );
});
