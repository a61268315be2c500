// strict-protocol: the specification's recommendations as rules, in-process (every rule, both ways)
// and end to end through the daemon (`--policy legacy,strict-protocol`, raw wire client).
import assert from "../helpers/assert.ts";
import { dom0, err, ok, testCore } from "../helpers/core.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { errnoOf, WireClient, XS } from "../helpers/wire.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";
import { chainOf } from "./helpers.ts";

function setup() {
  const core = testCore({ policy: chainOf(["legacy", "strict-protocol"]) });
  const d0 = dom0(core);
  ok(core, d0, T.WRITE, "/local/domain/0/x\0v");
  return { core, d0 };
}

Deno.test("strict-protocol: values are 7-bit printable ASCII without a trailing NUL", () => {
  const { core, d0 } = setup();
  ok(core, d0, T.WRITE, "/a\0hello world ~!");
  ok(core, d0, T.WRITE, "/a\0"); // empty value
  err(core, d0, T.WRITE, "/a\0hello\0", "EINVAL"); // trailing NUL
  err(core, d0, T.WRITE, "/a\0tab\there", "EINVAL");
  err(core, d0, T.WRITE, "/a\0caf\xe9", "EINVAL"); // 8-bit
  err(core, d0, T.WRITE, "/a\0del\x7f", "EINVAL");
  // Without the plugin the same values are accepted (the rule is the plugin's, not the mechanism's).
  const plain = testCore();
  ok(plain, dom0(plain), T.WRITE, "/a\0hello\0");
});

Deno.test("strict-protocol: @ only as a special path of WATCH/UNWATCH/GET_PERMS/SET_PERMS", () => {
  const { core, d0 } = setup();
  // WATCH answers OK, then fires the registration event.
  core.message(d0.client, { type: T.WATCH, reqId: 1, txId: 0, payload: "@releaseDomain\0tok\0" });
  assert.equal(d0.sink.sent.at(-2)?.type, T.WATCH);
  ok(core, d0, T.UNWATCH, "@releaseDomain\0tok\0");
  ok(core, d0, T.GET_PERMS, "@introduceDomain\0");
  err(core, d0, T.WRITE, "/a@b\0v", "EINVAL");
  err(core, d0, T.READ, "@releaseDomain\0", "EINVAL");
  err(core, d0, T.WATCH, "/a/@b\0tok\0", "EINVAL");
  err(core, d0, T.MKDIR, "/x@\0", "EINVAL");
});

Deno.test("strict-protocol: path syntax and length limits (relative 2048, absolute 3072)", () => {
  const { core, d0 } = setup();
  ok(core, d0, T.WRITE, `${"r".repeat(2048 - 4)}/abc\0v`); // relative, exactly 2048
  err(core, d0, T.WRITE, `${"r".repeat(2049)}\0v`, "EINVAL");
  err(core, d0, T.WRITE, "/a b\0v", "EINVAL");
  err(core, d0, T.WRITE, "/a/\0v", "EINVAL");
  err(core, d0, T.READ, "/a//b\0", "EINVAL");
  ok(core, d0, T.DIRECTORY, "/\0");
});

Deno.test("strict-protocol: arguments exactly NUL-terminated; plain decimal domids", () => {
  const { core, d0 } = setup();
  err(core, d0, T.READ, "/local/domain/0/x\0\0", "EINVAL"); // extra NUL
  err(core, d0, T.READ, "/local/domain/0/x", "EINVAL"); // no NUL
  assert.equal(ok(core, d0, T.READ, "/local/domain/0/x\0"), "v");
  assert.equal(ok(core, d0, T.GET_DOMAIN_PATH, "7\0"), "/local/domain/7\0");
  err(core, d0, T.GET_DOMAIN_PATH, "07\0", "EINVAL");
  err(core, d0, T.GET_DOMAIN_PATH, "+7\0", "EINVAL");
  err(core, d0, T.GET_DOMAIN_PATH, "0x7\0", "EINVAL");
  err(core, d0, T.GET_DOMAIN_PATH, "65536\0", "EINVAL");
});

Deno.test("strict-protocol: RELEASE and RESUME are refused (ENOSYS), for dom0 too", () => {
  const { core, d0 } = setup();
  err(core, d0, T.RELEASE, "5\0", "ENOSYS");
  err(core, d0, T.RESUME, "5\0", "ENOSYS");
});

Deno.test("strict-protocol end to end: the daemon with --policy legacy,strict-protocol", async () => {
  await using d = await startDaemon({ args: ["--policy", "legacy,strict-protocol"] });
  const c = await WireClient.connect(d.socket);
  try {
    assert.equal(errnoOf(await c.request(XS.WRITE, "/t/a\0ok value")), null);
    assert.equal(errnoOf(await c.request(XS.WRITE, "/t/a\0bin\x01")), "EINVAL");
    assert.equal(errnoOf(await c.request(XS.WRITE, "/t/a\0v\0")), "EINVAL");
    assert.equal(errnoOf(await c.request(XS.READ, "/t/@a\0")), "EINVAL");
    assert.equal(errnoOf(await c.request(XS.RELEASE, "3\0")), "ENOSYS");
    assert.equal((await c.request(XS.READ, "/t/a\0")).payload, "ok value");
  } finally {
    c.close();
  }
});
