// The Xen ABI without Xen: compile ffi/xen_abi.c against the installed headers (Debian's libxen-dev),
// run it, and compare every struct size, field offset, ioctl number and constant it prints with the
// TypeScript definitions the real and simulated platforms use. Both directions: a value the C
// program prints that TypeScript does not define (or the reverse) fails the test too.
import assert from "../helpers/assert.ts";
import * as abi from "../../ffi/xen_abi.ts";
import * as libc from "../../ffi/libc.ts";
import * as aio from "../../ffi/aio.ts";
import * as ring from "../../src/xen/ring.ts";
import * as wire from "../../src/protocol/wire.ts";
import { DOMID_FIRST_RESERVED, DOMID_SELF, VIRQ_DOM_EXC } from "../../src/xen/platform.ts";
import { RealPlatform } from "../../src/xen/real/platform.ts";
import { XenCtrl } from "../../ffi/xenctrl.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const XDI = "struct xenstore_domain_interface";
const field = (f: ring.Field) => ring.FIELDS_OFFSET + 4 * f;

/** What the TypeScript side says, under the names ffi/xen_abi.c prints. */
const TS: Record<string, number> = {
  [`sizeof.${XDI}`]: ring.INTERFACE_SIZE,
  [`offset.${XDI}.req`]: ring.REQ_OFFSET,
  [`offset.${XDI}.rsp`]: ring.RSP_OFFSET,
  [`offset.${XDI}.req_cons`]: field(ring.Field.REQ_CONS),
  [`offset.${XDI}.req_prod`]: field(ring.Field.REQ_PROD),
  [`offset.${XDI}.rsp_cons`]: field(ring.Field.RSP_CONS),
  [`offset.${XDI}.rsp_prod`]: field(ring.Field.RSP_PROD),
  [`offset.${XDI}.server_features`]: field(ring.Field.SERVER_FEATURES),
  [`offset.${XDI}.connection`]: field(ring.Field.CONNECTION),
  [`offset.${XDI}.error`]: field(ring.Field.ERROR),
  XENSTORE_RING_SIZE: ring.RING_SIZE,
  XENSTORE_PAYLOAD_MAX: wire.PAYLOAD_MAX,
  XENSTORE_SERVER_FEATURE_RECONNECTION: wire.FEATURE_RECONNECTION,
  XENSTORE_SERVER_FEATURE_ERROR: wire.FEATURE_ERROR,
  XENSTORE_CONNECTED: ring.CONNECTED,
  XENSTORE_RECONNECT: ring.RECONNECT,
  XENSTORE_ERROR_NONE: ring.ERROR_NONE,
  XENSTORE_ERROR_COMM: ring.ERROR_COMM,
  XENSTORE_ERROR_RINGIDX: ring.ERROR_RINGIDX,
  XENSTORE_ERROR_PROTO: ring.ERROR_PROTO,
  XS_WATCH_EVENT: wire.MsgType.WATCH_EVENT,
  XENSTORE_ABS_PATH_MAX: wire.ABS_PATH_MAX,
  XENSTORE_REL_PATH_MAX: wire.REL_PATH_MAX,
  XS_CONTROL: wire.MsgType.CONTROL,
  XS_DIRECTORY: wire.MsgType.DIRECTORY,
  XS_READ: wire.MsgType.READ,
  XS_GET_PERMS: wire.MsgType.GET_PERMS,
  XS_WATCH: wire.MsgType.WATCH,
  XS_UNWATCH: wire.MsgType.UNWATCH,
  XS_TRANSACTION_START: wire.MsgType.TRANSACTION_START,
  XS_TRANSACTION_END: wire.MsgType.TRANSACTION_END,
  XS_INTRODUCE: wire.MsgType.INTRODUCE,
  XS_RELEASE: wire.MsgType.RELEASE,
  XS_GET_DOMAIN_PATH: wire.MsgType.GET_DOMAIN_PATH,
  XS_WRITE: wire.MsgType.WRITE,
  XS_MKDIR: wire.MsgType.MKDIR,
  XS_RM: wire.MsgType.RM,
  XS_SET_PERMS: wire.MsgType.SET_PERMS,
  XS_ERROR: wire.MsgType.ERROR,
  XS_IS_DOMAIN_INTRODUCED: wire.MsgType.IS_DOMAIN_INTRODUCED,
  XS_RESUME: wire.MsgType.RESUME,
  XS_SET_TARGET: wire.MsgType.SET_TARGET,
  XS_RESET_WATCHES: wire.MsgType.RESET_WATCHES,
  XS_DIRECTORY_PART: wire.MsgType.DIRECTORY_PART,
  XS_INVALID: wire.MsgType.INVALID,
  "sizeof.struct xsd_sockmsg": wire.HEADER_SIZE,
  "offset.struct xsd_sockmsg.type": 0,
  "offset.struct xsd_sockmsg.req_id": 4,
  "offset.struct xsd_sockmsg.tx_id": 8,
  "offset.struct xsd_sockmsg.len": 12,

  IOCTL_EVTCHN_BIND_VIRQ: abi.IOCTL_EVTCHN_BIND_VIRQ,
  IOCTL_EVTCHN_BIND_INTERDOMAIN: abi.IOCTL_EVTCHN_BIND_INTERDOMAIN,
  IOCTL_EVTCHN_UNBIND: abi.IOCTL_EVTCHN_UNBIND,
  IOCTL_EVTCHN_NOTIFY: abi.IOCTL_EVTCHN_NOTIFY,
  "sizeof.struct ioctl_evtchn_bind_virq": abi.EvtchnBindVirq.size,
  "offset.struct ioctl_evtchn_bind_virq.virq": abi.EvtchnBindVirq.virq,
  "sizeof.struct ioctl_evtchn_bind_interdomain": abi.EvtchnBindInterdomain.size,
  "offset.struct ioctl_evtchn_bind_interdomain.remote_domain": abi.EvtchnBindInterdomain.remote_domain,
  "offset.struct ioctl_evtchn_bind_interdomain.remote_port": abi.EvtchnBindInterdomain.remote_port,
  "sizeof.struct ioctl_evtchn_unbind": abi.EvtchnPortArg.size,
  "offset.struct ioctl_evtchn_unbind.port": abi.EvtchnPortArg.port,
  "sizeof.struct ioctl_evtchn_notify": abi.EvtchnPortArg.size,
  "offset.struct ioctl_evtchn_notify.port": abi.EvtchnPortArg.port,
  "sizeof.evtchn_port_t": abi.EVTCHN_PORT_SIZE,
  VIRQ_DOM_EXC,
  DOMID_FIRST_RESERVED,
  DOMID_SELF,

  IOCTL_GNTDEV_MAP_GRANT_REF: abi.IOCTL_GNTDEV_MAP_GRANT_REF,
  IOCTL_GNTDEV_UNMAP_GRANT_REF: abi.IOCTL_GNTDEV_UNMAP_GRANT_REF,
  "sizeof.struct ioctl_gntdev_grant_ref": abi.GntdevGrantRef.size,
  "offset.struct ioctl_gntdev_grant_ref.domid": abi.GntdevGrantRef.domid,
  "offset.struct ioctl_gntdev_grant_ref.ref": abi.GntdevGrantRef.ref,
  "sizeof.struct ioctl_gntdev_map_grant_ref": abi.GntdevMapGrantRef.size,
  "offset.struct ioctl_gntdev_map_grant_ref.count": abi.GntdevMapGrantRef.count,
  "offset.struct ioctl_gntdev_map_grant_ref.pad": abi.GntdevMapGrantRef.pad,
  "offset.struct ioctl_gntdev_map_grant_ref.index": abi.GntdevMapGrantRef.index,
  "offset.struct ioctl_gntdev_map_grant_ref.refs": abi.GntdevMapGrantRef.refs,
  "sizeof.struct ioctl_gntdev_unmap_grant_ref": abi.GntdevUnmapGrantRef.size,
  "offset.struct ioctl_gntdev_unmap_grant_ref.index": abi.GntdevUnmapGrantRef.index,
  "offset.struct ioctl_gntdev_unmap_grant_ref.count": abi.GntdevUnmapGrantRef.count,
  "offset.struct ioctl_gntdev_unmap_grant_ref.pad": abi.GntdevUnmapGrantRef.pad,
  GNTTAB_RESERVED_XENSTORE: abi.GNTTAB_RESERVED_XENSTORE,

  IOCTL_PRIVCMD_MMAPBATCH_V2: abi.IOCTL_PRIVCMD_MMAPBATCH_V2,
  "sizeof.privcmd_mmapbatch_v2_t": abi.PrivcmdMmapbatchV2.size,
  "offset.privcmd_mmapbatch_v2_t.num": abi.PrivcmdMmapbatchV2.num,
  "offset.privcmd_mmapbatch_v2_t.dom": abi.PrivcmdMmapbatchV2.dom,
  "offset.privcmd_mmapbatch_v2_t.addr": abi.PrivcmdMmapbatchV2.addr,
  "offset.privcmd_mmapbatch_v2_t.arr": abi.PrivcmdMmapbatchV2.arr,
  "offset.privcmd_mmapbatch_v2_t.err": abi.PrivcmdMmapbatchV2.err,
  "sizeof.xen_pfn_t": abi.XEN_PFN_SIZE,
  "sizeof.domid_t": abi.DOMID_SIZE,

  "sizeof.xc_evtchn_status_t": abi.EvtchnStatus.size,
  "offset.xc_evtchn_status_t.dom": abi.EvtchnStatus.dom,
  "offset.xc_evtchn_status_t.port": abi.EvtchnStatus.port,
  "offset.xc_evtchn_status_t.status": abi.EvtchnStatus.status,
  "offset.xc_evtchn_status_t.u.interdomain.dom": abi.EvtchnStatus.interdomainDom,
  "offset.xc_evtchn_status_t.u.interdomain.port": abi.EvtchnStatus.interdomainPort,
  EVTCHNSTAT_interdomain: abi.EVTCHNSTAT_interdomain,
  "sizeof.xc_domaininfo_t": abi.DomainInfo.size,
  "offset.xc_domaininfo_t.domain": abi.DomainInfo.domain,
  "offset.xc_domaininfo_t.flags": abi.DomainInfo.flags,
  "offset.xc_domaininfo_t.handle": abi.DomainInfo.handle,
  "sizeof.xen_domain_handle_t": abi.DomainInfo.handleSize,
  XEN_DOMINF_dying: abi.XEN_DOMINF_dying,
  XEN_DOMINF_shutdown: abi.XEN_DOMINF_shutdown,
  XEN_DOMINF_shutdownshift: abi.XEN_DOMINF_shutdownshift,
  XEN_DOMINF_shutdownmask: abi.XEN_DOMINF_shutdownmask,
  XEN_DOMCTL_INTERFACE_VERSION: abi.XEN_DOMCTL_INTERFACE_VERSION,

  O_RDWR: libc.O_RDWR,
  O_CREAT: libc.O_CREAT,
  O_EXCL: libc.O_EXCL,
  O_NONBLOCK: libc.O_NONBLOCK,
  O_CLOEXEC: libc.O_CLOEXEC,
  PROT_READ: libc.PROT_READ,
  PROT_WRITE: libc.PROT_WRITE,
  MAP_SHARED: libc.MAP_SHARED,
  AF_UNIX: libc.AF_UNIX,
  SOCK_DGRAM: libc.SOCK_DGRAM,
  SOCK_NONBLOCK: libc.SOCK_NONBLOCK,
  SOCK_CLOEXEC: libc.SOCK_CLOEXEC,
  MSG_DONTWAIT: libc.MSG_DONTWAIT,
  POLLIN: libc.POLLIN,
  "sizeof.struct pollfd": libc.PollFd.size,
  "offset.struct pollfd.fd": libc.PollFd.fd,
  "offset.struct pollfd.events": libc.PollFd.events,
  "offset.struct pollfd.revents": libc.PollFd.revents,
  "offset.struct sockaddr_un.sun_family": libc.SockaddrUn.family,
  "offset.struct sockaddr_un.sun_path": libc.SockaddrUn.path,
  "sizeof.sockaddr_un.sun_path": libc.SockaddrUn.pathSize,
  EFD_NONBLOCK: libc.EFD_NONBLOCK,
  EFD_CLOEXEC: libc.EFD_CLOEXEC,
  EAGAIN: libc.EAGAIN,
  ESRCH: libc.ESRCH,
  ECONNREFUSED: libc.ECONNREFUSED,
  ENXIO: libc.ENXIO,
  EPIPE: libc.EPIPE,
  SOCK_STREAM: libc.SOCK_STREAM,
  O_APPEND: libc.O_APPEND,
  LOCK_EX: libc.LOCK_EX,
  LOCK_NB: libc.LOCK_NB,
  MSG_NOSIGNAL: libc.MSG_NOSIGNAL,
  CLOCK_MONOTONIC: libc.CLOCK_MONOTONIC,
  CLOCK_MONOTONIC_COARSE: libc.CLOCK_MONOTONIC_COARSE,
  EPOLLIN: libc.EPOLLIN,
  EPOLLOUT: libc.EPOLLOUT,
  EPOLLERR: libc.EPOLLERR,
  EPOLLHUP: libc.EPOLLHUP,
  EPOLLRDHUP: libc.EPOLLRDHUP,
  EPERM: libc.EPERM,
  ENOENT: libc.ENOENT,
  EINTR: libc.EINTR,
  EIO: libc.EIO,
  ENOMEM: libc.ENOMEM,
  EACCES: libc.EACCES,
  EFAULT: libc.EFAULT,
  EBUSY: libc.EBUSY,
  EEXIST: libc.EEXIST,
  ENODEV: libc.ENODEV,
  ENOTTY: libc.ENOTTY,
  ENOSPC: libc.ENOSPC,
  EDQUOT: libc.EDQUOT,

  O_WRONLY: libc.O_WRONLY,
  O_DSYNC: libc.O_DSYNC,
  O_DIRECT: libc.O_DIRECT,
  EINVAL: libc.EINVAL,
  SYS_io_setup: libc.SysIo.setup,
  SYS_io_destroy: libc.SysIo.destroy,
  SYS_io_getevents: libc.SysIo.getevents,
  SYS_io_submit: libc.SysIo.submit,
  IOCB_CMD_PREAD: aio.IOCB_CMD_PREAD,
  IOCB_CMD_PWRITE: aio.IOCB_CMD_PWRITE,
  IOCB_FLAG_RESFD: aio.IOCB_FLAG_RESFD,
  "sizeof.struct iocb": aio.Iocb.size,
  "offset.struct iocb.aio_data": aio.Iocb.data,
  "offset.struct iocb.aio_rw_flags": aio.Iocb.rwFlags,
  "offset.struct iocb.aio_lio_opcode": aio.Iocb.opcode,
  "offset.struct iocb.aio_fildes": aio.Iocb.fildes,
  "offset.struct iocb.aio_buf": aio.Iocb.buf,
  "offset.struct iocb.aio_nbytes": aio.Iocb.nbytes,
  "offset.struct iocb.aio_offset": aio.Iocb.offset,
  "offset.struct iocb.aio_flags": aio.Iocb.flags,
  "offset.struct iocb.aio_resfd": aio.Iocb.resfd,
  "sizeof.struct io_event": aio.IoEvent.size,
  "offset.struct io_event.data": aio.IoEvent.data,
  "offset.struct io_event.obj": aio.IoEvent.obj,
  "offset.struct io_event.res": aio.IoEvent.res,
  "offset.struct io_event.res2": aio.IoEvent.res2,
};

async function cAbi(): Promise<Map<string, number>> {
  const dir = await Deno.makeTempDir({ prefix: "dxs-abi-" });
  try {
    const bin = `${dir}/xen_abi`;
    const cc = await new Deno.Command("gcc", {
      args: ["-Wall", "-Werror", "-o", bin, `${ROOT}ffi/xen_abi.c`],
      stdout: "piped",
      stderr: "piped",
    }).output().catch((e) => {
      throw new Error(`gcc is needed for the ABI check (apt-get install gcc libxen-dev): ${e}`);
    });
    if (!cc.success) {
      throw new Error(
        `compiling ffi/xen_abi.c failed (is libxen-dev installed?):\n${new TextDecoder().decode(cc.stderr)}`,
      );
    }
    const run = await new Deno.Command(bin, { stdout: "piped", stderr: "inherit" }).output();
    assert.ok(run.success, "ffi/xen_abi.c ran");
    const out = new Map<string, number>();
    for (const line of new TextDecoder().decode(run.stdout).split("\n")) {
      if (line === "") continue;
      const sp = line.lastIndexOf(" ");
      out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
    return out;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ABI: every size, offset, ioctl number and constant matches Debian's Xen and libc headers", async () => {
  const c = await cAbi();
  const mismatches: string[] = [];
  for (const [name, v] of c) {
    if (!(name in TS)) mismatches.push(`${name}: printed by the C program but not checked here`);
    else if (TS[name] !== v) mismatches.push(`${name}: C says ${v}, TypeScript says ${TS[name]}`);
  }
  for (const name of Object.keys(TS)) {
    if (!c.has(name)) mismatches.push(`${name}: not printed by ffi/xen_abi.c`);
  }
  assert.deepEqual(mismatches, []);
  assert.ok(c.size >= 100, `${c.size} values compared`);
});

Deno.test("ABI: ioc() encodes Linux _IOC(_IOC_NONE, type, nr, size)", () => {
  assert.equal(abi.ioc("E", 1, 8), 0x00084501);
  assert.equal(abi.ioc("G", 0, 24), 0x00184700);
  assert.equal(abi.ioc("P", 4, 32), 0x00205004);
});

Deno.test("the real platform refuses to start without Xen, saying what is missing", () => {
  let exists = true;
  try {
    Deno.statSync("/dev/xen/evtchn");
  } catch {
    exists = false;
  }
  if (exists) return; // a Xen dom0: nothing to check here (tests/xen in QEMU covers it)
  assert.throws(() => RealPlatform.open(), Error, (e) => /\/dev\/xen\/evtchn/.test(e.message));
});

Deno.test("libxenctrl loads and its symbols resolve (the interface itself needs dom0)", () => {
  let privcmd = true;
  try {
    Deno.statSync("/dev/xen/privcmd");
  } catch {
    privcmd = false;
  }
  if (privcmd) return;
  // dlopen and symbol lookup succeed; only xc_interface_open fails, for want of /dev/xen/privcmd.
  assert.throws(() => XenCtrl.open(), Error, (e) => /xc_interface_open failed/.test(e.message));
});
