#ifndef CLUSTERSQL_CEPOLL_SHIM_H
#define CLUSTERSQL_CEPOLL_SHIM_H
// epoll and eventfd, which Swift's Glibc module does not export. The wrappers
// take plain integers, so Swift never touches the packed `struct epoll_event`.
// Linux only: elsewhere the module is empty, and SocketReactor polls with poll(2).
#ifdef __linux__
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/// Arms `fd` once (EPOLLONESHOT) for reading (`direction` 0), writing (1) or
/// either (2), tagged with `tag`: re-arms an existing registration, adds one
/// when there is none. 0 or -1 (errno).
static inline int clustersql_epoll_arm(int epfd, int fd, int direction, uint64_t tag) {
    struct epoll_event event;
    event.events = (direction == 0 ? EPOLLIN : direction == 1 ? EPOLLOUT : (EPOLLIN | EPOLLOUT)) | EPOLLONESHOT;
    event.data.u64 = tag;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &event) == 0) return 0;
    if (errno != ENOENT) return -1;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) == 0) return 0;
    if (errno != EEXIST) return -1;
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &event);
}

/// Adds `fd` for reading, level-triggered, tagged with `tag` (the wake-up eventfd).
static inline int clustersql_epoll_watch(int epfd, int fd, uint64_t tag) {
    struct epoll_event event;
    event.events = EPOLLIN;
    event.data.u64 = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

/// `epoll_wait`, copying each ready event's tag into `tags`; the count, or -1 (errno).
static inline int clustersql_epoll_wait(int epfd, uint64_t *tags, int capacity, int timeout_ms) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(epfd, events, capacity, timeout_ms);
    for (int i = 0; i < count; i++) tags[i] = events[i].data.u64;
    return count;
}

static inline int clustersql_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int clustersql_eventfd_create(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }
static inline void clustersql_eventfd_signal(int fd) { uint64_t one = 1; ssize_t n = write(fd, &one, sizeof one); (void)n; }
static inline void clustersql_eventfd_drain(int fd) { uint64_t value; ssize_t n = read(fd, &value, sizeof value); (void)n; }

#endif  // __linux__
#endif
