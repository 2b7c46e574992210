/* Stage writes that bypass the page cache: O_DIRECT writes submitted through Linux native AIO,
 * so the thread that submits them goes on receiving while the disk takes the bytes.
 *
 * Why: on a VM whose host takes back the memory the guest frees, every buffered write into fresh
 * page-cache pages pays for faulting those pages in (measured here: 1 GiB of 1 MiB buffered
 * pwrites 0.6-0.7 GB/s at 1.5-1.7 CPU s), while a direct write costs the guest almost nothing
 * (0.1 CPU s/GiB) but waits for the disk. A writer that sends each full stage direct when one of
 * its few AIO slots is free and writes it buffered otherwise uses both at once (1.1-1.8 GB/s at
 * 0.6-0.9 CPU s in the same state). A synchronous O_DIRECT pwrite would not do: it blocks the
 * receiving thread for the disk, and holds the inode's lock for as long, stalling the buffered
 * writers of the same file.
 *
 * Like partwriter.h: 0 (or a descriptor) on success, -errno on failure; no Python objects. */
#ifndef COSFAST_DIRECTWRITE_H
#define COSFAST_DIRECTWRITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Offsets, lengths and buffer addresses of direct writes must be multiples of this. 4096 covers
 * the logical block size of every disk Linux serves with O_DIRECT here (512 or 4096). */
#define COSFAST_DW_ALIGN 4096u

/* A second, O_DIRECT descriptor of the file `fd` is open on (a new open file description, so
 * the first one keeps its buffered mode), or -errno: -EINVAL where the file system has no
 * O_DIRECT (tmpfs), -ENOSYS where the platform has no native AIO. */
int cosfast_dw_open(int fd);

/* A native AIO context for up to `depth` writes in flight: *ctx on success. */
int cosfast_dw_setup(unsigned depth, uint64_t *ctx);

/* Submits one write of `len` bytes of `buf` at `offset` of `fd` (all aligned); `tag` comes back
 * with its completion. The buffer must stay untouched until then. Never waits: -EAGAIN when the
 * write cannot start at once (the inode's lock is taken, the device queue is full). */
int cosfast_dw_submit(uint64_t ctx, int fd, const unsigned char *buf, size_t len, uint64_t offset,
                      uint64_t tag);

/* Collects at least `min_done` (waiting for them) and at most `max` completions: tags[i] is the
 * tag of the i-th and results[i] its byte count or -errno. Returns how many, or -errno. */
int cosfast_dw_reap(uint64_t ctx, int min_done, int max, uint64_t *tags, int64_t *results);

/* Waits for every write still in flight, then frees the context. */
int cosfast_dw_destroy(uint64_t ctx);

/* A buffer of `size` bytes aligned for direct writes, or NULL. Free with free(). */
unsigned char *cosfast_dw_alloc(size_t size);

#ifdef __cplusplus
}
#endif
#endif
