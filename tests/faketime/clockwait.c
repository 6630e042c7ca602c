/* Timed waits on a monotonic clock for programs run under Debian's faketime (libfaketime 0.9.10).
 *
 * libfaketime shifts CLOCK_MONOTONIC along with the wall clock, and translates the deadlines of
 * the waits it knows (nanosleep, pthread_cond_timedwait, sem_timedwait, poll, ...) back to the
 * kernel's clock. It does not know the two waits glibc 2.30 added, sem_clockwait and
 * pthread_cond_clockwait, so their deadline reaches the kernel in faked time: months or years
 * ahead. Python 3.11 waits with sem_clockwait(CLOCK_MONOTONIC) in every Lock.acquire(timeout=),
 * Event.wait(t), Queue.get(timeout=) and Thread.join(t), so under faketime alone those never time
 * out (wolfcw/libfaketime#390, #469). `faketime --exclude-monotonic` is no way out: Python's
 * time.sleep then fails with EINVAL (#426) and the GIL hand-over crawls.
 *
 * Preloaded before libfaketime (LD_PRELOAD=clockwait.so faketime ...), these two wrappers move
 * the deadline by the difference between the faked and the kernel's reading of the same clock,
 * then call glibc. `make test-clock` builds and uses it; nothing else does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL

static struct timespec kernel_deadline(clockid_t clock, const struct timespec *faked_deadline)
{
    struct timespec faked_now, kernel_now, deadline;
    clock_gettime(clock, &faked_now);              /* libfaketime's reading */
    syscall(SYS_clock_gettime, clock, &kernel_now); /* the kernel's */
    long long ns = (faked_deadline->tv_sec - faked_now.tv_sec) * NS + (faked_deadline->tv_nsec - faked_now.tv_nsec);
    ns += kernel_now.tv_sec * NS + kernel_now.tv_nsec;
    deadline.tv_sec = ns / NS;
    deadline.tv_nsec = ns % NS;
    return deadline;
}

int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abstime)
{
    static int (*glibc)(sem_t *, clockid_t, const struct timespec *);
    if (!glibc)
        glibc = dlsym(RTLD_NEXT, "sem_clockwait");
    struct timespec deadline = kernel_deadline(clock, abstime);
    return glibc(sem, clock, &deadline);
}

int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clock,
                           const struct timespec *abstime)
{
    static int (*glibc)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
    if (!glibc)
        glibc = dlsym(RTLD_NEXT, "pthread_cond_clockwait");
    struct timespec deadline = kernel_deadline(clock, abstime);
    return glibc(cond, mutex, clock, &deadline);
}
