// dxenstored's own stream records (src/live_update/dx_records.ts): DX_QUOTAS and DX_FEATURES round-trip
// through the stream writer and reader, and a body that is not what we write is refused with a clear
// error (DX_POLICY: dx_policy_test.ts).
import assert from "../helpers/assert.ts";
import {
  featureRecord,
  quotaRecord,
  readFeatureRecord,
  readQuotaRecord,
} from "../../src/live_update/dx_records.ts";
import { DX_FEATURES, DX_QUOTAS } from "../../src/migration/format.ts";
import { DOMAIN_FEATURES, FEATURE_ERROR, FEATURE_RECONNECTION } from "../../src/protocol/wire.ts";
import { readStream } from "../../src/migration/reader.ts";
import { writeStream } from "../../src/migration/writer.ts";
import { QuotaSettings } from "../../src/quota/settings.ts";

Deno.test("DX_QUOTAS: values set at run time go through a stream and back", () => {
  const s = new QuotaSettings();
  assert.equal(quotaRecord(s.runtime()), null, "nothing set: no record");
  s.setGlobal("nodes", 1234);
  s.setOverride(5, "node-size", 3000);
  const rec = quotaRecord(s.runtime())!;
  const back = readStream(writeStream({ version: 1, records: [rec] })).records[0];
  assert.ok(back.type === "opaque" && back.code === DX_QUOTAS);
  const t = new QuotaSettings();
  assert.deepEqual(t.restoreRuntime(readQuotaRecord(back as typeof rec)), []);
  assert.equal(t.global("nodes"), 1234);
  assert.equal(t.value(5, "node-size"), 3000);
  assert.equal(t.value(6, "node-size"), s.global("node-size"));
});

Deno.test("DX_QUOTAS: bodies that are not ours are refused; unknown names are reported", () => {
  const rec = (text: string) => ({
    type: "opaque" as const,
    code: DX_QUOTAS,
    body: new TextEncoder().encode(text),
  });
  for (
    const bad of [
      "{",
      "[]",
      '{"global":{"nodes":-1},"domains":{}}',
      '{"global":{},"domains":{"x":{}}}',
      '{"global":{},"domains":{"99999":{}}}',
      '{"global":{"nodes":1.5},"domains":{}}',
    ]
  ) {
    assert.throws(() => readQuotaRecord(rec(bad)), Error, undefined, bad);
  }
  const problems = new QuotaSettings().restoreRuntime(
    readQuotaRecord(rec('{"global":{"bogus":1},"domains":{"3":{"nodes":5}}}  ')),
  );
  assert.equal(problems.length, 1);
  assert.ok(problems[0].startsWith("quota bogus=1"), problems[0]);
});

Deno.test("DX_FEATURES: restricted domains and pending values go through a stream and back", () => {
  assert.equal(featureRecord([[5, DOMAIN_FEATURES]], []), null, "nothing restricted: no record");
  const rec = featureRecord(
    [[5, FEATURE_RECONNECTION], [6, DOMAIN_FEATURES]],
    [[9, { features: FEATURE_ERROR, uniqueId: "uid-9" }]],
  )!;
  const back = readStream(writeStream({ version: 1, records: [rec] })).records[0];
  assert.ok(back.type === "opaque" && back.code === DX_FEATURES);
  const f = readFeatureRecord(back as typeof rec);
  assert.deepEqual([...f.domains], [[5, FEATURE_RECONNECTION]], "only restrictions are carried");
  assert.deepEqual([...f.pending], [[9, { features: FEATURE_ERROR, uniqueId: "uid-9" }]]);
});

Deno.test("DX_FEATURES: bodies that are not ours are refused", () => {
  const rec = (text: string) => ({
    type: "opaque" as const,
    code: DX_FEATURES,
    body: new TextEncoder().encode(text),
  });
  for (
    const bad of [
      "{",
      '{"domains":{}}',
      '{"domains":{"5":8},"pending":{}}', // a bit we do not support
      '{"domains":{"5":-1},"pending":{}}',
      '{"domains":{"0":1},"pending":{}}', // dom0's are fixed
      '{"domains":{"x":1},"pending":{}}',
      '{"domains":{},"pending":{"7":{"features":1}}}', // no incarnation
      '{"domains":{"7":1},"pending":{"7":{"features":1,"uniqueId":"u"}}}', // both
      '{"domains":{},"pending":{"99999":{"features":1,"uniqueId":"u"}}}',
    ]
  ) {
    assert.throws(() => readFeatureRecord(rec(bad)), Error, undefined, bad);
  }
});
