// SPDX-License-Identifier: GPL-2.0
/*
 * lanavoice - voice over Ethernet through a PF_LANA socket (headless).
 *
 * Both ends run the same program at the same time (a bidirectional call):
 *
 *   send:    PCM from a WAV file (16-bit mono 16 kHz) is cut into 20 ms
 *            frames, encoded with Opus and sent, one Ethernet frame per
 *            audio frame, with a sequence number and a send timestamp.
 *   receive: frames from the peer go into a jitter buffer; a playout clock
 *            that starts JITTER frames after the first arrival takes one
 *            frame every 20 ms, decodes it (or lets Opus conceal it when
 *            it is missing or late) and writes the audio to a WAV file.
 *
 * A per-frame log (CSV: seq, kernel arrival time, time the program got
 * it, the sender's send time (its clock), gap to the previous arrival, the part of that gap the path added
 * beyond the sender's own spacing, status ok|lost|late; times in ms of
 * this guest's CLOCK_MONOTONIC) and a one-line JSON summary on stdout are for the
 * lab's analysis (lab/voice/).  There is no sound card: files only.
 *
 * Frame on the wire (after the 14-byte Ethernet header; EtherType 0xAC00|
 * ID, which an ethvlink block below the socket sets anyway):
 *   "LV" | u8 version | u8 stream | u32 seq | u32 total | u64 send_ns |
 *   u16 len | Opus packet            (big endian)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <opus/opus.h>
#include <linux/lana.h>

#define RATE		16000		/* wideband: cheap enough for TCG */
#define FRAME		320		/* 20 ms at 16 kHz */
#define PERIOD_NS	20000000LL
#define HDR		24
#define MAXPKT		1000
#define MAXFRAMES	30000		/* 10 minutes */

struct opts {
	const char *name, *in, *out, *log, *received;
	uint8_t id, stream;
	int jitter, bitrate;
	double idle;			/* seconds without frames that end it */
	double ready;			/* seconds to wait for the stack */
	double delay;			/* seconds from start to first frame */
	const char *go;			/* start when this file exists */
};

struct rxframe {
	int64_t arrival_ns;		/* 0: not (yet) received */
	uint16_t len;
	unsigned char *data;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Receive one frame; *kernel_ns: its kernel receive time, CLOCK_MONOTONIC. */
static ssize_t recv_stamped(int fd, unsigned char *buf, size_t len,
			    int64_t *kernel_ns)
{
	char ctl[CMSG_SPACE(sizeof(struct timespec))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl,
			      .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);

	*kernel_ns = now_ns();
	if (n < 0)
		return n;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SO_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			*kernel_ns += ts.tv_sec * 1000000000LL + ts.tv_nsec -
				      realtime_ns();
		}
	}
	return n;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int16_t *read_wav(const char *path, size_t *nsamples)
{
	unsigned char hdr[12], ck[8];
	int16_t *pcm = NULL;
	uint32_t size;
	FILE *f = fopen(path, "rb");

	if (!f)
		die(path);
	if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) ||
	    memcmp(hdr + 8, "WAVE", 4))
		goto bad;
	while (fread(ck, 1, 8, f) == 8) {
		size = ck[4] | ck[5] << 8 | ck[6] << 16 | (uint32_t)ck[7] << 24;
		if (!memcmp(ck, "fmt ", 4)) {
			unsigned char fmt[16];

			if (size < 16 || fread(fmt, 1, 16, f) != 16)
				goto bad;
			/* PCM, 1 channel, RATE Hz, 16 bit */
			if (fmt[0] != 1 || fmt[2] != 1 ||
			    (fmt[4] | fmt[5] << 8 | fmt[6] << 16) != RATE ||
			    fmt[14] != 16) {
				fprintf(stderr, "%s: need 16-bit mono PCM at 16 kHz\n",
					path);
				exit(1);
			}
			fseek(f, size - 16, SEEK_CUR);
		} else if (!memcmp(ck, "data", 4)) {
			pcm = malloc(size + 2 * FRAME);
			if (!pcm || fread(pcm, 1, size, f) != size)
				goto bad;
			*nsamples = size / 2;
			fclose(f);
			return pcm;
		} else {
			fseek(f, size + (size & 1), SEEK_CUR);
		}
	}
bad:
	fprintf(stderr, "%s: not a readable WAV file\n", path);
	exit(1);
}

static void put_le(unsigned char *p, uint32_t v, int n)
{
	while (n--) {
		*p++ = v & 0xff;
		v >>= 8;
	}
}

static void write_wav(const char *path, const int16_t *pcm, size_t n)
{
	unsigned char h[44];
	FILE *f = fopen(path, "wb");

	if (!f)
		die(path);
	memcpy(h, "RIFF", 4);
	put_le(h + 4, 36 + n * 2, 4);
	memcpy(h + 8, "WAVEfmt ", 8);
	put_le(h + 16, 16, 4);
	put_le(h + 20, 1, 2);
	put_le(h + 22, 1, 2);
	put_le(h + 24, RATE, 4);
	put_le(h + 28, RATE * 2, 4);
	put_le(h + 32, 2, 2);
	put_le(h + 34, 16, 2);
	memcpy(h + 36, "data", 4);
	put_le(h + 40, n * 2, 4);
	if (fwrite(h, 1, 44, f) != 44 || fwrite(pcm, 2, n, f) != n)
		die(path);
	fclose(f);
}

static int open_socket(const struct opts *o)
{
	struct sockaddr_lana sl = { .sl_family = AF_LANA };
	int fd = socket(AF_LANA, SOCK_RAW, 0);
	int rcvbuf = 1 << 20, one = 1;

	if (fd < 0) {
		perror("socket(AF_LANA): is fb_pflana loaded (modprobe fb_pflana)?");
		exit(1);
	}
	snprintf(sl.sl_name, sizeof(sl.sl_name), "%s", o->name);
	if (bind(fd, (struct sockaddr *)&sl, sizeof(sl)))
		die("bind(AF_LANA): instance name");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* kernel receive times: arrival gaps without our own scheduling */
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	return fd;
}

/* Wait until fbctl bound the socket's instance on top of a block. */
static void wait_bound(const struct opts *o)
{
	char path[96], line[64];
	int64_t end = now_ns() + (int64_t)(o->ready * 1e9);

	snprintf(path, sizeof(path), "/proc/net/lana/fblock/%s", o->name);
	while (now_ns() < end) {
		FILE *f = fopen(path, "r");
		unsigned int port = 0;

		if (f) {
			while (fgets(line, sizeof(line), f))
				sscanf(line, "egress %u", &port);
			fclose(f);
		}
		if (port)
			return;
		usleep(10000);
	}
	fprintf(stderr, "lanavoice: %s was not bound below within %.0f s; bind it with `fbctl bind %s <block>`\n",
		o->name, o->ready, o->name);
	exit(1);
}

/*
 * Everything that arrived, decoded in sequence order after the call, late
 * or not (Opus conceals only frames that never came): what the network
 * delivered, apart from what the real-time playout made of it.
 */
static void decode_in_order(const char *path, struct rxframe *rx,
			    uint32_t total)
{
	int16_t *pcm = calloc((size_t)total * FRAME + 1, 2);
	OpusDecoder *dec = opus_decoder_create(RATE, 1, NULL);
	uint32_t i;

	if (!pcm || !dec)
		die("decode");
	for (i = 0; i < total; i++) {
		int16_t *out = pcm + (size_t)i * FRAME;
		int n = rx[i].arrival_ns ?
			opus_decode(dec, rx[i].data, rx[i].len, out, FRAME, 0) :
			opus_decode(dec, NULL, 0, out, FRAME, 0);

		if (n < 0)
			memset(out, 0, FRAME * 2);
		free(rx[i].data);
		rx[i].data = NULL;
	}
	write_wav(path, pcm, (size_t)total * FRAME);
	opus_decoder_destroy(dec);
	free(pcm);
}

static void usage(void)
{
	fputs("Usage: lanavoice -n NAME -i IN.wav -o OUT.wav -l LOG.csv [options]\n"
	      "  -n NAME     PF_LANA instance name (bind it with fbctl)\n"
	      "  -i IN.wav   audio to send (16-bit mono 16 kHz PCM)\n"
	      "  -o OUT.wav  received, decoded audio\n"
	      "  -r RX.wav   everything received, decoded in order after the call\n"
	      "  -l LOG.csv  per received frame: seq,arrival_ms,app_ms,send_ms,gap_ms,\n"
	      "              path_gap_ms,status\n"
	      "  -t ID       EtherType 0xAC00|ID (default 1)\n"
	      "  -s STREAM   this end's stream number, 0..255 (default 1);\n"
	      "              frames of the same stream number are ignored\n"
	      "  -j FRAMES   jitter buffer depth (default 3 = 60 ms)\n"
	      "  -b BPS      Opus bitrate (default 32000)\n"
	      "  -w SECONDS  wait this long for the socket to be bound (30)\n"
	      "  -g FILE     after the socket is bound, wait for FILE to exist\n"
	      "              (the peer is bound too) before starting\n"
	      "  -d SECONDS  start sending this long after that (1)\n"
	      "  -e SECONDS  stop receiving after this long without frames (3)\n",
	      stderr);
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	int c;

	*o = (struct opts){ .id = 1, .stream = 1, .jitter = 3,
			    .bitrate = 32000, .idle = 3, .ready = 30,
			    .delay = 1 };
	while ((c = getopt(argc, argv, "n:i:o:l:r:t:s:j:b:w:e:d:g:h")) != -1) {
		switch (c) {
		case 'n': o->name = optarg; break;
		case 'i': o->in = optarg; break;
		case 'o': o->out = optarg; break;
		case 'l': o->log = optarg; break;
		case 'r': o->received = optarg; break;
		case 't': o->id = strtoul(optarg, NULL, 0); break;
		case 's': o->stream = strtoul(optarg, NULL, 0); break;
		case 'j': o->jitter = atoi(optarg); break;
		case 'b': o->bitrate = atoi(optarg); break;
		case 'w': o->ready = atof(optarg); break;
		case 'e': o->idle = atof(optarg); break;
		case 'd': o->delay = atof(optarg); break;
		case 'g': o->go = optarg; break;
		default: usage();
		}
	}
	if (!o->name || !o->in || !o->out || !o->log || o->jitter < 1)
		usage();
}

int main(int argc, char **argv)
{
	static struct rxframe rx[MAXFRAMES];
	unsigned char pkt[LANA_PF_MAXLEN], *p;
	int64_t t0, next_send, next_play = 0, last_rx = 0, prev_arrival = 0;
	int64_t prev_send = 0, t_send, max_send_ns = 0, tx_done = 0;
	uint32_t nframes, sent = 0, played = 0, peer_total = 0;
	uint32_t received = 0, dup = 0, lost = 0, late = 0, retries = 0;
	int16_t *pcm, *outpcm;
	OpusEncoder *enc;
	OpusDecoder *dec;
	double max_gap_ms = 0, max_path_gap_ms = 0;
	size_t nsamples;
	struct opts o;
	FILE *log;
	int fd, err;

	parse(argc, argv, &o);
	pcm = read_wav(o.in, &nsamples);
	nframes = (nsamples + FRAME - 1) / FRAME;
	memset(pcm + nsamples, 0, (nframes * FRAME - nsamples) * 2);
	if (nframes > MAXFRAMES)
		nframes = MAXFRAMES;
	outpcm = calloc((size_t)MAXFRAMES * FRAME, 2);
	enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
	dec = opus_decoder_create(RATE, 1, &err);
	log = fopen(o.log, "w");
	if (!outpcm || !enc || !dec || !log)
		die("setup");
	opus_encoder_ctl(enc, OPUS_SET_BITRATE(o.bitrate));
	opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(0));
	fprintf(log, "seq,arrival_ms,app_ms,send_ms,gap_ms,path_gap_ms,status\n");

	fd = open_socket(&o);
	wait_bound(&o);
	while (o.go && access(o.go, F_OK))
		usleep(5000);
	t0 = now_ns();
	next_send = t0 + (int64_t)(o.delay * 1e9);

	/*
	 * One loop, no threads: take in what arrived, play what is due, send
	 * what is due, sleep until the next of these.  After a stall (a TCG
	 * guest on a busy host can stop for a second) the due frames are all
	 * played and sent at once, and the socket is drained between sends.
	 */
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t now, wake, quiet_since;

		for (;;) {		/* drain the socket */
			unsigned char buf[LANA_PF_MAXLEN];
			int64_t kt, send_ns;
			ssize_t len = recv_stamped(fd, buf, sizeof(buf), &kt);
			double gap, send_gap;
			uint32_t seq;
			uint16_t plen;

			if (len < 0)
				break;
			now = now_ns();
			p = buf + 14;
			if (len < 14 + HDR || buf[12] != 0xac ||
			    memcmp(p, "LV", 2) || p[3] == o.stream)
				continue;
			seq = ntohl(*(uint32_t *)(p + 4));
			plen = ntohs(*(uint16_t *)(p + 20));
			if (seq >= MAXFRAMES || plen > len - 14 - HDR)
				continue;
			if (rx[seq].arrival_ns) {
				dup++;
				continue;
			}
			peer_total = ntohl(*(uint32_t *)(p + 8));
			if (peer_total > MAXFRAMES)
				peer_total = MAXFRAMES;
			send_ns = (int64_t)((uint64_t)ntohl(*(uint32_t *)(p + 12)) << 32 |
					    ntohl(*(uint32_t *)(p + 16)));
			gap = prev_arrival ? (kt - prev_arrival) / 1e6 : 0;
			send_gap = prev_arrival ? (send_ns - prev_send) / 1e6 : 0;
			if (gap > max_gap_ms)
				max_gap_ms = gap;
			if (gap - send_gap > max_path_gap_ms)
				max_path_gap_ms = gap - send_gap;
			prev_arrival = kt;
			prev_send = send_ns;
			last_rx = now;
			received++;
			rx[seq].arrival_ns = kt;
			if (!next_play)		/* playout starts after the buffer */
				next_play = kt + o.jitter * PERIOD_NS -
					    (int64_t)seq * PERIOD_NS;
			/* kept for the in-order decode at the end, too */
			rx[seq].data = malloc(plen);
			if (!rx[seq].data)
				die("malloc");
			memcpy(rx[seq].data, p + HDR, plen);
			rx[seq].len = plen;
			if (seq < played)
				late++;
			fprintf(log, "%u,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n", seq,
				kt / 1e6, now / 1e6, send_ns / 1e6, gap,
				gap - send_gap, seq < played ? "late" : "ok");
		}

		now = now_ns();
		while (next_play && now >= next_play && played < MAXFRAMES &&
		       (!peer_total || played < peer_total)) {
			struct rxframe *f = &rx[played];
			int16_t *out = outpcm + (size_t)played * FRAME;

			if (f->arrival_ns) {
				err = opus_decode(dec, f->data, f->len, out,
						  FRAME, 0);
			} else {	/* missing or late: Opus conceals it */
				err = opus_decode(dec, NULL, 0, out, FRAME, 0);
				lost++;
				if (!f->arrival_ns)
					fprintf(log, "%u,,,,,,lost\n", played);
			}
			if (err < 0)
				memset(out, 0, FRAME * 2);
			played++;
			next_play += PERIOD_NS;
		}

		if (sent < nframes && now >= next_send) {
			int n = opus_encode(enc, pcm + (size_t)sent * FRAME,
					    FRAME, pkt + 14 + HDR, MAXPKT);

			if (n < 0) {
				fprintf(stderr, "opus_encode: %s\n",
					opus_strerror(n));
				return 1;
			}
			memset(pkt, 0xff, 6);			/* broadcast */
			memcpy(pkt + 6, "\x02\x00\x00\x4c\x56", 5);
			pkt[11] = o.stream;
			pkt[12] = 0xac;
			pkt[13] = o.id;
			p = pkt + 14;
			memcpy(p, "LV", 2);
			p[2] = 1;
			p[3] = o.stream;
			*(uint32_t *)(p + 4) = htonl(sent);
			*(uint32_t *)(p + 8) = htonl(nframes);
			now = now_ns();		/* after encoding: the send time */
			*(uint32_t *)(p + 12) = htonl((uint64_t)now >> 32);
			*(uint32_t *)(p + 16) = htonl((uint32_t)now);
			*(uint16_t *)(p + 20) = htons(n);
			/* ENOTCONN: the stack is being changed; try again */
			t_send = now_ns();
			while (send(fd, pkt, 14 + HDR + n, 0) < 0) {
				if (errno != ENOTCONN && errno != ENOBUFS &&
				    errno != EAGAIN)
					die("send");
				retries++;
				usleep(500);
			}
			t_send = now_ns() - t_send;
			if (t_send > max_send_ns)
				max_send_ns = t_send;
			sent++;
			next_send += PERIOD_NS;
			if (sent == nframes)
				tx_done = now_ns();
			continue;	/* drain the socket before the next send */
		}

		/* done: everything sent and played, or the peer went quiet */
		quiet_since = last_rx > tx_done ? last_rx : tx_done;
		if (sent >= nframes &&
		    ((peer_total && played >= peer_total &&
		      (received >= peer_total || now - last_rx > 1e9)) ||
		     (quiet_since && now - quiet_since > o.idle * 1e9) ||
		     (!last_rx && now - t0 > (o.idle + o.delay + 10) * 1e9)))
			break;

		wake = sent < nframes ? next_send : now + 50000000LL;
		if (next_play && next_play < wake)
			wake = next_play;
		if (poll(&pfd, 1, wake > now ? (wake - now) / 1000000 + 1 : 0) < 0 &&
		    errno != EINTR)
			die("poll");
	}
	fclose(log);
	write_wav(o.out, outpcm, (size_t)played * FRAME);
	if (o.received)
		decode_in_order(o.received, rx, peer_total);
	printf("{\"name\": \"%s\", \"sent\": %u, \"peer_total\": %u, \"received\": %u, "
	       "\"played\": %u, \"lost\": %u, \"late\": %u, \"duplicates\": %u, "
	       "\"max_gap_ms\": %.3f, \"max_path_gap_ms\": %.3f, "
	       "\"send_retries\": %u, \"max_send_ms\": %.3f}\n",
	       o.name, sent, peer_total, received, played, lost, late, dup,
	       max_gap_ms, max_path_gap_ms, retries, max_send_ns / 1e6);
	close(fd);
	opus_encoder_destroy(enc);
	opus_decoder_destroy(dec);
	return 0;
}
