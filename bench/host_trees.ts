// What a host's toolstack writes for each guest (libxl's usual tree: device, console, memory and
// control nodes), for the guest and memory benchmarks.
import type { SimDomain } from "../src/xen/sim/control.ts";
import type { SocketClient } from "./socket_client.ts";

/** What libxl writes for a PV guest with one disk and one NIC (abridged, as [path, value]). */
export function deviceTree(domid: number): Array<[string, string]> {
  const d = `/local/domain/${domid}`;
  const be = `/local/domain/0/backend`;
  const uuid = `00000000-0000-0000-0000-${String(domid).padStart(12, "0")}`;
  return [
    [`${d}/vm`, `/vm/${uuid}`],
    [`${d}/name`, `guest${domid}`],
    [`${d}/domid`, String(domid)],
    [`${d}/cpu/0/availability`, "online"],
    [`${d}/memory/static-max`, "524288"],
    [`${d}/memory/target`, "524288"],
    [`${d}/memory/videoram`, "-1"],
    [`${d}/control/shutdown`, ""],
    [`${d}/control/feature-poweroff`, "1"],
    [`${d}/control/feature-reboot`, "1"],
    [`${d}/control/feature-suspend`, "1"],
    [`${d}/store/port`, "1"],
    [`${d}/store/ring-ref`, "4278173696"],
    [`${d}/console/port`, "2"],
    [`${d}/console/ring-ref`, "4278173695"],
    [`${d}/console/limit`, "1048576"],
    [`${d}/console/type`, "xenconsoled"],
    [`${d}/device/vbd/51712/backend`, `${be}/vbd/${domid}/51712`],
    [`${d}/device/vbd/51712/backend-id`, "0"],
    [`${d}/device/vbd/51712/state`, "1"],
    [`${d}/device/vbd/51712/virtual-device`, "51712"],
    [`${d}/device/vbd/51712/device-type`, "disk"],
    [`${d}/device/vif/0/backend`, `${be}/vif/${domid}/0`],
    [`${d}/device/vif/0/backend-id`, "0"],
    [`${d}/device/vif/0/state`, "1"],
    [`${d}/device/vif/0/handle`, "0"],
    [
      `${d}/device/vif/0/mac`,
      `00:16:3e:00:${(domid >> 8).toString(16).padStart(2, "0")}:${
        (domid & 255).toString(16).padStart(2, "0")
      }`,
    ],
    [`${be}/vbd/${domid}/51712/frontend`, `${d}/device/vbd/51712`],
    [`${be}/vbd/${domid}/51712/frontend-id`, String(domid)],
    [`${be}/vbd/${domid}/51712/online`, "1"],
    [`${be}/vbd/${domid}/51712/state`, "1"],
    [`${be}/vbd/${domid}/51712/params`, `/var/lib/xen/images/guest${domid}.img`],
    [`${be}/vbd/${domid}/51712/type`, "phy"],
    [`${be}/vbd/${domid}/51712/mode`, "w"],
    [`${be}/vif/${domid}/0/frontend`, `${d}/device/vif/0`],
    [`${be}/vif/${domid}/0/frontend-id`, String(domid)],
    [`${be}/vif/${domid}/0/online`, "1"],
    [`${be}/vif/${domid}/0/state`, "1"],
    [`${be}/vif/${domid}/0/script`, "/etc/xen/scripts/vif-bridge"],
    [`${be}/vif/${domid}/0/mac`, "00:16:3e:00:00:01"],
    [`/vm/${uuid}/name`, `guest${domid}`],
    [`/vm/${uuid}/uuid`, uuid],
    [`/vm/${uuid}/start_time`, "1700000000.00"],
  ];
}

/**
 * The toolstack writes a domain's tree as libxl does: one transaction writing its nodes and
 * permissions. Sequential round trips, not pipelined. `guestOwns`: the guest owns its device and
 * data directories, as libxl sets them; false gives them to dom0 with a read-write entry for the
 * guest instead (cxenstored refuses an owner that is no running domain, and the anchors have none).
 */
export function writeGuestTree(s: SocketClient, domid: number, guestOwns = true): void {
  const home = `/local/domain/${domid}`;
  const own = guestOwns ? `n${domid}\0r0\0` : `n0\0b${domid}\0`;
  for (;;) {
    const tx = Number(s.call(6, "\0").replace("\0", ""));
    s.call(12, `${home}\0`, tx);
    s.call(14, `${home}\0n0\0r${domid}\0`, tx);
    for (const [p, v] of deviceTree(domid)) s.call(11, `${p}\0${v}`, tx);
    s.call(14, `${home}/device\0${own}`, tx);
    s.call(14, `${home}/control\0n0\0r${domid}\0`, tx);
    s.call(14, `${home}/control/shutdown\0n0\0b${domid}\0`, tx);
    s.call(12, `${home}/data\0`, tx);
    s.call(14, `${home}/data\0${own}`, tx);
    s.send(7, "T\0", tx);
    const [t, p] = s.recv();
    if (t === 7) return;
    if (p !== "EAGAIN\0") throw new Error(`transaction: ${p}`);
  }
}

/** The watches a guest registers on its own tree (relative paths, over its ring). */
export const GUEST_WATCHES = ["device/vbd", "device/vif", "control/shutdown", "memory/target", "data"];

/** Remove what writeGuestTree wrote (the toolstack's part of destroying a domain). */
export function removeGuestTree(s: SocketClient, domid: number): void {
  const uuid = `00000000-0000-0000-0000-${String(domid).padStart(12, "0")}`;
  for (
    const p of [
      `/local/domain/${domid}`,
      `/local/domain/0/backend/vbd/${domid}`,
      `/local/domain/0/backend/vif/${domid}`,
      `/vm/${uuid}`,
    ]
  ) {
    s.call(13, `${p}\0`);
  }
}

/** writeGuestTree, then INTRODUCE (simulated Xen). Returns the elapsed milliseconds. */
export function toolstackCreate(s: SocketClient, d: SimDomain): number {
  const t0 = performance.now();
  writeGuestTree(s, d.domid);
  s.call(8, `${d.domid}\0${d.gfn}\0${d.port}\0`);
  return performance.now() - t0;
}
