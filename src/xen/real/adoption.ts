// Live update under real Xen, the new program's side of one ring's event channel (docs/live-update.md).
// The previous program (dxenstored or cxenstored) bound the channel on /dev/xen/evtchn and left that
// descriptor open across the exec: the Linux driver keeps a binding per open file, so the binding — our
// local port — is still there, and binding again would fail (the guest's port is connected already).
// The stream names only the local port; the domain's end (which dxenstored keeps for restarts and
// re-INTRODUCE) comes from Xen itself: EVTCHNOP_status of our port, which also proves the stream
// right — the port must be connected to that very domain. Pure functions over the struct, so the
// checks are tested without Xen (tests/xen/real/adoption_test.ts); RealPlatform issues the call.
import { XsError } from "../../common/xs_error.ts";
import { EVTCHNSTAT_interdomain, EvtchnStatus } from "../../../ffi/xen_abi.ts";
import { DOMID_SELF } from "../platform.ts";

/** struct evtchn_status asking about our own port `localPort`. */
export function statusRequest(localPort: number): Uint8Array {
  const b = new Uint8Array(new ArrayBuffer(EvtchnStatus.size));
  const dv = new DataView(b.buffer);
  dv.setUint16(EvtchnStatus.dom, DOMID_SELF, true);
  dv.setUint32(EvtchnStatus.port, localPort, true);
  return b;
}

const STATUS_NAMES = ["closed", "unbound", "interdomain", "pirq", "virq", "ipi"];

/**
 * The domain's port at the other end of inherited `localPort`, given Xen's answer to statusRequest
 * (null: the hypercall failed). Throws an XsError saying why the channel cannot be adopted.
 */
export function adoptedRemotePort(domid: number, localPort: number, status: Uint8Array | null): number {
  if (!Number.isInteger(localPort) || localPort <= 0) {
    throw new XsError("EINVAL", `local port ${localPort} is not a bound port`);
  }
  if (status === null) {
    throw new XsError("ENOENT", `Xen does not know port ${localPort} (EVTCHNOP_status failed)`);
  }
  const dv = new DataView(status.buffer, status.byteOffset, status.byteLength);
  const st = dv.getUint32(EvtchnStatus.status, true);
  if (st !== EVTCHNSTAT_interdomain) {
    throw new XsError(
      "EINVAL",
      `port ${localPort} is ${STATUS_NAMES[st] ?? `in state ${st}`}, not connected to domain ${domid}`,
    );
  }
  const peer = dv.getUint16(EvtchnStatus.interdomainDom, true);
  if (peer !== domid) {
    throw new XsError("EINVAL", `port ${localPort} is connected to domain ${peer}, not ${domid}`);
  }
  return dv.getUint32(EvtchnStatus.interdomainPort, true);
}
