/* Positioned writes of downloaded parts into one preallocated temp file, with the part's
 * CRC-64/XZ updated over exactly the bytes that reached the file.
 *
 * Every function returns 0 (or a file descriptor) on success and -errno on failure, so the
 * Cython layer turns failures into OSError(errno, strerror, path) in one place. None of them
 * touches Python objects: all are safe to call with the GIL released. */
#ifndef COSFAST_PARTWRITER_H
#define COSFAST_PARTWRITER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opens `path` write-only and close-on-exec. create != 0: creates it (mode 0644 & ~umask)
 * when missing and sets *created to 1 if this call made it; an existing file keeps its bytes
 * (resume reuses them). create == 0: the file must exist. Returns the fd or -errno. */
int cosfast_pw_open(const char *path, int create, int *created);

/* A close-on-exec duplicate of `fd` (which shares its file offset and locks), or -errno. */
int cosfast_pw_dup(int fd);

/* Makes the file exactly `size` bytes. preallocate != 0 reserves the blocks, so a full disk
 * fails here with -ENOSPC rather than mid-download; file systems that cannot preallocate fall
 * back to a sparse ftruncate. Returns 0 or -errno. */
int cosfast_pw_set_size(int fd, uint64_t size, int preallocate);

/* Writes all `len` bytes of `buf` at `offset` (short writes continued, EINTR retried) and
 * feeds the same bytes to the CRC while they are still in cache. On return *done holds how
 * many bytes reached the file and *crc the CRC continued over exactly those bytes, also when
 * the write failed part way. Returns 0 or -errno.
 *
 * `serialize` (may be NULL) is held around each pwrite, not around the CRC. Buffered writes to
 * one file take the inode's lock exclusively, and a second writer waits for it by spinning on
 * its CPU: threads writing parts of the same file queue on this mutex instead, asleep, leaving
 * the CPU to the thread that receives the next bytes. */
int cosfast_pw_write(int fd, pthread_mutex_t *serialize, const unsigned char *buf, size_t len,
                     uint64_t offset, uint64_t *crc, size_t *done);

/* Like cosfast_pw_write, and adds to *write_ns the nanoseconds spent inside pwrite itself (not
 * waiting for `serialize`, not in the CRC): how fast the page cache takes the bytes. */
int cosfast_pw_write_timed(int fd, pthread_mutex_t *serialize, const unsigned char *buf,
                           size_t len, uint64_t offset, uint64_t *crc, size_t *done,
                           uint64_t *write_ns);

/* Asks the kernel to put [offset, offset+len) of the file into the page cache now
 * (POSIX_FADV_WILLNEED). On a file that is still to be written this allocates the page-cache
 * folios ahead of the writes; see PartSink's prefetch in _partwriter.pyx for why. Returns 0 or
 * -errno; failure only means no prefetch. */
int cosfast_pw_prefetch(int fd, uint64_t offset, uint64_t len);

/* Page recycling. On a VM whose host takes back the memory the guest frees, writing into fresh
 * page-cache pages costs several times more than writing into pages the guest just freed. One
 * recycling step starts writeback of every dirty page of the file (SYNC_FILE_RANGE_WRITE,
 * asynchronous) and drops its clean pages (POSIX_FADV_DONTNEED: those whose writeback ended
 * since the last step; dirty pages and pages under writeback stay), so the next writes take the
 * freed pages. Failures are ignored: both calls are advice. */
void cosfast_pw_recycle_step(int fd);
void cosfast_pw_writeback(int fd);
void cosfast_pw_drop_clean(int fd);
/* Writes back every dirty page of the file, waits until all its writeback has ended, then drops
 * its pages: none stays in the page cache (for the end of a download). Failures are ignored. */
void cosfast_pw_drop_all(int fd);

/* fdatasync / fsync, retried on EINTR. Return 0 or -errno. */
int cosfast_pw_fdatasync(int fd);
int cosfast_pw_fsync(int fd);

/* close(2), not retried on EINTR (on Linux the fd is gone either way). Returns 0 or -errno. */
int cosfast_pw_close(int fd);

#ifdef __cplusplus
}
#endif
#endif
