// The O_DIRECT|O_DSYNC appender (src/backend/direct_log.ts): after every append the file holds
// exactly the bytes appended so far, followed only by zeros up to the block the write reached, and
// bytes written before (by anyone) are never changed — whatever the sizes and block boundaries.
import { DirectAppender, DirectWriteError } from "../../src/backend/direct_log.ts";
import { AioContext } from "../../ffi/aio.ts";
import * as libc from "../../ffi/libc.ts";
import assert from "../helpers/assert.ts";
import { aioWorks, directIoWorks, rng } from "./harness.ts";

const ignore = !directIoWorks(); // tmpfs and some overlay file systems refuse O_DIRECT (the backend then uses fdatasync)

for (const seed of [1, 42, 4242]) {
  Deno.test({
    name: `direct appender: random appends across block boundaries keep the file exact (seed ${seed})`,
    ignore,
    fn: () => {
      const next = rng(seed);
      const dir = Deno.makeTempDirSync({ prefix: "dxs-direct-" });
      try {
        const path = `${dir}/log`;
        // Existing content of an unaligned length, written the ordinary way.
        const head = Uint8Array.from(
          { length: 1000 + Math.floor(next() * 5000) },
          () => 1 + Math.floor(next() * 255),
        );
        Deno.writeFileSync(path, head);
        const d = DirectAppender.open(path)!;
        const start = DirectAppender.tailStart(head.length);
        d.reset(head.length, head.subarray(start));
        const expected: number[] = [...head];
        for (let round = 0; round < 60; round++) {
          const frames: Uint8Array[] = [];
          let bytes = 0;
          const count = 1 + Math.floor(next() * 6);
          for (let i = 0; i < count; i++) {
            // Mostly small records, sometimes one larger than a block.
            const len = next() < 0.1 ? 4096 + Math.floor(next() * 9000) : 1 + Math.floor(next() * 300);
            const f = Uint8Array.from({ length: len }, () => 1 + Math.floor(next() * 255));
            frames.push(f);
            bytes += len;
            expected.push(...f);
          }
          const reached = d.append(frames, bytes);
          assert.equal(reached % 4096, 0, "writes end on a block boundary");
          const file = Deno.readFileSync(path);
          assert.ok(reached >= expected.length && reached - expected.length < 4096, `reached ${reached}`);
          assert.ok(file.length >= reached, "the file covers the write");
          for (let i = 0; i < expected.length; i++) {
            if (file[i] !== expected[i]) {
              assert.fail(`round ${round}: byte ${i} is ${file[i]}, want ${expected[i]}`);
            }
          }
          for (let i = expected.length; i < reached; i++) {
            if (file[i] !== 0) assert.fail(`round ${round}: padding byte ${i} is ${file[i]}`);
          }
        }
        d.close();
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "direct appender: reset refuses a tail that does not match the size",
  ignore,
  fn: () => {
    const dir = Deno.makeTempDirSync({ prefix: "dxs-direct-" });
    try {
      Deno.writeFileSync(`${dir}/log`, new Uint8Array(5000));
      const d = DirectAppender.open(`${dir}/log`)!;
      assert.throws(() => d.reset(5000, new Uint8Array(10)));
      d.close();
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "direct appender through AIO: submitted writes keep the file exact; short and failed completions",
  ignore: ignore || !aioWorks(),
  fn: () => {
    const next = rng(7);
    const dir = Deno.makeTempDirSync({ prefix: "dxs-direct-" });
    const ctx = AioContext.create(4);
    const efd = libc.eventfd();
    try {
      const path = `${dir}/log`;
      const head = Uint8Array.from({ length: 3000 }, () => 1 + Math.floor(next() * 255));
      Deno.writeFileSync(path, head);
      const d = DirectAppender.open(path)!;
      d.reset(head.length, head.subarray(DirectAppender.tailStart(head.length)));
      const expected: number[] = [...head];
      for (let round = 0; round < 40; round++) {
        const len = 1 + Math.floor(next() * 3000);
        const f = Uint8Array.from({ length: len }, () => 1 + Math.floor(next() * 255));
        d.submit(ctx, efd, [f], len);
        assert.equal(d.busy, true);
        assert.throws(() => d.submit(ctx, efd, [f], len), Error, (e) => /in flight/.test(e.message));
        const [c] = ctx.collect(true);
        assert.ok(c.res > 0 && c.res % 4096 === 0, `completion ${c.res}`);
        // Every third round pretend the kernel wrote only the first 512 bytes: complete() writes
        // the rest itself (the same bytes again), and the file must be just as exact.
        const reached = d.complete(round % 3 === 2 ? 512 : c.res);
        assert.equal(d.busy, false);
        expected.push(...f);
        const file = Deno.readFileSync(path);
        assert.ok(reached >= expected.length && reached - expected.length < 4096, `reached ${reached}`);
        for (let i = 0; i < expected.length; i++) {
          if (file[i] !== expected[i]) {
            assert.fail(`round ${round}: byte ${i} is ${file[i]}, want ${expected[i]}`);
          }
        }
        for (let i = expected.length; i < reached; i++) {
          if (file[i] !== 0) assert.fail(`round ${round}: padding byte ${i} is ${file[i]}`);
        }
      }
      d.submit(ctx, efd, [new Uint8Array([1])], 1);
      ctx.collect(true);
      const e = assert.throws(() => d.complete(-libc.EIO), DirectWriteError);
      assert.equal((e as DirectWriteError).errno, libc.EIO);
      assert.equal(d.busy, false, "a failed write is over (the appender then needs reset)");
      d.close();
    } finally {
      ctx.destroy();
      libc.close(efd);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
