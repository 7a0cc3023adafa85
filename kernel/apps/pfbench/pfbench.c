// SPDX-License-Identifier: GPL-2.0
/*
 * pfbench - PF_LANA socket throughput: send or receive Ethernet frames as
 * fast as the socket takes them (thesis 6.4.2 compares PF_LANA with
 * PF_PACKET this way).
 *
 *   pfbench send NAME COUNT SIZE      bind NAME, wait until fbctl bound it,
 *                                     send COUNT frames of SIZE bytes
 *   pfbench recv NAME COUNT SECONDS   bind NAME, count EtherType 0xAC05
 *                                     frames until COUNT or SECONDS
 *
 * Prints one JSON line: frames, bytes, seconds (first to last frame).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/lana.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_bound(const char *name)
{
	struct sockaddr_lana sl = { .sl_family = AF_LANA };
	int fd = socket(AF_LANA, SOCK_RAW, 0), rcvbuf = 8 << 20;

	if (fd < 0) {
		perror("socket(AF_LANA): is fb_pflana loaded?");
		exit(1);
	}
	snprintf(sl.sl_name, sizeof(sl.sl_name), "%s", name);
	if (bind(fd, (struct sockaddr *)&sl, sizeof(sl))) {
		perror("bind");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	return fd;
}

int main(int argc, char **argv)
{
	unsigned char buf[LANA_PF_MAXLEN];
	double t0 = 0, t1 = 0;
	long count, n = 0, bytes = 0;
	int fd;

	if (argc != 5 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv"))) {
		fputs("usage: pfbench send NAME COUNT SIZE | recv NAME COUNT SECONDS\n",
		      stderr);
		return 2;
	}
	fd = open_bound(argv[2]);
	count = atol(argv[3]);
	if (!strcmp(argv[1], "send")) {
		long size = atol(argv[4]);

		if (size < 14 || size > LANA_PF_MAXLEN) {
			fprintf(stderr, "SIZE must be 14..%d\n", LANA_PF_MAXLEN);
			return 2;
		}
		memset(buf, 0xff, 6);
		memcpy(buf + 6, "\x02\x00\x00\x00\x00\x07\xac\x05", 8);
		memset(buf + 14, 0x5a, size - 14);
		/* ENOTCONN until fbctl bound the socket on top of a block */
		while (send(fd, buf, size, 0) < 0 && errno == ENOTCONN)
			usleep(1000);
		t0 = now();
		for (n = 1; n < count; n++) {
			if (send(fd, buf, size, 0) < 0) {
				perror("send");
				return 1;
			}
		}
		bytes = n * size;
		t1 = now();
	} else {
		double end = now() + atof(argv[4]);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		while (n < count && now() < end) {
			ssize_t len;

			if (poll(&pfd, 1, 100) <= 0)
				continue;
			while ((len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
				if (buf[12] != 0xac || buf[13] != 0x05)
					continue;
				if (!n)
					t0 = now();
				t1 = now();
				n++;
				bytes += len;
			}
		}
	}
	printf("{\"frames\": %ld, \"bytes\": %ld, \"seconds\": %.6f}\n", n, bytes,
	       t1 - t0);
	return 0;
}
