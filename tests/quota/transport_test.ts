// TransportAccounts (src/quota/transport.ts): each connection's account refers to its domain's sums
// directly, so the domain's entry must stay while any of its connections has an account — a closed
// connection must not take the sums its siblings keep counting into.
import assert from "../helpers/assert.ts";
import { TransportAccounts } from "../../src/quota/transport.ts";

Deno.test("TransportAccounts: a connection closing leaves its domain's sums to the domain's other connections", () => {
  const t = new TransportAccounts();
  // Two connections of domain 5 (ids 1 and 2), both with an account; one of domain 6.
  t.received(1, 5);
  t.delivered(1);
  t.received(2, 5);
  t.delivered(2);
  t.received(3, 6);
  t.closed(1); // nothing held by the domain at all, but connection 2 keeps its account
  t.delivered(3);
  t.closed(3);
  assert.equal(t.of(6).outstanding, 0);
  // Connection 2's domain sums are still the ones of(5) reads.
  for (let i = 0; i < 3; i++) assert.equal(t.received(2, 5), i + 1);
  t.queued(2, 5, 100);
  assert.equal(t.of(5).outstanding, 3);
  assert.equal(t.of(5).output, 100);
  t.delivered(2);
  t.queued(2, 5, 40);
  assert.equal(t.of(5).outstanding, 2);
  assert.equal(t.of(5).output, 40);
  t.closed(2);
  assert.equal(t.of(5).outstanding, 0);
  assert.equal(t.of(5).output, 0);
  assert.equal(t.size, 0, "no connection has an account: nothing is kept");
  // A domain whose accounts were all closed starts from zero with a new connection.
  assert.equal(t.received(4, 5), 1);
  assert.equal(t.of(5).outstanding, 1);
});

Deno.test("TransportAccounts: a domain forgotten with accounts open starts afresh", () => {
  const t = new TransportAccounts();
  t.received(1, 7);
  t.queued(1, 7, 50);
  t.forget(7);
  assert.equal(t.size, 0);
  assert.equal(t.of(7).outstanding, 0);
  assert.equal(t.received(2, 7), 1);
  assert.equal(t.of(7).outstanding, 1);
  assert.equal(t.of(7).output, 0);
});
