/*
 * Prints every Xen/Linux ABI number dxenstored relies on, as the C compiler sees it with the
 * installed headers (Debian: libxen-dev), one "name value" per line. tests/xen/abi_test.ts compiles
 * this, runs it, and compares each line with the TypeScript definitions (ffi/xen_abi.ts,
 * ffi/libc.ts, src/xen/ring.ts). Build: gcc -o xen_abi ffi/xen_abi.c
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <sys/syscall.h>
#include <linux/aio_abi.h>
#include <xenctrl.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/xs_wire.h>
#include <xen/sys/evtchn.h>
#include <xen/sys/gntdev.h>
#include <xen/sys/privcmd.h>

#define SIZE(t) printf("sizeof.%s %zu\n", #t, sizeof(t))
#define OFF(t, f) printf("offset.%s.%s %zu\n", #t, #f, offsetof(t, f))
#define NUM(c) printf("%s %lu\n", #c, (unsigned long)(c))

int main(void)
{
    /* xs_wire.h: the ring page and the message header */
    SIZE(struct xenstore_domain_interface);
    OFF(struct xenstore_domain_interface, req);
    OFF(struct xenstore_domain_interface, rsp);
    OFF(struct xenstore_domain_interface, req_cons);
    OFF(struct xenstore_domain_interface, req_prod);
    OFF(struct xenstore_domain_interface, rsp_cons);
    OFF(struct xenstore_domain_interface, rsp_prod);
    OFF(struct xenstore_domain_interface, server_features);
    OFF(struct xenstore_domain_interface, connection);
    OFF(struct xenstore_domain_interface, error);
    NUM(XENSTORE_RING_SIZE);
    NUM(XENSTORE_PAYLOAD_MAX);
    NUM(XENSTORE_SERVER_FEATURE_RECONNECTION);
    NUM(XENSTORE_SERVER_FEATURE_ERROR);
    NUM(XENSTORE_CONNECTED);
    NUM(XENSTORE_RECONNECT);
    NUM(XENSTORE_ERROR_NONE);
    NUM(XENSTORE_ERROR_COMM);
    NUM(XENSTORE_ERROR_RINGIDX);
    NUM(XENSTORE_ERROR_PROTO);
    NUM(XS_WATCH_EVENT);
    NUM(XENSTORE_ABS_PATH_MAX);
    NUM(XENSTORE_REL_PATH_MAX);
    NUM(XS_CONTROL);
    NUM(XS_DIRECTORY);
    NUM(XS_READ);
    NUM(XS_GET_PERMS);
    NUM(XS_WATCH);
    NUM(XS_UNWATCH);
    NUM(XS_TRANSACTION_START);
    NUM(XS_TRANSACTION_END);
    NUM(XS_INTRODUCE);
    NUM(XS_RELEASE);
    NUM(XS_GET_DOMAIN_PATH);
    NUM(XS_WRITE);
    NUM(XS_MKDIR);
    NUM(XS_RM);
    NUM(XS_SET_PERMS);
    NUM(XS_ERROR);
    NUM(XS_IS_DOMAIN_INTRODUCED);
    NUM(XS_RESUME);
    NUM(XS_SET_TARGET);
    NUM(XS_RESET_WATCHES);
    NUM(XS_DIRECTORY_PART);
    NUM(XS_INVALID);
    SIZE(struct xsd_sockmsg);
    OFF(struct xsd_sockmsg, type);
    OFF(struct xsd_sockmsg, req_id);
    OFF(struct xsd_sockmsg, tx_id);
    OFF(struct xsd_sockmsg, len);

    /* /dev/xen/evtchn */
    NUM(IOCTL_EVTCHN_BIND_VIRQ);
    NUM(IOCTL_EVTCHN_BIND_INTERDOMAIN);
    NUM(IOCTL_EVTCHN_UNBIND);
    NUM(IOCTL_EVTCHN_NOTIFY);
    SIZE(struct ioctl_evtchn_bind_virq);
    OFF(struct ioctl_evtchn_bind_virq, virq);
    SIZE(struct ioctl_evtchn_bind_interdomain);
    OFF(struct ioctl_evtchn_bind_interdomain, remote_domain);
    OFF(struct ioctl_evtchn_bind_interdomain, remote_port);
    SIZE(struct ioctl_evtchn_unbind);
    OFF(struct ioctl_evtchn_unbind, port);
    SIZE(struct ioctl_evtchn_notify);
    OFF(struct ioctl_evtchn_notify, port);
    SIZE(evtchn_port_t);
    NUM(VIRQ_DOM_EXC);
    NUM(DOMID_FIRST_RESERVED);
    NUM(DOMID_SELF);

    /* /dev/xen/gntdev */
    NUM(IOCTL_GNTDEV_MAP_GRANT_REF);
    NUM(IOCTL_GNTDEV_UNMAP_GRANT_REF);
    SIZE(struct ioctl_gntdev_grant_ref);
    OFF(struct ioctl_gntdev_grant_ref, domid);
    OFF(struct ioctl_gntdev_grant_ref, ref);
    SIZE(struct ioctl_gntdev_map_grant_ref);
    OFF(struct ioctl_gntdev_map_grant_ref, count);
    OFF(struct ioctl_gntdev_map_grant_ref, pad);
    OFF(struct ioctl_gntdev_map_grant_ref, index);
    OFF(struct ioctl_gntdev_map_grant_ref, refs);
    SIZE(struct ioctl_gntdev_unmap_grant_ref);
    OFF(struct ioctl_gntdev_unmap_grant_ref, index);
    OFF(struct ioctl_gntdev_unmap_grant_ref, count);
    OFF(struct ioctl_gntdev_unmap_grant_ref, pad);
    NUM(GNTTAB_RESERVED_XENSTORE);

    /* /dev/xen/privcmd */
    NUM(IOCTL_PRIVCMD_MMAPBATCH_V2);
    SIZE(privcmd_mmapbatch_v2_t);
    OFF(privcmd_mmapbatch_v2_t, num);
    OFF(privcmd_mmapbatch_v2_t, dom);
    OFF(privcmd_mmapbatch_v2_t, addr);
    OFF(privcmd_mmapbatch_v2_t, arr);
    OFF(privcmd_mmapbatch_v2_t, err);
    SIZE(xen_pfn_t);
    SIZE(domid_t);

    /* libxenctrl: xc_domain_getinfolist's entries */
    SIZE(xc_evtchn_status_t);
    OFF(xc_evtchn_status_t, dom);
    OFF(xc_evtchn_status_t, port);
    OFF(xc_evtchn_status_t, status);
    OFF(xc_evtchn_status_t, u.interdomain.dom);
    OFF(xc_evtchn_status_t, u.interdomain.port);
    NUM(EVTCHNSTAT_interdomain);
    SIZE(xc_domaininfo_t);
    OFF(xc_domaininfo_t, domain);
    OFF(xc_domaininfo_t, flags);
    OFF(xc_domaininfo_t, handle);
    SIZE(xen_domain_handle_t);
    NUM(XEN_DOMINF_dying);
    NUM(XEN_DOMINF_shutdown);
    NUM(XEN_DOMINF_shutdownshift);
    NUM(XEN_DOMINF_shutdownmask);
    NUM(XEN_DOMCTL_INTERFACE_VERSION);

    /* libc (ffi/libc.ts) */
    NUM(O_RDWR);
    NUM(O_CREAT);
    NUM(O_EXCL);
    NUM(O_NONBLOCK);
    NUM(O_CLOEXEC);
    NUM(PROT_READ);
    NUM(PROT_WRITE);
    NUM(MAP_SHARED);
    NUM(AF_UNIX);
    NUM(SOCK_DGRAM);
    NUM(SOCK_NONBLOCK);
    NUM(SOCK_CLOEXEC);
    NUM(MSG_DONTWAIT);
    NUM(POLLIN);
    SIZE(struct pollfd);
    OFF(struct pollfd, fd);
    OFF(struct pollfd, events);
    OFF(struct pollfd, revents);
    OFF(struct sockaddr_un, sun_family);
    OFF(struct sockaddr_un, sun_path);
    printf("sizeof.sockaddr_un.sun_path %zu\n", sizeof(((struct sockaddr_un *)0)->sun_path));
    NUM(EFD_NONBLOCK);
    NUM(EFD_CLOEXEC);
    NUM(EAGAIN);
    NUM(ESRCH);
    NUM(ECONNREFUSED);
    NUM(ENXIO); /* the simulated Xen's FIFOs (src/xen/sim) */
    NUM(EPIPE);
    /* The server loop (src/transport) and the daemon contract (src/cli/sys.ts). */
    NUM(SOCK_STREAM);
    NUM(O_APPEND);
    NUM(LOCK_EX);
    NUM(LOCK_NB);
    NUM(MSG_NOSIGNAL);
    NUM(CLOCK_MONOTONIC);
    NUM(CLOCK_MONOTONIC_COARSE);
    NUM(EPOLLIN);
    NUM(EPOLLOUT);
    NUM(EPOLLERR);
    NUM(EPOLLHUP);
    NUM(EPOLLRDHUP);
    NUM(EPERM);
    NUM(ENOENT);
    NUM(EINTR);
    NUM(EIO);
    NUM(ENOMEM);
    NUM(EACCES);
    NUM(EFAULT);
    NUM(EBUSY);
    NUM(EEXIST);
    NUM(ENODEV);
    NUM(ENOTTY);
    NUM(ENOSPC);
    NUM(EDQUOT);
    /* The file backend's group writes (ffi/aio.ts, src/backend/direct_log.ts). */
    NUM(O_WRONLY);
    NUM(O_DSYNC);
    NUM(O_DIRECT);
    NUM(EINVAL);
    NUM(SYS_io_setup);
    NUM(SYS_io_destroy);
    NUM(SYS_io_getevents);
    NUM(SYS_io_submit);
    NUM(IOCB_CMD_PREAD);
    NUM(IOCB_CMD_PWRITE);
    NUM(IOCB_FLAG_RESFD);
    SIZE(struct iocb);
    OFF(struct iocb, aio_data);
    OFF(struct iocb, aio_rw_flags);
    OFF(struct iocb, aio_lio_opcode);
    OFF(struct iocb, aio_fildes);
    OFF(struct iocb, aio_buf);
    OFF(struct iocb, aio_nbytes);
    OFF(struct iocb, aio_offset);
    OFF(struct iocb, aio_flags);
    OFF(struct iocb, aio_resfd);
    SIZE(struct io_event);
    OFF(struct io_event, data);
    OFF(struct io_event, obj);
    OFF(struct io_event, res);
    OFF(struct io_event, res2);
    return 0;
}
