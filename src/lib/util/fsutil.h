/* Files that are never half-written: staged to a temporary file in the same
 * directory, made durable, then published by rename, then the directory synced. */
#ifndef PQM_UTIL_FSUTIL_H
#define PQM_UTIL_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* Temporary files start with this, so recovery can find and remove leftovers. */
#define PQM_TMP_PREFIX ".pqmtls-tmp-"

struct pqm_staged_file {
    char *tmp;
    char *final;
    char sha256[65]; /* of the bytes written: how recovery recognises the file */
};

struct pqm_filetx {
    struct pqm_staged_file *files;
    size_t n, cap;
};

void pqm__filetx_init(struct pqm_filetx *tx);
/* Writes DATA to a temporary file beside FINAL with MODE. Nothing is visible yet. */
int pqm__filetx_stage(struct pqm_filetx *tx, const char *final, const void *data, size_t len,
                      mode_t mode, struct pqm_err *e);
/* The same with the SHA-256 of DATA (64 hex characters) already known. */
int pqm__filetx_stage_hashed(struct pqm_filetx *tx, const char *final, const void *data,
                             size_t len, mode_t mode, const char *sha256, struct pqm_err *e);
/* The same, for a file that replaces LIKE: the new file gets LIKE's permissions, owner
 * and group (a key that a service's group may read stays readable by it), or MODE when
 * LIKE does not exist. Fails when the owner cannot be given (not root, not the owner). */
int pqm__filetx_stage_like(struct pqm_filetx *tx, const char *final, const void *data,
                           size_t len, const char *like, mode_t mode, struct pqm_err *e);
/* Above this many files one syncfs() is cheaper than an fsync() each. */
#define PQM_SYNCFS_THRESHOLD 16

/* Makes every staged file durable (fsync each; a large batch syncs the file system
 * once instead, with pqm__syncfs_of, after renaming). */
int pqm__filetx_sync(struct pqm_filetx *tx, struct pqm_err *e);
/* Flushes the whole file system that holds PATH (syncfs). */
int pqm__syncfs_of(const char *path, struct pqm_err *e);
/* Moves every staged file to its final name, refusing to replace an existing file,
 * then syncs the directories. On failure, what was already published stays. */
int pqm__filetx_publish(struct pqm_filetx *tx, struct pqm_err *e);
/* The same without syncing: the caller makes the renames durable itself (syncfs). */
int pqm__filetx_rename(struct pqm_filetx *tx, struct pqm_err *e);
/* Moves every staged file to its final name in the order staged, replacing what is
 * there (each rename atomic: a reader sees the old file or the new one, never a part),
 * then syncs the directories. The files must be durable first (pqm__filetx_sync). On
 * failure, what was already moved stays moved. */
int pqm__filetx_replace(struct pqm_filetx *tx, struct pqm_err *e);
/* Removes the temporary files that were not published and frees TX. */
void pqm__filetx_release(struct pqm_filetx *tx);

/* One file, durably, replacing FINAL if it exists. */
int pqm__write_file_atomic(const char *final, const void *data, size_t len, mode_t mode,
                           struct pqm_err *e);
/* A symbolic link FINAL -> TARGET, replacing whatever FINAL was, atomically and durably
 * (a temporary link beside it, renamed over it, the directory synced). */
int pqm__symlink_atomic(const char *target, const char *final, struct pqm_err *e);
/* Reads a whole file of at most MAX bytes; *OUT is NUL-terminated, free() it. */
int pqm__read_file(const char *path, size_t max, unsigned char **out, size_t *len,
                   struct pqm_err *e);
int pqm__fsync_dir(const char *dir, struct pqm_err *e);
/* Bounded join: DIR "/" NAME into OUT; -1 if it does not fit. */
int pqm__path_join(char *out, size_t outlen, const char *dir, const char *name);
/* Removes DIR/PQM_TMP_PREFIX<PREFIX>* files (PREFIX may be ""); returns how many were
 * removed, -1 on error. */
int pqm__remove_tmp_files(const char *dir, const char *prefix, struct pqm_err *e);
/* SHA-256 (hex) of the file staged for FINAL into OUT, or "-" when none was. */
void pqm__filetx_identity(const struct pqm_filetx *tx, const char *final, char *out,
                          size_t outlen);
/* The identities of the N files staged for FINALS (NULL: none) space-separated into OUT,
 * "-" for each that was not staged: what the inventory records of a certificate's files. */
void pqm__filetx_identities(const struct pqm_filetx *tx, char *const *finals, size_t n,
                            char *out, size_t outlen);
/* SHA-256 (hex) of the content of PATH into OUT: 1 when read, 0 when there is no such
 * file, -1 (with E set) when it cannot be read or is not a regular file of at most 16 MiB. */
int pqm__file_identity(const char *path, char out[65], struct pqm_err *e);
/* Removes PATH only if its content has the SHA-256 SHA (any content when SHA is NULL):
 * a file someone else wrote at that name stays. Content, not an inode number: inode
 * numbers are reused and device numbers change across reboots. Returns 1 when removed,
 * 0 when absent or another file, -1 (with E set) when it could not be read or removed. */
int pqm__unlink_if_same(const char *path, const char *sha, struct pqm_err *e);
/* Removes a directory tree (used only on directories this library created). */
int pqm__rmtree(const char *path);
/* A fingerprint of the identity of N files (device, inode, size and modification time of
 * each): replacing or rewriting any of them changes it. A missing file, or an empty or
 * NULL name, counts as all zeros, so that a file's return is noticed too. What the
 * gateway and the client compare to notice that their files changed on disk. */
uint64_t pqm__files_stamp(const char *const *files, size_t n);

#endif
