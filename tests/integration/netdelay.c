/*
 * netdelay.c: a network cable that delays every frame, in user space, for
 * the cluster test (tests/integration/test_cluster.py builds and runs it).
 *
 *   netdelay DELAY_US IF_A IF_B
 *
 * Makes two TAP devices, IF_A and IF_B, in the network namespace it runs
 * in, and forwards every Ethernet frame read from one to the other
 * DELAY_US microseconds after it arrived, in order.  Attach each to a
 * bridge (ip link set IF_A master BR up) and the hosts on the two bridges
 * talk through it, DELAY_US further apart each way: a round trip costs
 * twice that more.  Prints "ready" once both devices exist; on SIGTERM or
 * SIGINT it prints how late it forwarded the frames and exits, and the
 * devices go with it.  On SIGUSR1 it prints the same for the frames since
 * the last SIGUSR1 (or the start), a line that begins "window", and goes
 * on: the bench sends one before and one after each measurement, so that
 * it reads the lateness of that window alone.
 *
 * Why in user space: netem, the kernel's delaying queue, is not in this
 * machine's kernel, and neither is fq, which would hold packets until a
 * departure time a BPF program stamps on them (tc qdisc add ... netem, or
 * fq: "Specified qdisc kind is unknown"); tbf and htb are there, but they
 * delay a packet by its size over a rate, not by a fixed time.
 *
 * How faithful: the delay is per frame, as netem's is, so TCP runs end to
 * end with its real round trip (handshakes, acknowledgements, pipelined
 * statements in flight together); nothing is proxied or reassembled.
 * Frames leave late by the time this process takes to wake up and copy
 * them, which the exit line reports (median and 99th percentile); it runs
 * on the machine it measures, where a busy moment delays its wake-ups.
 * No jitter, loss or bandwidth limit is modelled.  Each direction is a
 * queue in arrival order (the delay is the same for every frame), of
 * RING frames of at most FRAME_MAX bytes (the bridges' MTU is 1500): a
 * frame beyond either is dropped, and counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX 2048
#define RING 4096
#define LATE_MAX_US 10000 /* lateness histogram: 1 us buckets up to this */

struct frame {
    int64_t due; /* ns, CLOCK_MONOTONIC */
    size_t len;
    unsigned char data[FRAME_MAX];
};

/* One direction: frames read from in, written to out when due. */
struct lane {
    int in, out;
    struct frame *ring;
    unsigned head, tail; /* next to send, next free */
};

/* How late frames left: a histogram in microseconds, and the drops. */
struct tally {
    unsigned long late_us[LATE_MAX_US + 1];
    unsigned long frames, dropped;
};

static volatile sig_atomic_t stop, report;
static struct tally life, window; /* since the start; since the last report */

static void
on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static void
on_report(int sig)
{
    (void)sig;
    report = 1;
}

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* open_tap: a TAP device named name, gone when the descriptor closes. */
static int
open_tap(const char *name)
{
    struct ifreq ifr;
    int fd;

    if ((fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) == -1)
        return -1;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

/* send_due: write out every frame of l due by now. */
static void
send_due(struct lane *l, int64_t now)
{
    struct frame *f;
    int64_t late;

    while (l->head != l->tail && (f = &l->ring[l->head % RING])->due <= now) {
        /* A device that is down loses the frame, as a cable would. */
        if (write(l->out, f->data, f->len) == -1 && errno == EINTR)
            continue;
        late = (now - f->due) / 1000;
        if (late > LATE_MAX_US)
            late = LATE_MAX_US;
        life.late_us[late]++;
        window.late_us[late]++;
        life.frames++;
        window.frames++;
        l->head++;
    }
}

/* take: read every frame waiting on l's input, due at now + delay. */
static void
take(struct lane *l, int64_t now, int64_t delay)
{
    unsigned char spill[65536];
    struct frame *f;
    ssize_t n;

    for (;;) {
        if (l->tail - l->head == RING) {
            if (read(l->in, spill, sizeof(spill)) <= 0)
                return;
            life.dropped++;
            window.dropped++;
            continue;
        }
        f = &l->ring[l->tail % RING];
        if ((n = read(l->in, f->data, sizeof(f->data))) <= 0)
            return; /* EAGAIN: all taken */
        f->len = (size_t)n;
        f->due = now + delay;
        l->tail++;
    }
}

/* percentile: the lateness (us) below which a fraction p of t's frames
 * left; 0 when none did. */
static long
percentile(const struct tally *t, double p)
{
    unsigned long seen = 0, want = (unsigned long)(p * (double)t->frames);
    long us;

    if (t->frames == 0)
        return 0;
    for (us = 0; us < LATE_MAX_US; us++)
        if ((seen += t->late_us[us]) > want)
            break;
    return us;
}

/* print_window: the report of the frames since the last one, then a new
 * window.  Written at once: a reader waits for it. */
static void
print_window(void)
{
    printf("window frames %lu, late by median %ld us, p99 %ld us, "
           "dropped %lu\n",
           window.frames, percentile(&window, 0.5), percentile(&window, 0.99),
           window.dropped);
    fflush(stdout);
    memset(&window, 0, sizeof(window));
}

int
main(int argc, char **argv)
{
    struct lane lanes[2];
    struct pollfd pfd[2];
    struct sigaction sa;
    sigset_t block, none;
    struct timespec ts;
    int64_t delay, now, next;
    char *end;
    long us;
    int fa, fb, i;

    if (argc != 4 || (us = strtol(argv[1], &end, 10)) < 0 || *end != '\0' ||
        us > 10000000) {
        fprintf(stderr, "usage: netdelay DELAY_US IF_A IF_B\n");
        return 2;
    }
    delay = (int64_t)us * 1000;
    /* The kernel may otherwise wake ppoll() up to 50 us late, on purpose. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    /* SIGTERM, SIGINT and SIGUSR1 come in only while waiting. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_report;
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&none);

    if ((fa = open_tap(argv[2])) == -1 || (fb = open_tap(argv[3])) == -1) {
        fprintf(stderr, "netdelay: TAP device: %s\n", strerror(errno));
        return 1;
    }
    lanes[0] = (struct lane){fa, fb, calloc(RING, sizeof(struct frame)), 0, 0};
    lanes[1] = (struct lane){fb, fa, calloc(RING, sizeof(struct frame)), 0, 0};
    if (lanes[0].ring == NULL || lanes[1].ring == NULL) {
        fprintf(stderr, "netdelay: out of memory\n");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    while (!stop) {
        if (report) {
            report = 0;
            print_window();
        }
        now = now_ns();
        next = INT64_MAX;
        for (i = 0; i < 2; i++) {
            send_due(&lanes[i], now);
            if (lanes[i].head != lanes[i].tail &&
                lanes[i].ring[lanes[i].head % RING].due < next)
                next = lanes[i].ring[lanes[i].head % RING].due;
            pfd[i].fd = lanes[i].in;
            pfd[i].events = POLLIN;
        }
        if (next != INT64_MAX) {
            next -= now_ns();
            if (next < 0)
                next = 0;
            ts.tv_sec = (time_t)(next / 1000000000);
            ts.tv_nsec = (long)(next % 1000000000);
        }
        if (ppoll(pfd, 2, next == INT64_MAX ? NULL : &ts, &none) <= 0)
            continue;
        now = now_ns();
        for (i = 0; i < 2; i++)
            if (pfd[i].revents & POLLIN)
                take(&lanes[i], now, delay);
    }
    printf("frames %lu, delay %ld us, late by median %ld us, p99 %ld us, "
           "dropped %lu\n",
           life.frames, us, percentile(&life, 0.5), percentile(&life, 0.99),
           life.dropped);
    return 0;
}
