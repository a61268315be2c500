// Watch semantics through the Core (dispatcher + watch manager + policy), with fake connections:
// every matching rule of docs/watches.md, the permission filter with unprivileged domains, quotas,
// cleanup and transactions.
import assert from "../helpers/assert.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { dom0, guest, makeDomainHome, testCore } from "../helpers/core.ts";
import { DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";

// ---------------------------------------------------------------- registration

Deno.test("WATCH: OK reply first, then the initial event with the path as given", () => {
  const core = testCore();
  const a = dom0(core);
  const r = a.call(MsgType.WATCH, ["/does/not/exist", "tok"]);
  assert.equal(r.type, MsgType.WATCH);
  assert.equal(r.payload, "OK\0");
  assert.deepEqual(a.events(), ["/does/not/exist tok"]);
  // Special and relative paths are echoed as given too.
  a.watch("@releaseDomain", "r");
  a.watch("relative/path", "rel");
  assert.deepEqual(a.events(), []);
});

Deno.test("duplicate (path, token) is EEXIST; other combinations are separate watches", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("/x", "t");
  assert.equal(a.err(MsgType.WATCH, ["/x", "t"]), "EEXIST");
  assert.equal(a.err(MsgType.WATCH, ["/x", "t", "2"]), "EEXIST", "a depth does not make it different");
  assert.deepEqual(a.events(), [], "no initial event for a refused watch");
  a.watch("/x", "u");
  a.watch("/y", "t");
  // The same absolute path reached relatively is the same watch.
  a.watch("/local/domain/0/rel", "t");
  assert.equal(a.err(MsgType.WATCH, ["rel", "t"]), "EEXIST");
  // Another connection may register the same pair.
  const b = dom0(core, "b");
  b.watch("/x", "t");
  assert.equal(core.watches.trie.size, 5);
  a.write("/x");
  assert.deepEqual(a.sortedEvents(), ["/x t", "/x u"]);
  assert.deepEqual(b.events(), ["/x t"]);
});

Deno.test("malformed WATCH / UNWATCH are EINVAL and register nothing", () => {
  const core = testCore();
  const a = dom0(core);
  assert.equal(a.err(MsgType.WATCH, ["/a"]), "EINVAL");
  assert.equal(a.err(MsgType.WATCH, ["/a", "t", "-1"]), "EINVAL");
  assert.equal(a.err(MsgType.WATCH, ["/a", "t", "x"]), "EINVAL");
  assert.equal(a.err(MsgType.WATCH, ["/a//b", "t"]), "EINVAL");
  assert.equal(a.err(MsgType.WATCH, ["/a/", "t"]), "EINVAL");
  assert.equal(a.err(MsgType.WATCH, ["@", "t"]), "EINVAL");
  assert.equal(a.err(MsgType.UNWATCH, ["/a"]), "EINVAL");
  assert.deepEqual(a.events(), []);
  assert.equal(core.watches.trie.size, 0);
  assert.equal(core.watches.trie.nodeCount(), 1);
});

Deno.test("tx_id is ignored by WATCH and UNWATCH; RESET_WATCHES needs an open one or none (as cxenstored)", () => {
  const core = testCore();
  const a = dom0(core);
  // A tx_id naming no transaction at all: still accepted, and the reply echoes it.
  const r = a.call(MsgType.WATCH, ["/w", "t"], 4242);
  assert.equal(r.type, MsgType.WATCH);
  assert.equal(r.txId, 4242);
  assert.deepEqual(a.events(), ["/w t"]);
  // A real open transaction: the watch is not tied to it and fires for changes outside it at once.
  const tx = a.startTx();
  a.ok(MsgType.WATCH, ["/v", "t"], tx);
  assert.deepEqual(a.events(), ["/v t"]);
  a.write("/v/x");
  assert.deepEqual(a.events(), ["/v/x t"]);
  a.endTx(tx, false); // aborting the transaction does not remove the watch
  a.write("/v");
  assert.deepEqual(a.events(), ["/v t"]);
  a.ok(MsgType.UNWATCH, ["/v", "t"], 999);
  a.ok(MsgType.UNWATCH, ["/w", "t"], 77);
  assert.equal(core.watches.trie.size, 0);
  a.watch("/z", "t");
  const tx2 = a.startTx();
  assert.equal(a.err(MsgType.RESET_WATCHES, [], 31337), "ENOENT", "no transaction 31337: nothing reset");
  assert.equal(core.watches.trie.size, 1);
  a.ok(MsgType.RESET_WATCHES, [], tx2);
  assert.equal(core.watches.trie.size, 0);
  // RESET_WATCHES also forgets the caller's transactions (as cxenstored / oxenstored).
  assert.equal(a.err(MsgType.TRANSACTION_END, ["T"], tx2), "ENOENT");
});

Deno.test("UNWATCH: exact (path, token), relative form accepted, unknown is ENOENT", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("rel", "t");
  assert.equal(a.err(MsgType.UNWATCH, ["rel", "other"]), "ENOENT");
  assert.equal(a.err(MsgType.UNWATCH, ["/rel", "t"]), "ENOENT");
  a.unwatch("/local/domain/0/rel", "t");
  assert.equal(a.err(MsgType.UNWATCH, ["rel", "t"]), "ENOENT");
  a.write("/local/domain/0/rel");
  assert.deepEqual(a.events(), []);
  assert.equal(core.watches.trie.nodeCount(), 1);
});

// ---------------------------------------------------------------- matching

Deno.test("create, modify, permission change and removal of the path or any descendant fire", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("/a", "t");
  a.write("/a"); // create
  assert.deepEqual(a.events(), ["/a t"]);
  a.write("/a", "v"); // modify
  assert.deepEqual(a.events(), ["/a t"]);
  a.write("/a", "v"); // rewrite with the same value still fires (as Xen)
  assert.deepEqual(a.events(), ["/a t"]);
  a.write("/a/b/c", "deep"); // creates /a/b too; one event, at the written path
  assert.deepEqual(a.events(), ["/a/b/c t"]);
  a.ok(MsgType.MKDIR, ["/a/m"]);
  assert.deepEqual(a.events(), ["/a/m t"]);
  a.ok(MsgType.MKDIR, ["/a/m"]); // MKDIR of an existing node changes nothing: no event
  assert.deepEqual(a.events(), []);
  a.setPerms("/a/b", "n0", "r3");
  assert.deepEqual(a.events(), ["/a/b t"]);
  a.rm("/a/b/c");
  assert.deepEqual(a.events(), ["/a/b/c t"]);
  a.rm("/a/nonexistent"); // RM of a missing node (parent exists) is OK and changes nothing
  assert.deepEqual(a.events(), []);
  a.rm("/a");
  assert.deepEqual(a.events(), ["/a t"]);
});

Deno.test("siblings, prefixes and ancestors do not match", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("/a/b", "t");
  a.write("/a"); // ancestor
  a.write("/a/bb"); // string prefix, not a path prefix
  a.write("/a/c"); // sibling
  a.write("/ab");
  a.write("/@a/b"); // a plain path, not a special one
  assert.deepEqual(a.events(), []);
  a.write("/a/b/x");
  assert.deepEqual(a.events(), ["/a/b/x t"]);
});

Deno.test("a watch on a path that does not exist fires when it (or a descendant) comes into being", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("/n/o/p", "t");
  a.write("/n"); // an ancestor coming into being is not the watched path
  a.write("/n/o");
  assert.deepEqual(a.events(), []);
  a.write("/n/o/p/q/r", "x"); // creates /n/o/p on the way
  assert.deepEqual(a.events(), ["/n/o/p/q/r t"]);
  a.rm("/n");
  assert.deepEqual(a.events(), ["/n/o/p t"], "recursive removal reports the watched path");
  a.write("/n/o/p");
  assert.deepEqual(a.events(), ["/n/o/p t"], "and it fires again when recreated");
});

Deno.test("recursive removal: watchers above get the removed path, watchers below their own path", () => {
  const core = testCore();
  const a = dom0(core);
  a.write("/r/x/y/z", "1");
  a.write("/r/x/w", "2");
  a.watch("/", "root");
  a.watch("/r", "r");
  a.watch("/r/x", "x");
  a.watch("/r/x/y/z", "z");
  a.watch("/r/x/w", "w", 0); // depth is irrelevant for removal of an ancestor
  a.watch("/r/x/ghost", "ghost"); // never existed: nothing was removed there
  a.watch("/s", "other");
  a.rm("/r/x");
  assert.deepEqual(a.sortedEvents(), [
    "/r/x r",
    "/r/x root",
    "/r/x x",
    "/r/x/w w",
    "/r/x/y/z z",
  ]);
});

Deno.test("relative watch paths are reported relative to the caller's domain path", () => {
  const core = testCore();
  const a = dom0(core);
  makeDomainHome(a, 5);
  const g = guest(core, 5);
  g.watch("data", "rel");
  g.watch("/local/domain/5/data", "abs");
  g.watch("data/deep/er", "gone");
  a.write("/local/domain/5/data/x", "1");
  assert.deepEqual(g.sortedEvents(), ["/local/domain/5/data/x abs", "data/x rel"]);
  g.write("data/deep/er/est", "1"); // a guest writing relatively
  assert.deepEqual(g.sortedEvents(), [
    "/local/domain/5/data/deep/er/est abs",
    "data/deep/er/est gone",
    "data/deep/er/est rel",
  ]);
  a.rm("/local/domain/5"); // the whole home goes: every watch below reports its own path
  assert.deepEqual(g.sortedEvents(), ["/local/domain/5/data abs", "data rel", "data/deep/er gone"]);
  // dom0's relative paths are relative to /local/domain/0.
  a.watch("mine", "t");
  a.write("/local/domain/0/mine/k");
  assert.deepEqual(a.events(), ["mine/k t"]);
});

Deno.test("depth: 0 = the node only, 1 = direct children, n = n levels; removal ignores it", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("/d", "d0", 0);
  a.watch("/d", "d1", 1);
  a.watch("/d", "d2", 2);
  a.watch("/d", "dn");
  a.write("/d");
  assert.deepEqual(a.sortedEvents(), ["/d d0", "/d d1", "/d d2", "/d dn"]);
  a.write("/d/x");
  assert.deepEqual(a.sortedEvents(), ["/d/x d1", "/d/x d2", "/d/x dn"]);
  a.write("/d/x/y");
  assert.deepEqual(a.sortedEvents(), ["/d/x/y d2", "/d/x/y dn"]);
  a.write("/d/x/y/z");
  assert.deepEqual(a.sortedEvents(), ["/d/x/y/z dn"]);
  a.rm("/d/x/y"); // a change at depth 2
  assert.deepEqual(a.sortedEvents(), ["/d/x/y d2", "/d/x/y dn"]);
  a.watch("/d/x/deep", "below0", 0);
  a.write("/d/x/deep/er");
  assert.deepEqual(a.sortedEvents(), ["/d/x/deep/er dn"]);
  a.rm("/d");
  assert.deepEqual(a.sortedEvents(), ["/d d0", "/d d1", "/d d2", "/d dn", "/d/x/deep below0"]);
  // GET_FEATURE advertises XENSTORE_SERVER_FEATURE_WATCHDEPTH (4).
  assert.equal(Number(a.ok(MsgType.GET_FEATURE, []).replace(/\0$/, "")) & 4, 4);
});

Deno.test("the root watch sees every plain path but no special event", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("/", "root");
  a.watch("/", "root1", 1);
  a.write("/q/r");
  a.write("/top");
  assert.deepEqual(a.sortedEvents(), ["/q/r root", "/top root", "/top root1"]);
  core.watches.fireSpecial("@releaseDomain", 3);
  core.watches.fireSpecial("@introduceDomain", 3);
  assert.deepEqual(a.events(), []);
});

// ---------------------------------------------------------------- special watches

Deno.test("special watches: @introduceDomain, @releaseDomain, depth 1 and @releaseDomain/<domid>", () => {
  const core = testCore();
  const a = dom0(core);
  a.watch("@introduceDomain", "intro");
  a.watch("@introduceDomain", "intro1", 1);
  a.watch("@releaseDomain", "rel");
  a.watch("@releaseDomain", "rel1", 1);
  a.watch("@releaseDomain", "rel0", 0); // Xen: depth other than 1 "not supported": never fires
  a.watch("@releaseDomain/7", "rel7");
  a.watch("@releaseDomain/8", "rel8");
  a.watch("@releaseDomain/7/x", "deeper"); // nothing is invented below <domid>
  a.watch("@other", "other"); // any @ syntax registers; the daemon never fires it

  core.watches.fireSpecial("@introduceDomain", 7);
  assert.deepEqual(a.sortedEvents(), ["@introduceDomain intro", "@introduceDomain/7 intro1"]);

  core.watches.fireSpecial("@releaseDomain", 7); // domain destruction: both flavours
  assert.deepEqual(a.sortedEvents(), [
    "@releaseDomain rel",
    "@releaseDomain/7 rel1",
    "@releaseDomain/7 rel7",
  ]);

  core.watches.fireSpecial("@releaseDomain", 8, "perDomain"); // shutdown: only per-domain watchers
  assert.deepEqual(a.sortedEvents(), ["@releaseDomain/8 rel1", "@releaseDomain/8 rel8"]);

  core.watches.fireSpecial("@releaseDomain", 9, "plain"); // "some domain went away"
  assert.deepEqual(a.sortedEvents(), ["@releaseDomain rel"]);

  // Plain-path changes never reach special watches, even at look-alike paths.
  a.write("/@releaseDomain/7");
  a.write("/releaseDomain");
  assert.deepEqual(a.events(), []);

  a.unwatch("@releaseDomain/7", "rel7");
  core.watches.fireSpecial("@releaseDomain", 7);
  assert.deepEqual(a.sortedEvents(), ["@releaseDomain rel", "@releaseDomain/7 rel1"]);
});

Deno.test("special events reach unprivileged domains only when granted read with SET_PERMS", () => {
  const core = testCore();
  const a = dom0(core);
  const g = guest(core, 5);
  const h = guest(core, 6);
  for (const c of [g, h]) {
    c.watch("@releaseDomain", "rel"); // registration is allowed; the initial event is not filtered
    c.watch("@releaseDomain/9", "rel9");
    c.watch("@introduceDomain", "intro");
  }
  core.watches.fireSpecial("@releaseDomain", 9);
  core.watches.fireSpecial("@introduceDomain", 9);
  assert.deepEqual(g.events(), []);
  assert.deepEqual(h.events(), []);
  // A guest cannot grant itself access.
  assert.equal(g.err(MsgType.SET_PERMS, ["@releaseDomain", "n0", "r5"]), "EACCES");
  a.setPerms("@releaseDomain", "n0", "r5");
  core.watches.fireSpecial("@releaseDomain", 9);
  core.watches.fireSpecial("@introduceDomain", 9);
  assert.deepEqual(g.sortedEvents(), ["@releaseDomain rel", "@releaseDomain/9 rel9"]);
  assert.deepEqual(h.events(), []);
  a.setPerms("@introduceDomain", "n0", "r6");
  core.watches.fireSpecial("@introduceDomain", 9);
  assert.deepEqual(g.events(), []);
  assert.deepEqual(h.events(), ["@introduceDomain intro"]);
  // Taking the grant back stops the events again.
  a.setPerms("@releaseDomain", "n0");
  core.watches.fireSpecial("@releaseDomain", 9);
  assert.deepEqual(g.events(), []);
  assert.ok(core.watches.stats.filtered > 0);
});

// ---------------------------------------------------------------- permission filtering

Deno.test("permission filter: no event for a path the watcher cannot read", () => {
  const core = testCore();
  const a = dom0(core);
  makeDomainHome(a, 5);
  a.write("/pub");
  a.setPerms("/pub", "n0", "r5"); // readable by 5
  const g = guest(core, 5);
  g.watch("/", "root");
  a.watch("/", "admin");

  a.write("/secret", "x"); // inherits n0 from /: invisible to 5
  assert.deepEqual(g.events(), []);
  assert.deepEqual(a.events(), ["/secret admin"]);

  a.write("/pub/open", "x"); // inherits /pub's perms: readable
  assert.deepEqual(g.events(), ["/pub/open root"]);
  a.events();

  a.write("/local/domain/5/mine", "x"); // 5's own home
  assert.deepEqual(g.events(), ["/local/domain/5/mine root"]);

  a.write("/local/domain/6/theirs", "x");
  assert.deepEqual(g.events(), []);

  // A readable parent does not make an unreadable child's events visible (stricter than cxenstored).
  a.write("/pub/hidden", "x");
  g.events();
  a.setPerms("/pub/hidden", "n0");
  g.events(); // (the revocation itself is reported: see below)
  a.write("/pub/hidden", "y");
  a.write("/pub/hidden/child", "y");
  assert.deepEqual(g.events(), []);
  assert.deepEqual(a.sortedEvents().length > 0, true);
});

Deno.test("permission filter: removal of a path the watcher could read is reported", () => {
  const core = testCore();
  const a = dom0(core);
  a.write("/pub/a/b", "1");
  a.setPerms("/pub", "n0", "r5");
  a.setPerms("/pub/a", "n0", "r5");
  a.setPerms("/pub/a/b", "n0", "r5");
  a.write("/pub/hid/x", "1");
  a.setPerms("/pub/hid", "n0");
  a.setPerms("/pub/hid/x", "n0");
  a.write("/secret/s", "1");
  const g = guest(core, 5);
  g.watch("/pub", "pub");
  g.watch("/pub/a/b", "b");
  g.watch("/pub/hid/x", "hx");
  g.watch("/secret", "sec");
  g.watch("/secret/s", "ss");

  a.rm("/pub"); // after the removal 5 can read nothing of it: it could before
  assert.deepEqual(g.sortedEvents(), ["/pub pub", "/pub/a/b b"]);
  a.rm("/secret");
  assert.deepEqual(g.events(), []);
});

Deno.test("permission filter: permission changes are judged on the old and the new permissions", () => {
  const core = testCore();
  const a = dom0(core);
  a.write("/p", "1");
  const g = guest(core, 5);
  g.watch("/p", "t");
  a.setPerms("/p", "n0", "r5"); // gains read: reported
  assert.deepEqual(g.events(), ["/p t"]);
  a.write("/p", "2");
  assert.deepEqual(g.events(), ["/p t"]);
  a.setPerms("/p", "n0"); // loses read: reported once (old permissions), as cxenstored
  assert.deepEqual(g.events(), ["/p t"]);
  a.write("/p", "3"); // from now on: nothing
  a.setPerms("/p", "n0", "w5"); // write-only: still no read
  assert.deepEqual(g.events(), []);
});

Deno.test("permission filter applies inside committed transactions (final tree decides)", () => {
  const core = testCore();
  const a = dom0(core);
  const g = guest(core, 5);
  g.watch("/t", "t");
  const tx = a.startTx();
  a.write("/t/open", "1", tx);
  a.ok(MsgType.SET_PERMS, ["/t/open", "n0", "r5"], tx);
  a.write("/t/closed", "1", tx);
  a.endTx(tx);
  assert.deepEqual(g.events(), ["/t/open t"]);
});

// ---------------------------------------------------------------- quotas

Deno.test("watch quota: maxWatches for unprivileged, maxWatchesPrivileged for privileged", () => {
  const core = testCore({ limits: { ...DEFAULT_CONNECTION_LIMITS, maxWatches: 3, maxWatchesPrivileged: 5 } });
  const a = dom0(core);
  const g = guest(core, 5);
  for (let i = 0; i < 3; i++) g.watch(`/g${i}`, "t");
  assert.equal(g.err(MsgType.WATCH, ["/g3", "t"]), "E2BIG");
  assert.equal(g.err(MsgType.WATCH, ["/g0", "t"]), "EEXIST", "a duplicate is EEXIST even at the quota");
  assert.deepEqual(g.events(), []);
  g.unwatch("/g0", "t");
  g.watch("/g3", "t");
  for (let i = 0; i < 5; i++) a.watch(`/a${i}`, "t");
  assert.equal(a.err(MsgType.WATCH, ["/a5", "t"]), "E2BIG");
  assert.equal(core.watches.countOwner(g.id), 3);
  assert.equal(core.watches.countOwner(a.id), 5);
  // RESET_WATCHES gives the whole quota back.
  g.ok(MsgType.RESET_WATCHES, []);
  for (let i = 0; i < 3; i++) g.watch(`/h${i}`, "t");
});

Deno.test("default limits: unprivileged 128 watches", () => {
  const core = testCore();
  const g = guest(core, 5);
  for (let i = 0; i < core.limits.maxWatches; i++) g.watch(`/w/${i}`, "t");
  assert.equal(g.err(MsgType.WATCH, ["/w/x", "t"]), "E2BIG");
  assert.ok(core.limits.maxWatchesPrivileged > core.limits.maxWatches);
});

// ---------------------------------------------------------------- cleanup

Deno.test("close and RESET_WATCHES remove every watch of the connection; the trie shrinks back", () => {
  const core = testCore();
  const a = dom0(core);
  const b = dom0(core, "b");
  const trie = core.watches.trie;
  assert.equal(trie.nodeCount(), 1);
  for (let i = 0; i < 20; i++) {
    a.watch(`/x/${i}/deep/path`, `t${i}`, i % 3 === 0 ? 1 : undefined);
    b.watch(`/y/${i}`, "t");
  }
  a.watch("@releaseDomain/3", "s");
  a.watch("rel/ative", "r");
  assert.equal(trie.size, 42);
  const peak = trie.nodeCount();
  assert.ok(peak > 40);

  a.ok(MsgType.RESET_WATCHES, []);
  assert.equal(trie.size, 20);
  assert.equal(core.watches.countOwner(a.id), 0);
  a.write("/x/1/deep/path");
  core.watches.fireSpecial("@releaseDomain", 3);
  assert.deepEqual(a.events(), []);
  a.watch("/x/1", "again"); // still usable after the reset
  assert.deepEqual(a.events(), []);

  b.close();
  a.close();
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount(), 1);
  assert.equal(core.clients.size, 0);
  // Nothing is delivered to closed connections, nothing breaks.
  const c = dom0(core, "c");
  c.write("/y/1");
  assert.deepEqual(c.events(), []);
});

Deno.test("a connection that goes away mid-commit is skipped; the others still get their events", () => {
  const core = testCore();
  const a = dom0(core);
  const b = dom0(core, "b");
  a.watch("/m", "a");
  b.watch("/m", "b");
  a.sink.open = false; // transport gone but close() not yet called: deliver reports failure
  b.write("/m");
  assert.deepEqual(b.events(), ["/m b"]);
  assert.equal(core.watches.stats.undelivered, 1);
  a.close();
  assert.equal(core.watches.trie.size, 1);
});

// ---------------------------------------------------------------- transactions

Deno.test("transactions: events only on commit, once per changed path", () => {
  const core = testCore();
  const a = dom0(core);
  const w = dom0(core, "watcher");
  w.watch("/t", "t");
  w.watch("/t/a", "a");
  const tx = a.startTx();
  a.write("/t/a", "1", tx);
  a.write("/t/a", "2", tx);
  a.write("/t/a", "3", tx);
  a.write("/t/b", "1", tx);
  a.ok(MsgType.SET_PERMS, ["/t/b", "n0", "r1"], tx);
  assert.deepEqual(w.events(), [], "nothing before the commit");
  a.endTx(tx);
  assert.deepEqual(w.sortedEvents(), ["/t/a a", "/t/a t", "/t/b t"]);

  const tx2 = a.startTx();
  a.write("/t/c", "1", tx2);
  a.rm("/t/a", tx2);
  a.endTx(tx2, false); // aborted: nothing
  assert.deepEqual(w.events(), []);
});

Deno.test("transactions: write then remove in one commit still reports the removal", () => {
  const core = testCore();
  const a = dom0(core);
  a.write("/t/x/y", "1");
  const w = dom0(core, "watcher");
  w.watch("/t", "t");
  w.watch("/t/x/y", "y");
  w.watch("/t/x/new", "new");
  const tx = a.startTx();
  a.write("/t/x/y", "2", tx);
  a.write("/t/x/new", "2", tx);
  a.rm("/t/x", tx);
  a.endTx(tx);
  // /t/x/new never existed outside the transaction: no event for it; /t/x/y's watcher learns the removal.
  assert.deepEqual(w.sortedEvents(), ["/t/x t", "/t/x/y y"]);
});

Deno.test("transactions: a conflicting commit (EAGAIN) fires nothing", () => {
  const core = testCore();
  const a = dom0(core);
  const w = dom0(core, "watcher");
  a.write("/c", "0");
  w.watch("/c", "t");
  const tx = a.startTx();
  a.ok(MsgType.READ, ["/c"], tx);
  a.write("/c/k", "1", tx);
  a.write("/c", "outside");
  assert.deepEqual(w.events(), ["/c t"]);
  assert.equal(a.err(MsgType.TRANSACTION_END, ["T"], tx), "EAGAIN");
  assert.deepEqual(w.events(), []);
});

Deno.test("many watchers, one change: every match delivered exactly once", () => {
  const core = testCore();
  const a = dom0(core);
  const conns = Array.from({ length: 10 }, (_, i) => dom0(core, `c${i}`));
  conns.forEach((c, i) => {
    c.watch("/f", "f");
    c.watch("/f/g", "g");
    if (i % 2 === 0) c.watch("/f/g/h", "h", 0);
    c.watch("/unrelated", "u");
  });
  a.write("/f/g/h", "1");
  conns.forEach((c, i) => {
    assert.deepEqual(
      c.sortedEvents(),
      i % 2 === 0 ? ["/f/g/h f", "/f/g/h g", "/f/g/h h"] : [
        "/f/g/h f",
        "/f/g/h g",
      ],
    );
  });
});
