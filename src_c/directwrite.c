/* O_DIRECT stage writes through Linux native AIO. See directwrite.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_DIRECT */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "directwrite.h"

#if defined(__linux__)
#include <linux/aio_abi.h>
#include <linux/fs.h> /* RWF_NOWAIT */
#include <sys/syscall.h>

int cosfast_dw_open(int fd) {
    char path[64];
    int direct;
    /* Through /proc rather than the file's name: the name may have been renamed or replaced. */
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    do direct = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    while (direct < 0 && errno == EINTR);
    return direct < 0 ? -errno : direct;
}

int cosfast_dw_setup(unsigned depth, uint64_t *ctx) {
    aio_context_t c = 0;
    if (syscall(SYS_io_setup, depth, &c) < 0)
        return -errno;
    *ctx = (uint64_t)c;
    return 0;
}

int cosfast_dw_submit(uint64_t ctx, int fd, const unsigned char *buf, size_t len, uint64_t offset,
                      uint64_t tag) {
    struct iocb cb;
    struct iocb *list[1] = {&cb};
    long rc;
    memset(&cb, 0, sizeof cb);
    cb.aio_fildes = (uint32_t)fd;
    cb.aio_lio_opcode = IOCB_CMD_PWRITE;
    cb.aio_buf = (uint64_t)(uintptr_t)buf;
    cb.aio_nbytes = len;
    cb.aio_offset = (int64_t)offset;
    cb.aio_data = tag;
    /* Never wait in the submission: behind a buffered writer holding the inode's lock, or for a
     * full device queue, the kernel says EAGAIN instead, and the stage goes buffered. */
    cb.aio_rw_flags = RWF_NOWAIT;
    do rc = syscall(SYS_io_submit, (aio_context_t)ctx, 1L, list);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    return rc == 1 ? 0 : -EAGAIN;
}

int cosfast_dw_reap(uint64_t ctx, int min_done, int max, uint64_t *tags, int64_t *results) {
    struct io_event events[64];
    long n;
    if (max > 64)
        max = 64;
    if (min_done > max)
        min_done = max;
    do n = syscall(SYS_io_getevents, (aio_context_t)ctx, (long)min_done, (long)max, events, NULL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (long i = 0; i < n; i++) {
        tags[i] = events[i].data;
        results[i] = events[i].res;
    }
    return (int)n;
}

int cosfast_dw_destroy(uint64_t ctx) {
    /* io_destroy cancels what it can and waits for the rest, so no write can still be reading
     * a buffer once it returns. */
    if (syscall(SYS_io_destroy, (aio_context_t)ctx) < 0)
        return -errno;
    return 0;
}

#else /* no native AIO: every stage goes through the page cache */

int cosfast_dw_open(int fd) { return -ENOSYS; }
int cosfast_dw_setup(unsigned depth, uint64_t *ctx) { return -ENOSYS; }
int cosfast_dw_submit(uint64_t ctx, int fd, const unsigned char *buf, size_t len, uint64_t offset,
                      uint64_t tag) { return -ENOSYS; }
int cosfast_dw_reap(uint64_t ctx, int min_done, int max, uint64_t *tags, int64_t *results) { return -ENOSYS; }
int cosfast_dw_destroy(uint64_t ctx) { return 0; }

#endif

unsigned char *cosfast_dw_alloc(size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, COSFAST_DW_ALIGN, size ? size : 1) != 0)
        return NULL;
    return (unsigned char *)p;
}
