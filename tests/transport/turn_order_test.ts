// The server loop's turn end, in order: work that stores records (onBeforeOutput: a guest's new watch
// in its domain record) runs before the group commit gate tags the turn's output, and output hooks
// (onTurnEnd: ring writes) run after it — so no reply can be tagged before the record it depends on.
import assert from "../helpers/assert.ts";
import { testCore } from "../helpers/core.ts";
import { EventLoop } from "../../src/transport/loop.ts";
import { SocketServer } from "../../src/transport/socket_server.ts";
import { WireClient, XS } from "../helpers/wire.ts";

Deno.test("server turn: before-output hooks, then the gate's tag, then turn-end hooks", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-turn-" });
  const core = testCore();
  const order: string[] = [];
  const loop = new EventLoop({
    gate: {
      turnEnd: () => {
        order.push("gate");
        return 0;
      },
      durable: () => 0,
      gathering: false,
    },
  });
  const server = new SocketServer(loop, core, { path: `${dir}/sock` });
  loop.onBeforeOutput(() => order.push("before"));
  loop.onTurnEnd(() => order.push("end"));
  server.listen();
  const running = loop.run();
  try {
    const c = await WireClient.connect(`${dir}/sock`);
    assert.equal((await c.request(XS.WRITE, "/a\0x")).type, XS.WRITE);
    c.close();
    assert.ok(order.length >= 3);
    for (let i = 0; i + 3 <= order.length; i += 3) {
      assert.deepEqual(order.slice(i, i + 3), ["before", "gate", "end"], `turn ${i / 3}`);
    }
  } finally {
    loop.stop();
    await running;
    loop.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
