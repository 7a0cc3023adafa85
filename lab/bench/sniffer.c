// SPDX-License-Identifier: GPL-2.0
/*
 * lanabench-sniffer: the userspace receiver of `lanalab bench` (thesis figure 6.4).
 * Counts the frames one socket gets with recvfrom(2), one copy per frame (no ring), for
 * SECONDS, starting WARMUP seconds after the first frame. Prints
 * "<packets> <bytes> <nanoseconds> <drops>" (drops: frames the socket's full queue lost).
 *
 *   lanabench-sniffer packet IFACE WARMUP SECONDS [FILTER]
 *                      PF_PACKET bound to IFACE; FILTER: a classic BPF program in bpfc's
 *                      output form ("{ 0x28, 0, 0, 0x0000000c }," lines), attached with
 *                      SO_ATTACH_FILTER before the socket is bound (the cbpf_socket point)
 *   lanabench-sniffer lana NAME WARMUP SECONDS      PF_LANA socket, instance renamed NAME
 *                                                   (bind it into a stack with fbctl)
 *
 * Options (before the mode): -r FILE creates FILE once the socket is ready; -n N stops
 * as soon as N frames were counted, -b BYTES sets the socket's receive buffer
 * (SO_RCVBUFFORCE) so that a burst of N frames fits (the exact-count tests; the bench's
 * points keep the default buffer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/lana.h>		/* kernel/include/uapi: AF_LANA, struct sockaddr_lana */
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Read a bpfc-form classic BPF program and attach it to fd; 0, or -1 with errno. */
static int attach_filter(int fd, const char *path)
{
	static struct sock_filter insns[BPF_MAXINSNS];
	struct sock_fprog prog = { .filter = insns };
	unsigned int code, jt, jf, k;
	char line[256];
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " { %x , %u , %u , %x }", &code, &jt, &jf, &k) != 4)
			continue;
		if (prog.len == BPF_MAXINSNS) {
			fclose(f);
			errno = E2BIG;
			return -1;
		}
		insns[prog.len++] = (struct sock_filter){ code, jt, jf, k };
	}
	fclose(f);
	if (!prog.len) {
		errno = ENOEXEC;	/* no instruction lines: not bpfc's output */
		return -1;
	}
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

static int open_packet(const char *iface, const char *filter)
{
	struct sockaddr_ll addr = { .sll_family = AF_PACKET };
	/* with a filter: protocol 0 (no frames) until it is attached, then bind */
	int fd = socket(AF_PACKET, SOCK_RAW, filter ? 0 : htons(ETH_P_ALL));

	addr.sll_protocol = htons(ETH_P_ALL);
	addr.sll_ifindex = if_nametoindex(iface);
	if (fd < 0 || !addr.sll_ifindex)
		return -1;
	if (filter && attach_filter(fd, filter) < 0) {
		fprintf(stderr, "filter %s: %s\n", filter, strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	return fd;
}

static int open_lana(const char *name)
{
	struct sockaddr_lana addr = { .sl_family = AF_LANA };
	int fd = socket(AF_LANA, SOCK_RAW, 0);

	strncpy(addr.sl_name, name, sizeof(addr.sl_name) - 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	return fd;
}

/* Frames lost at the socket so far (PF_PACKET: since the last call). */
static unsigned long long drops(int fd, int lana, const char *name)
{
	struct tpacket_stats stats;
	socklen_t len = sizeof(stats);
	unsigned long long n = 0;
	char path[128], line[128];
	FILE *f;

	if (!lana) {
		if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0)
			n = stats.tp_drops;
		return n;
	}
	snprintf(path, sizeof(path), "/proc/net/lana/fblock/%s", name);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "drops %llu", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	struct timeval tick = { .tv_usec = 100000 };
	unsigned long long packets = 0, bytes = 0, dropped = 0;
	long long begin = 0, end = 0, now = 0, warmup, window;
	static char buf[65536];
	int fd, lana, opt, state = 0;	/* 0 no frame yet, 1 warming up, 2 counting */
	const char *ready = NULL, *prog = argv[0];
	unsigned long long limit = 0;
	int rcvbuf = 0;

	while ((opt = getopt(argc, argv, "+b:n:r:")) != -1) {
		if (opt == 'b')
			rcvbuf = atoi(optarg);
		else if (opt == 'n')
			limit = strtoull(optarg, NULL, 10);
		else if (opt == 'r')
			ready = optarg;
		else
			return 2;
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 5 || argc > 6 || (strcmp(argv[1], "packet") && strcmp(argv[1], "lana")) ||
	    (argc == 6 && strcmp(argv[1], "packet"))) {
		fprintf(stderr, "usage: %s [-b BYTES] [-n N] [-r READY] packet IFACE WARMUP SECONDS [FILTER]"
			"|lana NAME WARMUP SECONDS\n", prog);
		return 2;
	}
	lana = !strcmp(argv[1], "lana");
	fd = lana ? open_lana(argv[2]) : open_packet(argv[2], argc == 6 ? argv[5] : NULL);
	if (fd < 0) {
		fprintf(stderr, "%s: %s socket on %s: %s\n", prog, argv[1], argv[2],
			strerror(errno));
		return 1;
	}
	if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) {
		fprintf(stderr, "%s: SO_RCVBUFFORCE %d: %s\n", prog, rcvbuf, strerror(errno));
		return 1;
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f)
			fclose(f);
	}
	warmup = (long long)(atof(argv[3]) * 1e9);
	window = (long long)(atof(argv[4]) * 1e9);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
	for (;;) {
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL);

		now = now_ns();
		if (state == 0 && n > 0) {
			state = 1;
			end = now + warmup;
		}
		if (state == 1 && now >= end) {
			state = 2;
			begin = now;
			end = now + window;
			packets = bytes = 0;
			dropped = drops(fd, lana, argv[2]);
		} else if (state == 2 && now >= end) {
			break;
		} else if (state == 0 && now - begin > 20000000000LL && begin) {
			break;	/* no traffic for 20 s: report zeros */
		}
		if (!begin && state == 0)
			begin = now;
		if (n > 0) {
			packets++;
			bytes += n;
		}
		if (limit && state == 2 && packets >= limit)
			break;
	}
	dropped = drops(fd, lana, argv[2]) - (lana ? dropped : 0);
	printf("%llu %llu %lld %llu\n", state == 2 ? packets : 0, bytes,
	       state == 2 ? now - begin : 0, dropped);
	return 0;
}
