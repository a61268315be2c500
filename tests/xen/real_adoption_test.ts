// Live update under real Xen, without Xen: the checks the new program makes of each inherited event
// channel before serving its ring (src/xen/real/adoption.ts) — Xen's EVTCHNOP_status answer decoded,
// and every answer that does not prove the stream right refused with a clear error.
import assert from "../helpers/assert.ts";
import { adoptedRemotePort, statusRequest } from "../../src/xen/real/adoption.ts";
import { EVTCHNSTAT_interdomain, EvtchnStatus } from "../../ffi/xen_abi.ts";
import { DOMID_SELF } from "../../src/xen/platform.ts";
import { XsError } from "../../src/common/xs_error.ts";

/** Xen's answer: `req` filled in as the hypervisor does for a port in `status`. */
function answer(req: Uint8Array, status: number, peer = 0, peerPort = 0): Uint8Array {
  const dv = new DataView(req.buffer);
  dv.setUint32(EvtchnStatus.status, status, true);
  dv.setUint16(EvtchnStatus.interdomainDom, peer, true);
  dv.setUint32(EvtchnStatus.interdomainPort, peerPort, true);
  return req;
}

Deno.test("real Xen adoption: the request asks about our own port", () => {
  const req = statusRequest(37);
  const dv = new DataView(req.buffer);
  assert.equal(req.length, EvtchnStatus.size);
  assert.equal(dv.getUint16(EvtchnStatus.dom, true), DOMID_SELF);
  assert.equal(dv.getUint32(EvtchnStatus.port, true), 37);
});

Deno.test("real Xen adoption: a port connected to the domain gives the domain's port", () => {
  assert.equal(adoptedRemotePort(5, 37, answer(statusRequest(37), EVTCHNSTAT_interdomain, 5, 1)), 1);
  // dom0's own ring: a channel between dom0's kernel and us (both domain 0).
  assert.equal(adoptedRemotePort(0, 4, answer(statusRequest(4), EVTCHNSTAT_interdomain, 0, 3)), 3);
});

const e2s = (re: RegExp) => `refused with ${re}`;

Deno.test("real Xen adoption: anything else is refused with the reason, never adopted", () => {
  const refused = (domid: number, port: number, st: Uint8Array | null, re: RegExp) =>
    assert.throws(() => adoptedRemotePort(domid, port, st), XsError, (e) => re.test(e.message), e2s(re));
  refused(5, 37, null, /Xen does not know port 37/);
  refused(5, 0, answer(statusRequest(0), EVTCHNSTAT_interdomain, 5, 1), /not a bound port/);
  // The descriptor was not the one the stream meant (closed, or the guest's end reset meanwhile).
  refused(5, 37, answer(statusRequest(37), 0), /port 37 is closed, not connected to domain 5/);
  refused(5, 37, answer(statusRequest(37), 1, 5), /port 37 is unbound/);
  refused(5, 37, answer(statusRequest(37), 4), /port 37 is virq/);
  refused(5, 37, answer(statusRequest(37), 9), /in state 9/);
  // Connected, but to another domain: a stream that does not match the hypervisor.
  refused(5, 37, answer(statusRequest(37), EVTCHNSTAT_interdomain, 6, 1), /connected to domain 6, not 5/);
});
