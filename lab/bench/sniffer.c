// SPDX-License-Identifier: GPL-2.0
/*
 * lanabench-sniffer: a userspace receiver for `lanalab bench` (thesis figure 6.4).
 * Counts the frames a PF_PACKET socket bound to IFACE gets with recvfrom(2), one copy
 * per frame (no ring), for SECONDS after WARMUP seconds. Prints
 * "<packets> <bytes> <nanoseconds> <socket drops>".
 *
 *   lanabench-sniffer IFACE WARMUP SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct sockaddr_ll addr = { .sll_family = AF_PACKET };
	struct timeval tick = { .tv_usec = 100000 };
	struct tpacket_stats stats;
	socklen_t len = sizeof(stats);
	long long start, begin = 0, end, now;
	unsigned long long packets = 0, bytes = 0;
	static char buf[65536];
	int fd, counting = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: %s IFACE WARMUP SECONDS\n", argv[0]);
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	addr.sll_protocol = htons(ETH_P_ALL);
	addr.sll_ifindex = if_nametoindex(argv[1]);
	if (fd < 0 || !addr.sll_ifindex ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
	start = now_ns();
	end = start + (long long)(atof(argv[2]) * 1e9);
	for (;;) {
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL);

		now = now_ns();
		if (!counting && now >= end) {
			/* the counting window starts: reset the socket's drop counter too */
			getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len);
			counting = 1;
			begin = now;
			end = now + (long long)(atof(argv[3]) * 1e9);
			packets = bytes = 0;
		} else if (counting && now >= end) {
			break;
		}
		if (n > 0) {
			packets++;
			bytes += n;
		}
	}
	getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len);
	printf("%llu %llu %lld %u\n", packets, bytes, now - begin, stats.tp_drops);
	return 0;
}
