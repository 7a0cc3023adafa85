// SPDX-License-Identifier: GPL-2.0
/*
 * lanalat-server: the request/response service of the latency scenario
 * (`lanalab bench --latency`), seed 003's "function invoker": every UDP
 * request to PORT is answered with its payload reversed, byte by byte.  Four
 * ways to serve it, one per KIND:
 *
 *   lanalat-server udp PORT
 *	UDP socket, recvfrom(2) / sendto(2), one request per call
 *   lanalat-server mmsg PORT
 *	UDP socket, recvmmsg(2) / sendmmsg(2), up to 64 requests per call
 *   lanalat-server [-N] -o OBJ xdp IFACE PORT
 *	AF_XDP socket on IFACE queue 0 (copy mode), fed by OBJ's "xdp" program
 *	(kernel/xdp/xdp_xsk.bpf.c) in generic (skb) mode, or in native (driver)
 *	mode with -N; the reply is built in the UMEM frame the request came in
 *	(MACs, IPs and ports swapped, payload reversed) and sent on the same
 *	socket's TX ring
 *   lanalat-server pflana NAME PORT
 *	PF_LANA socket renamed NAME; `fbctl bind NAME eth0` (after `vlink
 *	ethernet hook eth0`) puts it on top of the device: whole frames come
 *	up, the reply frame goes back down
 *
 * The raw kinds (xdp, pflana) see every frame of the device: they answer
 * IPv4/UDP frames to PORT and drop the rest (AF_XDP gives them back to the
 * fill ring).  Their replies carry UDP checksum 0 (none, allowed for IPv4);
 * the IPv4 header checksum stays valid when the addresses swap.
 *
 * Prints "ready" (stdout, flushed) once it can serve, and on SIGTERM/SIGINT
 * "served N" and exits 0; errors go to stderr with a hint, exit 1.  The
 * AF_XDP program is attached through a bpf_link this process holds, so it is
 * detached however the server exits.  AF_XDP set up with plain syscalls, as
 * in receivers.c (why: there).
 */
#define _GNU_SOURCE	/* recvmmsg, sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/lana.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define MMSG_BATCH	64
#define XSK_FRAMES	4096
#define XSK_FRAME_SIZE	2048
#define XSK_RING	2048	/* entries of each ring, a power of two */
#define XSK_MAP		"xsks_map"
#define ETH_HDR		14
#define IP_HDR_MIN	20
#define UDP_HDR		8

static volatile sig_atomic_t stop;
static unsigned long long served;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int fail(const char *what, const char *target, int err, const char *hint)
{
	fprintf(stderr, "lanalat-server: %s %s: %s%s%s\n", what, target, strerror(err),
		hint ? "; " : "", hint ? hint : "");
	return -1;
}

static void reverse(unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n / 2; i++) {
		unsigned char c = p[i];

		p[i] = p[n - 1 - i];
		p[n - 1 - i] = c;
	}
}

static void ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

/*
 * A whole Ethernet frame: if it is an IPv4/UDP request to `port`, turn it
 * into the reply in place and return the reply's length; else 0.
 */
static size_t frame_reply(unsigned char *f, size_t len, unsigned int port)
{
	unsigned char tmp[6];
	unsigned char *ip = f + ETH_HDR, *udp;
	size_t ihl, ulen;

	if (len < ETH_HDR + IP_HDR_MIN + UDP_HDR || f[12] != 0x08 || f[13] != 0x00)
		return 0;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < IP_HDR_MIN || ip[9] != IPPROTO_UDP ||
	    (ip[6] & 0x3f) || ip[7] ||	/* fragments: not ours */
	    len < ETH_HDR + ihl + UDP_HDR)
		return 0;
	udp = ip + ihl;
	if ((unsigned int)((udp[2] << 8) | udp[3]) != port)
		return 0;
	ulen = (size_t)((udp[4] << 8) | udp[5]);
	if (ulen < UDP_HDR || ETH_HDR + ihl + ulen > len)
		return 0;
	memcpy(tmp, f, 6);		/* MACs */
	memcpy(f, f + 6, 6);
	memcpy(f + 6, tmp, 6);
	memcpy(tmp, ip + 12, 4);	/* IPs: the header checksum stays right */
	memcpy(ip + 12, ip + 16, 4);
	memcpy(ip + 16, tmp, 4);
	memcpy(tmp, udp, 2);		/* ports */
	memcpy(udp, udp + 2, 2);
	memcpy(udp + 2, tmp, 2);
	udp[6] = udp[7] = 0;		/* no UDP checksum */
	reverse(udp + UDP_HDR, ulen - UDP_HDR);
	return ETH_HDR + ihl + ulen;	/* without the Ethernet padding */
}

static int open_udp(const char *port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	addr.sin_port = htons(atoi(port));
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	if (fd < 0)
		return fail("UDP socket for port", port, errno, NULL);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("UDP bind to port", port, errno, "is another server running?");
	return fd;
}

static int serve_udp(int fd)
{
	static unsigned char buf[65536];

	ready();
	while (!stop) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("recvfrom on", "the UDP socket", errno, NULL);
		}
		reverse(buf, (size_t)n);
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) != n)
			return fail("sendto on", "the UDP socket", errno, NULL);
		served++;
	}
	return 0;
}

static int serve_mmsg(int fd)
{
	static unsigned char bufs[MMSG_BATCH][2048];
	static struct sockaddr_in from[MMSG_BATCH];
	struct mmsghdr msgs[MMSG_BATCH];
	struct iovec iov[MMSG_BATCH];
	int i, n;

	memset(msgs, 0, sizeof(msgs));
	ready();
	while (!stop) {
		for (i = 0; i < MMSG_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof(bufs[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(fd, msgs, MMSG_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("recvmmsg on", "the UDP socket", errno, NULL);
		}
		for (i = 0; i < n; i++) {
			reverse(bufs[i], msgs[i].msg_len);
			iov[i].iov_len = msgs[i].msg_len;
		}
		if (n > 0 && sendmmsg(fd, msgs, n, 0) != n)
			return fail("sendmmsg on", "the UDP socket", errno, NULL);
		served += n;
	}
	return 0;
}

static int serve_pflana(const char *name, unsigned int port)
{
	static unsigned char buf[LANA_PF_MAXLEN];
	struct sockaddr_lana sl = { .sl_family = AF_LANA };
	int fd = socket(AF_LANA, SOCK_RAW, 0);

	if (fd < 0)
		return fail("socket(AF_LANA) for", name, errno, "is fb_pflana loaded?");
	snprintf(sl.sl_name, sizeof(sl.sl_name), "%s", name);
	if (bind(fd, (struct sockaddr *)&sl, sizeof(sl)) < 0)
		return fail("PF_LANA bind to the name", name, errno, NULL);
	ready();	/* now `fbctl bind NAME eth0` */
	while (!stop) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		size_t len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("recv on the PF_LANA socket", name, errno, NULL);
		}
		len = frame_reply(buf, (size_t)n, port);
		if (!len)
			continue;
		if (send(fd, buf, len, 0) != (ssize_t)len)
			return fail("send on the PF_LANA socket", name, errno,
				    errno == ENOTCONN ? "fbctl bind it on top of eth0" : NULL);
		served++;
	}
	close(fd);	/* unbinds the instance and removes it */
	return 0;
}

/* AF_XDP: one socket, one UMEM, four rings (copy mode). */
struct ring {
	__u32 *producer, *consumer;
	void *desc;
};

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

static void *map_ring(int fd, const struct xdp_ring_offset *o, size_t entry, off_t pgoff,
		      struct ring *r)
{
	char *m = mmap(NULL, o->desc + XSK_RING * entry, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, fd, pgoff);

	if (m == MAP_FAILED)
		return NULL;
	r->producer = (void *)(m + o->producer);
	r->consumer = (void *)(m + o->consumer);
	r->desc = m + o->desc;
	return m;
}

static int serve_xdp(const char *iface, unsigned int port, const char *path, int native)
{
	struct xdp_umem_reg umem = {
		.len = (__u64)XSK_FRAMES * XSK_FRAME_SIZE,
		.chunk_size = XSK_FRAME_SIZE,
	};
	struct sockaddr_xdp sxdp = { .sxdp_family = AF_XDP, .sxdp_flags = XDP_COPY };
	LIBBPF_OPTS(bpf_link_create_opts, link_opts,
		    .flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
	struct xdp_mmap_offsets off;
	socklen_t optlen = sizeof(off);
	struct ring fill, comp, rx, tx;
	struct bpf_program *prog = NULL, *p;
	struct bpf_object *obj;
	struct bpf_map *map;
	struct pollfd pfd;
	int ring = XSK_RING, ifindex, link, fd, err;
	__u32 queue = 0, i, outstanding = 0;
	unsigned char *frames;

	ifindex = if_nametoindex(iface);
	if (!ifindex)
		return fail("AF_XDP: no device", iface, ENODEV, NULL);
	libbpf_set_print(libbpf_quiet);
	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		return fail("AF_XDP: cannot open the BPF object", path, errno,
			    "give kernel/xdp/xdp_xsk.bpf.c compiled by lab/ebpf/compile.py");
	bpf_object__for_each_program(p, obj)
		if (!strcmp(bpf_program__section_name(p), "xdp"))
			prog = p;
	map = bpf_object__find_map_by_name(obj, XSK_MAP);
	if (!prog || !map || bpf_map__type(map) != BPF_MAP_TYPE_XSKMAP) {
		fprintf(stderr, "lanalat-server: AF_XDP: %s has no program in section xdp "
			"or no XSKMAP named %s; give the object of kernel/xdp/xdp_xsk.bpf.c\n",
			path, XSK_MAP);
		return -1;
	}
	err = bpf_object__load(obj);
	if (err)
		return fail("AF_XDP: the kernel refused the BPF object", path, -err,
			    "the verifier's log is above");

	fd = socket(AF_XDP, SOCK_RAW, 0);
	if (fd < 0)
		return fail("AF_XDP socket for", iface, errno, NULL);
	frames = mmap(NULL, umem.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (frames == MAP_FAILED)
		return fail("AF_XDP: UMEM for", iface, errno, NULL);
	umem.addr = (__u64)(unsigned long)frames;
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &umem, sizeof(umem)) < 0)
		return fail("AF_XDP: XDP_UMEM_REG on", iface, errno, NULL);
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &ring, sizeof(ring)) < 0 ||
	    setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ring, sizeof(ring)) < 0 ||
	    setsockopt(fd, SOL_XDP, XDP_RX_RING, &ring, sizeof(ring)) < 0 ||
	    setsockopt(fd, SOL_XDP, XDP_TX_RING, &ring, sizeof(ring)) < 0)
		return fail("AF_XDP: ring sizes on", iface, errno, NULL);
	if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen) < 0)
		return fail("AF_XDP: XDP_MMAP_OFFSETS on", iface, errno, NULL);
	if (!map_ring(fd, &off.fr, sizeof(__u64), XDP_UMEM_PGOFF_FILL_RING, &fill) ||
	    !map_ring(fd, &off.cr, sizeof(__u64), XDP_UMEM_PGOFF_COMPLETION_RING, &comp) ||
	    !map_ring(fd, &off.rx, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING, &rx) ||
	    !map_ring(fd, &off.tx, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING, &tx))
		return fail("AF_XDP: mmap of the rings on", iface, errno, NULL);
	/* the first half of the UMEM goes to the kernel for filling, the rest is spare */
	for (i = 0; i < XSK_RING; i++)
		((__u64 *)fill.desc)[i] = (__u64)i * XSK_FRAME_SIZE;
	__atomic_store_n(fill.producer, XSK_RING, __ATOMIC_RELEASE);

	sxdp.sxdp_ifindex = ifindex;
	sxdp.sxdp_queue_id = queue;
	if (bind(fd, (struct sockaddr *)&sxdp, sizeof(sxdp)) < 0)
		return fail("AF_XDP: bind to", iface, errno, NULL);
	if (bpf_map_update_elem(bpf_map__fd(map), &queue, &fd, BPF_ANY) < 0)
		return fail("AF_XDP: socket into " XSK_MAP " for", iface, errno, NULL);
	link = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &link_opts);
	if (link < 0)
		return native ?
			fail("AF_XDP: attach in native (driver) mode to", iface, -link,
			     "the device's driver has no XDP support; use generic mode "
			     "(without -N), which every device has") :
			fail("AF_XDP: attach in generic mode to", iface, -link,
			     "is another XDP program attached? (ip link show)");
	ready();
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!stop) {
		__u32 rprod, rcons, cprod, ccons, tprod, fprod, sent = 0;

		/* frames whose reply went out come back to the fill ring */
		cprod = __atomic_load_n(comp.producer, __ATOMIC_ACQUIRE);
		ccons = *comp.consumer;
		fprod = *fill.producer;
		for (; ccons != cprod; ccons++, fprod++, outstanding--)
			((__u64 *)fill.desc)[fprod & (XSK_RING - 1)] =
				((__u64 *)comp.desc)[ccons & (XSK_RING - 1)] &
				~(__u64)(XSK_FRAME_SIZE - 1);
		__atomic_store_n(comp.consumer, ccons, __ATOMIC_RELEASE);

		rprod = __atomic_load_n(rx.producer, __ATOMIC_ACQUIRE);
		rcons = *rx.consumer;
		if (rprod == rcons) {
			__atomic_store_n(fill.producer, fprod, __ATOMIC_RELEASE);
			if (poll(&pfd, 1, outstanding ? 1 : 100) < 0 && errno != EINTR)
				return fail("poll on the AF_XDP socket on", iface, errno, NULL);
			continue;
		}
		tprod = *tx.producer;
		for (; rcons != rprod; rcons++) {
			struct xdp_desc *d = &((struct xdp_desc *)rx.desc)[rcons & (XSK_RING - 1)];
			size_t len = frame_reply(frames + d->addr, d->len, port);

			if (!len) {	/* not a request: straight back to the fill ring */
				((__u64 *)fill.desc)[fprod++ & (XSK_RING - 1)] =
					d->addr & ~(__u64)(XSK_FRAME_SIZE - 1);
				continue;
			}
			((struct xdp_desc *)tx.desc)[tprod++ & (XSK_RING - 1)] =
				(struct xdp_desc){ .addr = d->addr, .len = (__u32)len };
			sent++;
		}
		__atomic_store_n(rx.consumer, rcons, __ATOMIC_RELEASE);
		__atomic_store_n(fill.producer, fprod, __ATOMIC_RELEASE);
		if (sent) {
			__atomic_store_n(tx.producer, tprod, __ATOMIC_RELEASE);
			outstanding += sent;
			/* copy mode: the kernel transmits in this call */
			while (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
			       (errno == EAGAIN || errno == EBUSY || errno == EINTR) && !stop)
				;
			served += sent;
		}
	}
	close(link);
	return 0;
}

static int usage(const char *prog)
{
	fprintf(stderr, "usage: %s udp|mmsg PORT | [-N] -o OBJ xdp IFACE PORT | "
		"pflana NAME PORT\n", prog);
	return 2;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *obj = NULL, *kind;
	int opt, native = 0, rc, fd;

	while ((opt = getopt(argc, argv, "No:")) != -1) {
		if (opt == 'N')
			native = 1;
		else if (opt == 'o')
			obj = optarg;
		else
			return usage(argv[0]);
	}
	if (argc - optind < 2)
		return usage(argv[0]);
	kind = argv[optind];
	/* no SA_RESTART: a signal interrupts the blocking receive */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((!strcmp(kind, "udp") || !strcmp(kind, "mmsg")) && argc - optind == 2) {
		fd = open_udp(argv[optind + 1]);
		if (fd < 0)
			return 1;
		rc = !strcmp(kind, "udp") ? serve_udp(fd) : serve_mmsg(fd);
	} else if (!strcmp(kind, "xdp") && argc - optind == 3) {
		if (!obj) {
			fprintf(stderr, "lanalat-server: xdp needs -o OBJECT (xdp_xsk.bpf.o)\n");
			return 2;
		}
		rc = serve_xdp(argv[optind + 1], atoi(argv[optind + 2]), obj, native);
	} else if (!strcmp(kind, "pflana") && argc - optind == 3) {
		rc = serve_pflana(argv[optind + 1], atoi(argv[optind + 2]));
	} else {
		return usage(argv[0]);
	}
	if (rc < 0)
		return 1;
	printf("served %llu\n", served);
	return 0;
}
