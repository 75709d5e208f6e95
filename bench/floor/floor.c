// floor: the machine's floor for framehub's transport, in C.
//
//   floor rtt N          N round trips of a 64-byte SEQPACKET message between
//                        two processes; prints round trips per second.
//   floor paced N MS     every MS milliseconds the parent sends a 64-byte
//                        message carrying one memfd and its CLOCK_MONOTONIC
//                        send time; the child receives it, closes the fd,
//                        and sends a 16-byte release back. Prints the child's
//                        CPU per message and the delivery latency p50/p99.
//   floor fanout N MS K [CONSUMER]
//                        a producer that wakes every MS milliseconds on its
//                        own clock and sends each of K consumers a 64-byte
//                        message, N times. The first message to each
//                        consumer carries a memfd, the others none: as
//                        framehub announces a surface's fds once and then
//                        names the surface in each Frame (a transport that
//                        passes an fd with every frame pays ~8 µs more per
//                        consumer and frame here). A consumer receives a
//                        message, closes its fd if any and releases it by
//                        incrementing its counter in shared memory (framehub's
//                        release ring, at its cheapest: no system call, no
//                        wake-up of the producer, which reads the counters on
//                        its next tick). The consumers are this program's
//                        children, or CONSUMER executed with the socket on
//                        fd 3 and the counters' memfd on fd 4 (counter i at
//                        byte 64*i, i in the environment's FLOOR_INDEX).
//                        Prints the producer's CPU per frame and the
//                        consumers' per frame each: what waking K consumers
//                        once per frame costs with nothing else done.
//
// Output is one JSON object on stdout.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t mono(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static int cmp64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t cpu_ns(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

// sleep_until_next advances next by ms milliseconds and sleeps until then.
static void sleep_until_next(struct timespec *next, long ms) {
	next->tv_nsec += ms * 1000000;
	while (next->tv_nsec >= 1000000000) { next->tv_nsec -= 1000000000; next->tv_sec++; }
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, next, NULL) == EINTR) {}
}

// send_fd sends the 64 bytes of buf with fd attached (SCM_RIGHTS) on s.
static void send_fd(int s, char *buf, int fd) {
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {buf, 64};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(s, &m, 0) != 64) die("sendmsg");
}

static void rtt(long n) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) die("socketpair");
	char buf[64] = {0};
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		close(sv[0]);
		for (;;) {
			ssize_t r = recv(sv[1], buf, sizeof buf, 0);
			if (r <= 0) _exit(0);
			if (send(sv[1], buf, r, 0) != r) _exit(1);
		}
	}
	close(sv[1]);
	int64_t t0 = mono();
	for (long i = 0; i < n; i++) {
		if (send(sv[0], buf, 64, 0) != 64) die("send");
		if (recv(sv[0], buf, sizeof buf, 0) != 64) die("recv");
	}
	int64_t t1 = mono();
	close(sv[0]);
	waitpid(pid, NULL, 0);
	double secs = (t1 - t0) / 1e9;
	printf("{\"mode\":\"rtt\",\"round_trips\":%ld,\"per_second\":%.0f,\"rtt_us\":%.2f}\n", n, n / secs, secs * 1e6 / n);
}

static void paced(long n, long ms) {
	int sv[2], res[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) die("socketpair");
	if (pipe(res)) die("pipe");
	int mfd = memfd_create("floor", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 3110400)) die("memfd");
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		close(sv[0]);
		int64_t *lat = calloc(n, sizeof *lat);
		char buf[64], cbuf[CMSG_SPACE(sizeof(int))];
		int64_t c0 = cpu_ns();
		long got = 0;
		for (; got < n; got++) {
			struct iovec iov = {buf, sizeof buf};
			struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
			ssize_t r = recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC);
			if (r <= 0) break;
			int64_t now = mono(), sent;
			memcpy(&sent, buf, 8);
			lat[got] = now - sent;
			struct cmsghdr *c = CMSG_FIRSTHDR(&m);
			if (c && c->cmsg_type == SCM_RIGHTS) {
				int fd;
				memcpy(&fd, CMSG_DATA(c), sizeof fd);
				close(fd);
			}
			if (send(sv[1], buf, 16, 0) != 16) break;
		}
		int64_t c1 = cpu_ns();
		qsort(lat, got, sizeof *lat, cmp64);
		char out[256];
		int len = snprintf(out, sizeof out,
			"{\"mode\":\"paced\",\"messages\":%ld,\"interval_ms\":%ld,\"consumer_cpu_us_per_msg\":%.1f,"
			"\"latency_p50_us\":%.1f,\"latency_p99_us\":%.1f}\n",
			got, ms, got ? (c1 - c0) / 1e3 / got : 0, got ? lat[got / 2] / 1e3 : 0, got ? lat[got * 99 / 100] / 1e3 : 0);
		if (write(res[1], out, len) != len) _exit(1);
		_exit(0);
	}
	close(sv[1]);
	close(res[1]);
	char buf[64] = {0};
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long i = 0; i < n; i++) {
		sleep_until_next(&next, ms);
		int64_t now = mono();
		memcpy(buf, &now, 8);
		send_fd(sv[0], buf, mfd);
		if (recv(sv[0], buf, sizeof buf, 0) != 16) die("recv release");
	}
	close(sv[0]);
	char out[256];
	ssize_t r = read(res[0], out, sizeof out - 1);
	waitpid(pid, NULL, 0);
	if (r > 0) fwrite(out, 1, r, stdout);
}

// proc_cpu_ns is the CPU time of every thread of process pid so far
// (/proc/PID/task/*/schedstat, nanoseconds); -1 when it cannot be read.
static int64_t proc_cpu_ns(pid_t pid) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d) return -1;
	int64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.') continue;
		char p[320];
		snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		FILE *f = fopen(p, "r");
		if (!f) continue;
		long long ns;
		if (fscanf(f, "%lld", &ns) == 1) sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum;
}

static void fanout_consumer(int s, volatile uint64_t *released) {
	char buf[64], cbuf[CMSG_SPACE(sizeof(int))];
	for (;;) {
		struct iovec iov = {buf, sizeof buf};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
		if (recvmsg(s, &m, MSG_CMSG_CLOEXEC) <= 0) _exit(0);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		if (c && c->cmsg_type == SCM_RIGHTS) {
			int fd;
			memcpy(&fd, CMSG_DATA(c), sizeof fd);
			close(fd);
		}
		__atomic_fetch_add(released, 1, __ATOMIC_RELEASE);
	}
}

static void fanout(long n, long ms, int k, const char *consumer) {
	if (k < 0 || k > 64) { fprintf(stderr, "fanout: K %d not in 0..64\n", k); exit(2); }
	int mfd = memfd_create("floor", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 3110400)) die("memfd");
	int cfd = memfd_create("floor-released", 0);
	if (cfd < 0 || ftruncate(cfd, 64 * 64)) die("memfd counters");
	volatile uint64_t *released = mmap(NULL, 64 * 64, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
	if (released == MAP_FAILED) die("mmap counters");
	int s[64];
	pid_t pids[64];
	for (int i = 0; i < k; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) die("socketpair");
		pid_t pid = fork();
		if (pid < 0) die("fork");
		if (pid == 0) {
			close(sv[0]);
			if (consumer) {
				char idx[16];
				snprintf(idx, sizeof idx, "%d", i);
				setenv("FLOOR_INDEX", idx, 1);
				if (dup2(sv[1], 3) < 0 || dup2(cfd, 4) < 0) _exit(1);
				execl(consumer, consumer, (char *)NULL);
				perror(consumer);
				_exit(1);
			}
			fanout_consumer(sv[1], &released[i * 8]);
		}
		close(sv[1]);
		s[i] = sv[0];
		pids[i] = pid;
	}
	char buf[64] = {0};
	uint64_t sent = 0, lag = 0;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	// The first second is warm-up (a Go consumer's start-up is not the cost
	// of a frame); the window starts after it.
	const long warm = 1000 / ms + 1;
	int64_t c0 = 0, k0 = 0;
	for (long f = 0; f < n + warm; f++) {
		if (f == warm) {
			c0 = cpu_ns();
			for (int i = 0; i < k; i++) k0 += proc_cpu_ns(pids[i]);
		}
		sleep_until_next(&next, ms);
		for (int i = 0; i < k; i++) {
			// The previous frame's release, read on this tick.
			if (__atomic_load_n(&released[i * 8], __ATOMIC_ACQUIRE) + 1 < sent) lag++;
			if (f == 0)
				send_fd(s[i], buf, mfd); // the surface's announce
			else if (send(s[i], buf, 64, 0) != 64)
				die("send");
		}
		sent++;
	}
	int64_t c1 = cpu_ns(), k1 = 0;
	for (int i = 0; i < k; i++) k1 += proc_cpu_ns(pids[i]);
	for (int i = 0; i < k; i++) close(s[i]);
	uint64_t got = 0;
	int bad = 0;
	for (;;) {
		int st;
		if (wait(&st) < 0) break;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
	}
	for (int i = 0; i < k; i++) got += released[i * 8];
	if (bad) { fprintf(stderr, "fanout: a consumer failed\n"); exit(1); }
	int64_t ch = k1 - k0;
	printf("{\"mode\":\"fanout\",\"fd_per_frame\":0,\"frames\":%ld,\"interval_ms\":%ld,\"consumers\":%d,\"go\":%d,"
	       "\"producer_cpu_us_per_frame\":%.1f,\"consumer_cpu_us_per_frame\":%.1f,\"total_cpu_us_per_frame\":%.1f,"
	       "\"released\":%llu,\"late_releases\":%llu}\n",
	       n, ms, k, consumer != NULL, (c1 - c0) / 1e3 / n, k ? ch / 1e3 / n / k : 0, ((c1 - c0) + ch) / 1e3 / n,
	       (unsigned long long)got, (unsigned long long)lag);
}

int main(int argc, char **argv) {
	if (argc >= 3 && !strcmp(argv[1], "rtt")) rtt(atol(argv[2]));
	else if (argc >= 4 && !strcmp(argv[1], "paced")) paced(atol(argv[2]), atol(argv[3]));
	else if (argc >= 5 && !strcmp(argv[1], "fanout")) fanout(atol(argv[2]), atol(argv[3]), atoi(argv[4]), argc >= 6 ? argv[5] : NULL);
	else { fprintf(stderr, "usage: floor rtt N | floor paced N MS | floor fanout N MS K [CONSUMER]\n"); return 2; }
	return 0;
}
