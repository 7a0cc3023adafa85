// SPDX-License-Identifier: GPL-2.0
/*
 * lanabench-recv: the userspace receivers of `lanalab bench` beside the
 * PF_PACKET/PF_LANA sniffer (sniffer.c), as seed 003 compares them.  Counts
 * the frames one receiver gets for SECONDS, starting WARMUP seconds after
 * the first frame, and prints "<packets> <bytes> <nanoseconds> <drops>"
 * like the sniffer (drops: what the socket or ring lost in the window).
 *
 *   lanabench-recv [-n N] [-r FILE] udp PORT WARMUP SECONDS
 *	UDP socket on PORT, recvfrom(2): one datagram per call
 *   lanabench-recv [-n N] [-r FILE] mmsg PORT WARMUP SECONDS
 *	the same with recvmmsg(2), up to 64 datagrams per call
 *   lanabench-recv [-n N] [-r FILE] tpacket3 IFACE WARMUP SECONDS
 *	PF_PACKET with a TPACKET_V3 mmap'd RX ring (blocks of frames)
 *   lanabench-recv [-n N] [-r FILE] -o OBJ xdp[-native|-zerocopy] IFACE WARMUP SECONDS
 *	AF_XDP socket on IFACE queue 0, copy mode, fed by OBJ's "xdp" program
 *	(kernel/xdp/xdp_xsk.bpf.c) in generic (skb) mode; -native attaches in
 *	driver mode, -zerocopy asks for XDP_ZEROCOPY (both fail on devices
 *	without the support, with a message and nothing left attached)
 *
 * -n N: count from the first frame until N frames arrived (or SECONDS
 * passed), no warm-up; for exact-count tests.  -r FILE: create FILE once
 * the receiver is ready for traffic.
 *
 * AF_XDP: libbpf 1.1 (Debian 12) no longer carries xsk.h, and libxdp is
 * installed on neither the host nor the guest, so the socket, its UMEM and its
 * rings are set up with plain syscalls (socket, setsockopt XDP_UMEM_REG and
 * the ring sizes, getsockopt XDP_MMAP_OFFSETS, mmap, bind).  The object is
 * loaded with libbpf, linked statically (libbpf.a, libelf.a, libz.a from
 * libbpf-dev, libelf-dev, zlib1g-dev), because the socket's fd must go into
 * the program's XSKMAP from the process that owns it: bpftool cannot do that
 * from outside.  The program is attached through a bpf_link held by this
 * process, so it is detached when the receiver exits, however it exits.
 */
#define _GNU_SOURCE	/* recvmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define MMSG_BATCH	64
#define UDP_RCVBUF	(8 << 20)	/* room for an exact-count burst */
#define TP_BLOCK_SIZE	(1 << 18)
#define TP_BLOCK_NR	16
#define TP_FRAME_SIZE	2048
#define XSK_FRAMES	4096
#define XSK_FRAME_SIZE	2048
#define XSK_RING	4096	/* fill and rx ring entries, a power of two */
#define XSK_MAP		"xsks_map"

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The counting window, fed after every receive call (n frames, possibly 0). */
struct meter {
	long long warmup, window, begin, end, now, idle_since;
	unsigned long long packets, bytes, drops0, want, calls, cpu0;
	int state;		/* 0 no frame yet, 1 warming up, 2 counting, 3 done */
	int counted;		/* the window was reached */
};

static unsigned long long (*read_drops)(void);

/* This process's time on the CPU so far (ns; instructions under qemu -icount). */
static unsigned long long cpu_ns(void)
{
	unsigned long long ns = 0;
	FILE *f = fopen("/proc/self/schedstat", "r");

	if (f) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return ns;
}

static void meter_start(struct meter *m, long long length)
{
	m->state = 2;
	m->counted = 1;
	m->begin = m->now;
	m->end = m->now + length;
	m->packets = m->bytes = 0;
	m->drops0 = read_drops();
	m->cpu0 = cpu_ns();
}

static void meter_feed(struct meter *m, unsigned long long n,
		       unsigned long long bytes)
{
	m->now = now_ns();
	if (!m->idle_since)
		m->idle_since = m->now;
	if (m->state == 0 && n) {
		if (m->want) {		/* exact count: from the first frame on */
			meter_start(m, m->window);
		} else {
			m->state = 1;
			m->end = m->now + m->warmup;
			return;
		}
	} else if (m->state == 1 && m->now >= m->end) {
		meter_start(m, m->window);
		return;		/* these frames came before the window */
	} else if (m->state == 0 && m->now - m->idle_since > 20000000000LL) {
		m->state = 3;	/* no traffic for 20 s: report zeros */
		return;
	}
	if (m->state != 2)
		return;
	m->packets += n;
	m->bytes += bytes;
	m->calls++;
	if ((m->want && m->packets >= m->want) || m->now >= m->end)
		m->state = 3;
}

static int meter_report(struct meter *m)
{
	if (!m->counted)
		m->packets = m->bytes = 0;
	printf("%llu %llu %lld %llu\n", m->packets, m->bytes,
	       m->counted ? m->now - m->begin : 0,
	       m->counted ? read_drops() - m->drops0 : 0);
	/* how many frames one receive call returned, and the receiver's own CPU time */
	fprintf(stderr, "lanabench-recv: %llu frames in %llu receive calls, %llu ns on the CPU\n",
		m->packets, m->calls, m->counted ? cpu_ns() - m->cpu0 : 0);
	return 0;
}

static int fail_hint(const char *what, const char *target, int err, const char *hint)
{
	fprintf(stderr, "lanabench-recv: %s %s: %s%s%s\n", what, target, strerror(err),
		hint ? "; " : "", hint ? hint : "");
	return -1;
}

static int fail(const char *what, const char *target, int err)
{
	return fail_hint(what, target, err, NULL);
}

/* UDP: datagrams the full receive buffer lost (RcvbufErrors in /proc/net/snmp). */
static unsigned long long udp_drops(void)
{
	unsigned long long v[6] = { 0 };
	char line[512];
	int header = 1;
	FILE *f = fopen("/proc/net/snmp", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Udp: ", 5))
			continue;
		if (header) {	/* first the names, then the values */
			header = 0;
			continue;
		}
		sscanf(line + 5, "%llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		       &v[3], &v[4]);
	}
	if (f)
		fclose(f);
	return v[4];
}

static int open_udp(const char *port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct timeval tick = { .tv_usec = 100000 };
	int size = UDP_RCVBUF;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	addr.sin_port = htons(atoi(port));
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
	return fd;
}

static void run_udp(int fd, struct meter *m)
{
	static char buf[65536];

	while (m->state != 3) {
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL);

		meter_feed(m, n > 0, n > 0 ? n : 0);
	}
}

static void run_mmsg(int fd, struct meter *m)
{
	static char bufs[MMSG_BATCH][2048];
	struct mmsghdr msgs[MMSG_BATCH];
	struct iovec iov[MMSG_BATCH];
	int i;

	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < MMSG_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (m->state != 3) {
		/* blocks (up to SO_RCVTIMEO) for the first, takes what is queued */
		int n = recvmmsg(fd, msgs, MMSG_BATCH, MSG_WAITFORONE, NULL);
		unsigned long long bytes = 0;

		for (i = 0; i < n; i++)
			bytes += msgs[i].msg_len;
		meter_feed(m, n > 0 ? n : 0, bytes);
	}
}

static int packet_fd = -1;
static char *tp_ring;

static unsigned long long packet_drops_total;

/* PF_PACKET's statistics reset on every read: keep the running total. */
static unsigned long long packet_drops(void)
{
	struct tpacket_stats_v3 stats;
	socklen_t len = sizeof(stats);

	if (getsockopt(packet_fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0)
		packet_drops_total += stats.tp_drops;
	return packet_drops_total;
}

static unsigned long long no_drops(void)
{
	return 0;
}

static int open_tpacket3(const char *iface)
{
	struct tpacket_req3 req = {
		.tp_block_size = TP_BLOCK_SIZE,
		.tp_block_nr = TP_BLOCK_NR,
		.tp_frame_size = TP_FRAME_SIZE,
		.tp_frame_nr = TP_BLOCK_SIZE / TP_FRAME_SIZE * TP_BLOCK_NR,
		.tp_retire_blk_tov = 10,	/* ms: hand over a partly filled block */
	};
	struct sockaddr_ll addr = { .sll_family = AF_PACKET };
	int version = TPACKET_V3, fd;

	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0)
		return fail("PF_PACKET socket for", iface, errno);
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		return fail("TPACKET_V3 ring on", iface, errno);
	tp_ring = mmap(NULL, (size_t)TP_BLOCK_SIZE * TP_BLOCK_NR, PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, 0);
	if (tp_ring == MAP_FAILED)
		return fail("mmap of the TPACKET_V3 ring on", iface, errno);
	addr.sll_protocol = htons(ETH_P_ALL);
	addr.sll_ifindex = if_nametoindex(iface);
	if (!addr.sll_ifindex)
		return fail("PF_PACKET socket on", iface, ENODEV);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("PF_PACKET bind to", iface, errno);
	packet_fd = fd;
	read_drops = packet_drops;
	packet_drops();		/* from here on */
	return fd;
}

static void tpacket3_loop(int fd, struct meter *m)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLERR };
	unsigned int block = 0;

	while (m->state != 3) {
		struct tpacket_block_desc *bd =
			(void *)(tp_ring + (size_t)block * TP_BLOCK_SIZE);
		struct tpacket3_hdr *h;
		unsigned long long bytes = 0;
		unsigned int i, n;

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) &
		      TP_STATUS_USER)) {
			poll(&pfd, 1, 100);
			meter_feed(m, 0, 0);
			continue;
		}
		n = bd->hdr.bh1.num_pkts;
		h = (void *)((char *)bd + bd->hdr.bh1.offset_to_first_pkt);
		for (i = 0; i < n; i++) {
			bytes += h->tp_snaplen;
			h = (void *)((char *)h + h->tp_next_offset);
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL,
				 __ATOMIC_RELEASE);
		block = (block + 1) % TP_BLOCK_NR;
		meter_feed(m, n, bytes);
	}
}

/* AF_XDP: one socket, one UMEM, the fill and rx rings (copy mode). */
struct xsk_ring {
	__u32 *producer, *consumer;
	void *desc;
	__u32 mask;
};

static int xsk_fd = -1;
static struct xsk_ring xsk_fill, xsk_rx;

static unsigned long long xsk_drops(void)
{
	struct xdp_statistics stats;
	socklen_t len = sizeof(stats);

	if (getsockopt(xsk_fd, SOL_XDP, XDP_STATISTICS, &stats, &len) < 0)
		return 0;
	return stats.rx_dropped + stats.rx_ring_full + stats.rx_fill_ring_empty_descs;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

/* Returns the bound socket, the program attached; or -1 after a message. */
static int open_xdp(const char *mode, const char *iface, const char *path)
{
	struct xdp_umem_reg umem = {
		.len = (__u64)XSK_FRAMES * XSK_FRAME_SIZE,
		.chunk_size = XSK_FRAME_SIZE,
	};
	struct sockaddr_xdp sxdp = { .sxdp_family = AF_XDP, .sxdp_flags = XDP_COPY };
	LIBBPF_OPTS(bpf_link_create_opts, link_opts, .flags = XDP_FLAGS_SKB_MODE);
	struct xdp_mmap_offsets off;
	socklen_t optlen = sizeof(off);
	struct xsk_ring *fill = &xsk_fill, *rx = &xsk_rx;
	struct bpf_program *prog = NULL, *p;
	struct bpf_object *obj;
	struct bpf_map *map;
	int ring = XSK_RING, ifindex, link, fd, err;
	__u32 queue = 0, i;
	char *frames, *map_fill, *map_rx;

	if (!strcmp(mode, "xdp-native")) {
		link_opts.flags = XDP_FLAGS_DRV_MODE;
	} else if (!strcmp(mode, "xdp-zerocopy")) {
		link_opts.flags = XDP_FLAGS_DRV_MODE;
		sxdp.sxdp_flags = XDP_ZEROCOPY;
	}
	ifindex = if_nametoindex(iface);
	if (!ifindex)
		return fail("AF_XDP: no device", iface, ENODEV);

	libbpf_set_print(libbpf_quiet);
	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		return fail_hint("AF_XDP: cannot open the BPF object", path, errno,
				 "is it a BPF ELF file compiled by lab/ebpf/compile.py?");
	bpf_object__for_each_program(p, obj)
		if (!strcmp(bpf_program__section_name(p), "xdp"))
			prog = p;
	if (!prog) {
		fprintf(stderr, "lanabench-recv: AF_XDP: %s has no program in section xdp; "
			"give the object of kernel/xdp/xdp_xsk.bpf.c\n", path);
		return -1;
	}
	map = bpf_object__find_map_by_name(obj, XSK_MAP);
	if (!map || bpf_map__type(map) != BPF_MAP_TYPE_XSKMAP) {
		fprintf(stderr, "lanabench-recv: AF_XDP: %s has no XSKMAP named %s; "
			"give the object of kernel/xdp/xdp_xsk.bpf.c\n", path, XSK_MAP);
		return -1;
	}
	err = bpf_object__load(obj);
	if (err)
		return fail_hint("AF_XDP: the kernel refused the BPF object", path, -err,
				 "the verifier's log is above");

	fd = socket(AF_XDP, SOCK_RAW, 0);
	if (fd < 0)
		return fail("AF_XDP socket for", iface, errno);
	frames = mmap(NULL, umem.len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (frames == MAP_FAILED)
		return fail("AF_XDP: UMEM for", iface, errno);
	umem.addr = (__u64)(unsigned long)frames;
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &umem, sizeof(umem)) < 0)
		return fail("AF_XDP: XDP_UMEM_REG on", iface, errno);
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &ring, sizeof(ring)) < 0 ||
	    setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ring, sizeof(ring)) < 0 ||
	    setsockopt(fd, SOL_XDP, XDP_RX_RING, &ring, sizeof(ring)) < 0)
		return fail("AF_XDP: ring sizes on", iface, errno);
	if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen) < 0)
		return fail("AF_XDP: XDP_MMAP_OFFSETS on", iface, errno);
	map_fill = mmap(NULL, off.fr.desc + XSK_RING * sizeof(__u64),
			PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			XDP_UMEM_PGOFF_FILL_RING);
	map_rx = mmap(NULL, off.rx.desc + XSK_RING * sizeof(struct xdp_desc),
		      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		      XDP_PGOFF_RX_RING);
	if (map_fill == MAP_FAILED || map_rx == MAP_FAILED)
		return fail("AF_XDP: mmap of the rings on", iface, errno);
	*fill = (struct xsk_ring){ (void *)(map_fill + off.fr.producer),
				  (void *)(map_fill + off.fr.consumer),
				  map_fill + off.fr.desc, XSK_RING - 1 };
	*rx = (struct xsk_ring){ (void *)(map_rx + off.rx.producer),
				(void *)(map_rx + off.rx.consumer),
				map_rx + off.rx.desc, XSK_RING - 1 };
	/* every UMEM frame goes to the kernel for filling */
	for (i = 0; i < XSK_RING && i < XSK_FRAMES; i++)
		((__u64 *)fill->desc)[i] = (__u64)i * XSK_FRAME_SIZE;
	__atomic_store_n(fill->producer, i, __ATOMIC_RELEASE);

	sxdp.sxdp_ifindex = ifindex;
	sxdp.sxdp_queue_id = queue;
	if (bind(fd, (struct sockaddr *)&sxdp, sizeof(sxdp)) < 0)
		return sxdp.sxdp_flags & XDP_ZEROCOPY ?
			fail_hint("AF_XDP: zero-copy bind (the driver has no AF_XDP zero-copy) to",
				  iface, errno, "use copy mode (xdp)") :
			fail("AF_XDP: bind to", iface, errno);
	if (bpf_map_update_elem(bpf_map__fd(map), &queue, &fd, BPF_ANY) < 0)
		return fail("AF_XDP: socket into " XSK_MAP " for", iface, errno);
	/* last, so no frame is redirected before the socket can take it */
	link = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &link_opts);
	if (link < 0)
		return link_opts.flags & XDP_FLAGS_DRV_MODE ?
			fail_hint("AF_XDP: attach in native (driver) mode (no XDP support?) to",
				  iface, -link, "use generic mode (xdp), which every device has") :
			fail_hint("AF_XDP: attach in generic mode to", iface, -link,
				  "is another XDP program attached? (ip link show)");
	xsk_fd = fd;
	read_drops = xsk_drops;
	return fd;
}

static void xdp_loop(int fd, struct meter *m)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	__u32 *fill_prod = xsk_fill.producer, *rx_prod = xsk_rx.producer;
	__u32 *rx_cons = xsk_rx.consumer;
	__u64 *fill_desc = xsk_fill.desc;
	struct xdp_desc *rx_desc = xsk_rx.desc;

	while (m->state != 3) {
		__u32 prod = __atomic_load_n(rx_prod, __ATOMIC_ACQUIRE);
		__u32 cons = *rx_cons, fprod = *fill_prod, n = prod - cons;
		unsigned long long bytes = 0;

		if (!n) {
			poll(&pfd, 1, 100);
			meter_feed(m, 0, 0);
			continue;
		}
		for (; cons != prod; cons++, fprod++) {
			struct xdp_desc *d = &rx_desc[cons & (XSK_RING - 1)];

			bytes += d->len;
			/* the frame goes straight back to the fill ring */
			fill_desc[fprod & (XSK_RING - 1)] = d->addr & ~(__u64)(XSK_FRAME_SIZE - 1);
		}
		__atomic_store_n(rx_cons, cons, __ATOMIC_RELEASE);
		__atomic_store_n(fill_prod, fprod, __ATOMIC_RELEASE);
		meter_feed(m, n, bytes);
	}
}

static int usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-n N] [-r READY_FILE] [-o OBJ] "
		"udp|mmsg PORT|tpacket3|xdp|xdp-native|xdp-zerocopy IFACE "
		"WARMUP SECONDS\n", prog);
	return 2;
}

int main(int argc, char **argv)
{
	struct meter m = { 0 };
	const char *ready = NULL, *obj = NULL, *mode, *target;
	int opt, fd;

	while ((opt = getopt(argc, argv, "n:r:o:")) != -1) {
		if (opt == 'n')
			m.want = strtoull(optarg, NULL, 10);
		else if (opt == 'r')
			ready = optarg;
		else if (opt == 'o')
			obj = optarg;
		else
			return usage(argv[0]);
	}
	if (argc - optind != 4)
		return usage(argv[0]);
	mode = argv[optind];
	target = argv[optind + 1];
	m.warmup = (long long)(atof(argv[optind + 2]) * 1e9);
	m.window = (long long)(atof(argv[optind + 3]) * 1e9);
	read_drops = no_drops;

	if (!strcmp(mode, "udp") || !strcmp(mode, "mmsg")) {
		fd = open_udp(target);
		if (fd < 0) {
			fail("UDP socket on port", target, errno);
			return 1;
		}
		read_drops = udp_drops;
	} else if (!strcmp(mode, "tpacket3")) {
		fd = open_tpacket3(target);
		if (fd < 0)
			return 1;
	} else if (!strncmp(mode, "xdp", 3) && (!mode[3] || !strcmp(mode, "xdp-native") ||
						!strcmp(mode, "xdp-zerocopy"))) {
		if (!obj) {
			fprintf(stderr, "lanabench-recv: %s needs -o OBJECT (xdp_xsk.bpf.o)\n",
				mode);
			return 2;
		}
		fd = open_xdp(mode, target, obj);
		if (fd < 0)
			return 1;
	} else {
		return usage(argv[0]);
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f)
			fclose(f);
	}
	if (!strcmp(mode, "udp"))
		run_udp(fd, &m);
	else if (!strcmp(mode, "mmsg"))
		run_mmsg(fd, &m);
	else if (!strcmp(mode, "tpacket3"))
		tpacket3_loop(fd, &m);
	else
		xdp_loop(fd, &m);
	return meter_report(&m);
}
