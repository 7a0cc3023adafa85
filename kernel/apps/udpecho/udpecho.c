// SPDX-License-Identifier: GPL-2.0
/*
 * udpecho - a UDP echo service (RFC 862) on a PF_LANA socket.
 *
 *   udpecho NAME [COUNT]
 *
 * Binds a PF_LANA socket as instance NAME (for `fbctl bind NAME u7`, on
 * top of a udp block), then answers every IPv4/UDP datagram it reads:
 * Ethernet, IPv4 addresses and UDP ports swapped, TTL 64, both checksums
 * computed afresh (a UDP checksum of 0, "none", stays 0), payload kept.
 * The frame goes back down through the socket.  Frames that are not
 * IPv4/UDP, or whose lengths do not add up, are counted and ignored.
 * After COUNT replies (0 or none: never) it prints one JSON line
 * {"echoed": N, "ignored": M} and exits; SIGTERM and SIGINT do the same.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/lana.h>

#define ETH_HLEN	14
#define IP_MIN_HLEN	20
#define UDP_HLEN	8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint32_t sum16(const unsigned char *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void swap_bytes(unsigned char *a, unsigned char *b, size_t n)
{
	unsigned char t;
	size_t i;

	for (i = 0; i < n; i++) {
		t = a[i];
		a[i] = b[i];
		b[i] = t;
	}
}

/* Turn the datagram in f (len bytes) into its echo; its length, or 0. */
static size_t echo(unsigned char *f, size_t len)
{
	unsigned char *ip = f + ETH_HLEN, *udp;
	size_t hlen, tot_len, ulen;
	uint32_t sum;

	if (len < ETH_HLEN + IP_MIN_HLEN + UDP_HLEN || f[12] != 0x08 ||
	    f[13] != 0x00 || ip[0] >> 4 != 4 || ip[9] != 17)
		return 0;
	hlen = (size_t)(ip[0] & 15) * 4;
	tot_len = (size_t)ip[2] << 8 | ip[3];
	if (hlen < IP_MIN_HLEN || tot_len < hlen + UDP_HLEN ||
	    tot_len > len - ETH_HLEN)
		return 0;
	udp = ip + hlen;
	ulen = (size_t)udp[4] << 8 | udp[5];
	if (ulen < UDP_HLEN || ulen > tot_len - hlen)
		return 0;

	swap_bytes(f, f + 6, 6);		/* MACs */
	swap_bytes(ip + 12, ip + 16, 4);	/* IPv4 addresses */
	swap_bytes(udp, udp + 2, 2);		/* ports */
	ip[8] = 64;
	put16(ip + 10, 0);
	put16(ip + 10, fold(sum16(ip, hlen, 0)));
	if (udp[6] || udp[7]) {
		uint16_t c;

		put16(udp + 6, 0);
		sum = sum16(ip + 12, 8, 0) + 17 + ulen;	/* pseudo header */
		c = fold(sum16(udp, ulen, sum));
		put16(udp + 6, c ? c : 0xffff);
	}
	return ETH_HLEN + tot_len;
}

int main(int argc, char **argv)
{
	struct sockaddr_lana sl = { .sl_family = AF_LANA };
	unsigned char buf[LANA_PF_MAXLEN];
	long count = 0, echoed = 0, ignored = 0;
	struct sigaction sa;
	ssize_t n;
	size_t out;
	int fd;

	if (argc < 2 || argc > 3) {
		fputs("usage: udpecho NAME [COUNT]\n", stderr);
		return 2;
	}
	if (argc == 3)
		count = strtol(argv[2], NULL, 10);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: recv returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	fd = socket(AF_LANA, SOCK_RAW, 0);
	if (fd < 0) {
		perror("socket(AF_LANA): is fb_pflana loaded?");
		return 1;
	}
	snprintf(sl.sl_name, sizeof(sl.sl_name), "%s", argv[1]);
	if (bind(fd, (struct sockaddr *)&sl, sizeof(sl))) {
		perror("bind");
		return 1;
	}
	while (!stop && (!count || echoed < count)) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recv");
			break;
		}
		out = echo(buf, (size_t)n);
		if (!out) {
			ignored++;
			continue;
		}
		if (send(fd, buf, out, 0) < 0) {
			perror("send");
			ignored++;
			continue;
		}
		echoed++;
	}
	printf("{\"echoed\": %ld, \"ignored\": %ld}\n", echoed, ignored);
	close(fd);
	return 0;
}
