// SPDX-License-Identifier: GPL-2.0
/*
 * lanalab-init: PID 1 of the LANA lab guest, and its shutdown/poweroff.
 *
 * As PID 1 it mounts the pseudo file systems and sets the host name from
 * lana.hostname= on the kernel command line (system calls here, where a shell
 * would spend a second under TCG exec'ing mount(8) ten times), runs
 * /etc/lanalab/rc (links up, 9p share, qemu-ga), then does the one job a shell
 * cannot do well: reap every orphan, forever. SIGTERM, SIGUSR2, SIGPWR and
 * SIGINT (what `kill 1`, busybox poweroff, a power button and ctrl-alt-del
 * send) power off.
 *
 * Installed as /sbin/{shutdown,poweroff,halt,reboot} too: run under any of
 * those names it syncs and powers the VM off at once (reboot, or shutdown -r,
 * reboots). qemu-ga's guest-shutdown runs `/sbin/shutdown -h -P +0 ...`, so a
 * lab VM stops in well under a second instead of walking a service manager.
 *
 * The initramfs runs it as `load-modules LIST [PREFIX]`: finit_module(2) on
 * each .ko path in LIST, in order. One process for twenty modules instead of
 * twenty insmod processes saves a good part of a second under TCG.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define RC_PATH "/etc/lanalab/rc"
#define HOSTNAME_ARG "lana.hostname="

struct mount_spec {
	const char *source, *target, *type;
	unsigned long flags;
	const char *data;
};

static const struct mount_spec mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	/* EBUSY when the initramfs moved its devtmpfs here: fine */
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=755" },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	  "gid=5,mode=620,ptmxmode=666" },
	{ "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755" },
	{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
};

static const char *const dev_links[][2] = {
	{ "/proc/self/fd", "/dev/fd" },
	{ "/proc/self/fd/0", "/dev/stdin" },
	{ "/proc/self/fd/1", "/dev/stdout" },
	{ "/proc/self/fd/2", "/dev/stderr" },
};

static void mount_all(void)
{
	const struct mount_spec *m;
	size_t i;

	for (i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		m = &mounts[i];
		mkdir(m->target, 0755);
		if (mount(m->source, m->target, m->type, m->flags, m->data) &&
		    errno != EBUSY)
			fprintf(stderr, "lanalab-init: mount %s on %s: %s\n",
				m->type, m->target, strerror(errno));
	}
	for (i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++)
		symlink(dev_links[i][0], dev_links[i][1]);
	mkdir("/run/lock", 01777);
}

static void set_hostname(void)
{
	char cmdline[4096], *arg, *save = NULL;
	const char *name = "lana";
	ssize_t len;
	int fd;

	fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	len = fd < 0 ? -1 : read(fd, cmdline, sizeof(cmdline) - 1);
	if (fd >= 0)
		close(fd);
	cmdline[len > 0 ? len : 0] = '\0';
	for (arg = strtok_r(cmdline, " \n", &save); arg;
	     arg = strtok_r(NULL, " \n", &save))
		if (!strncmp(arg, HOSTNAME_ARG, strlen(HOSTNAME_ARG)) &&
		    arg[strlen(HOSTNAME_ARG)])
			name = arg + strlen(HOSTNAME_ARG);
	if (sethostname(name, strlen(name)))
		fprintf(stderr, "lanalab-init: sethostname %s: %s\n", name,
			strerror(errno));
}

static int load_one(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0) {
		fprintf(stderr, "load-modules: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ret = syscall(SYS_finit_module, fd, "", 0);
	if (ret && errno == EEXIST)
		ret = 0;
	else if (ret)
		fprintf(stderr, "load-modules: %s: %s\n", path, strerror(errno));
	close(fd);
	return ret;
}

/* load-modules LIST [PREFIX]: exit status is the number of failures (max 100) */
static int load_modules(int argc, char **argv)
{
	char line[512], path[1024];
	const char *prefix = argc > 2 ? argv[2] : "";
	int failed = 0;
	size_t len;
	FILE *list;

	if (argc < 2) {
		fprintf(stderr, "usage: load-modules LIST [PREFIX]\n");
		return 100;
	}
	list = fopen(argv[1], "re");
	if (!list) {
		fprintf(stderr, "load-modules: %s: %s\n", argv[1], strerror(errno));
		return 100;
	}
	while (fgets(line, sizeof(line), list)) {
		len = strcspn(line, "\r\n");
		line[len] = '\0';
		if (!len)
			continue;
		snprintf(path, sizeof(path), "%s%s", prefix, line);
		if (load_one(path) && failed < 100)
			failed++;
	}
	fclose(list);
	return failed;
}

static void power_action(int how)
{
	sync();
	reboot(how);
	/* only reached without CAP_SYS_BOOT */
	fprintf(stderr, "lanalab-init: reboot(2) failed: %s\n", strerror(errno));
	_exit(1);
}

static int wants_reboot(const char *name, int argc, char **argv)
{
	int i;

	if (!strcmp(name, "reboot"))
		return 1;
	if (strcmp(name, "shutdown"))
		return 0;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reboot"))
			return 1;
		/* short options only: "--poweroff" has an 'r' too */
		if (argv[i][0] == '-' && argv[i][1] != '-' && strchr(argv[i], 'r'))
			return 1;
	}
	return 0;
}

static pid_t start_rc(const sigset_t *orig)
{
	pid_t pid = fork();

	if (pid == 0) {
		sigprocmask(SIG_SETMASK, orig, NULL);
		setsid();
		execl("/bin/sh", "sh", RC_PATH, (char *)NULL);
		fprintf(stderr, "lanalab-init: cannot run %s: %s\n", RC_PATH,
			strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		fprintf(stderr, "lanalab-init: fork: %s\n", strerror(errno));
	return pid;
}

static void reap(pid_t rc)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != rc)
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fprintf(stderr, "lanalab: %s failed (status %d); the guest is not ready\n",
				RC_PATH, status);
	}
}

static void __attribute__((noreturn)) run_as_init(void)
{
	sigset_t all, orig;
	siginfo_t info;
	pid_t rc;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &orig);
	/* ctrl-alt-del arrives as SIGINT instead of an instant reboot */
	reboot(RB_DISABLE_CAD);
	mount_all();
	set_hostname();
	rc = start_rc(&orig);

	for (;;) {
		if (sigwaitinfo(&all, &info) < 0)
			continue;
		switch (info.si_signo) {
		case SIGCHLD:
			reap(rc);
			break;
		case SIGTERM:
		case SIGUSR2:
		case SIGPWR:
		case SIGINT:
			power_action(RB_POWER_OFF);
			break;
		default:
			break;
		}
	}
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/');

	name = name ? name + 1 : argv[0];
	if (!strcmp(name, "load-modules"))
		return load_modules(argc, argv);
	if (getpid() == 1)
		run_as_init();
	power_action(wants_reboot(name, argc, argv) ? RB_AUTOBOOT : RB_POWER_OFF);
	return 1;
}
