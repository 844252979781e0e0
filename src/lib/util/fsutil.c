#define _GNU_SOURCE /* syncfs */
#include "util/fsutil.h"

#include <openssl/crypto.h>

#include "util/digest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>


int pqm__path_join(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

static int dir_of(const char *path, char *out, size_t outlen)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -1;
    const char *d = dirname(tmp);
    return snprintf(out, outlen, "%s", d) >= (int)outlen ? -1 : 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Six characters that make a temporary name unique (with O_EXCL to be sure). */
static void random_suffix(char out[7])
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        static unsigned counter;
        unsigned v = (unsigned)getpid() * 2654435761u + counter++;
        for (int i = 0; i < 6; i++, v /= 62)
            r[i] = (unsigned char)v;
    }
    for (int i = 0; i < 6; i++)
        out[i] = chars[r[i] % (sizeof(chars) - 1)];
    out[6] = '\0';
}

/* Creates DIR/.pqmtls-tmp-BASE-XXXXXX with MODE (less the umask) and writes DATA;
 * returns the path. */
static char *write_temp(const char *final, const void *data, size_t len, mode_t mode,
                        struct pqm_err *e)
{
    char dir[PATH_MAX], base_buf[PATH_MAX], suffix[7];
    int fd = -1;

    if (dir_of(final, dir, sizeof(dir)) != 0 ||
        snprintf(base_buf, sizeof(base_buf), "%s", final) >= (int)sizeof(base_buf)) {
        pqm__err_set(e, "%s: path too long", final);
        return NULL;
    }
    const char *base = basename(base_buf);
    size_t need = strlen(dir) + strlen(PQM_TMP_PREFIX) + strlen(base) + 16;
    char *tmp = malloc(need);
    if (tmp == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    for (int tries = 0; fd < 0 && tries < 16; tries++) {
        random_suffix(suffix);
        snprintf(tmp, need, "%s/%s%s-%s", dir, PQM_TMP_PREFIX, base, suffix);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        pqm__err_set(e, "%s: cannot create a file in %s: %s", final, dir, strerror(errno));
        free(tmp);
        return NULL;
    }
    int werr = write_all(fd, data, len) != 0 ? errno : 0;
    if (close(fd) != 0 && werr == 0)
        werr = errno;
    if (werr != 0) {
        pqm__err_set(e, "%s: cannot write: %s", tmp, strerror(werr));
        unlink(tmp);
        free(tmp);
        return NULL;
    }
    return tmp;
}

static int fsync_path(const char *path, int flags, struct pqm_err *e)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return pqm__err_set(e, "%s: cannot open: %s", path, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return pqm__err_set(e, "%s: fsync failed: %s", path, strerror(saved));
    return 0;
}

int pqm__fsync_dir(const char *dir, struct pqm_err *e)
{
    return fsync_path(dir, O_RDONLY | O_DIRECTORY, e);
}

void pqm__filetx_init(struct pqm_filetx *tx)
{
    memset(tx, 0, sizeof(*tx));
}

int pqm__filetx_stage_hashed(struct pqm_filetx *tx, const char *final, const void *data,
                             size_t len, mode_t mode, const char *sha256, struct pqm_err *e)
{
    if (tx->n == tx->cap) {
        size_t cap = tx->cap ? tx->cap * 2 : 8;
        struct pqm_staged_file *f = realloc(tx->files, cap * sizeof(*f));
        if (f == NULL)
            return pqm__err_set(e, "out of memory");
        tx->files = f;
        tx->cap = cap;
    }
    char *final_copy = strdup(final);
    if (final_copy == NULL)
        return pqm__err_set(e, "out of memory");
    struct pqm_staged_file *f = &tx->files[tx->n];
    snprintf(f->sha256, sizeof(f->sha256), "%s", sha256);
    char *tmp = write_temp(final, data, len, mode, e);
    if (tmp == NULL) {
        free(final_copy);
        return -1;
    }
    f->tmp = tmp;
    f->final = final_copy;
    tx->n++;
    return 0;
}

int pqm__filetx_stage(struct pqm_filetx *tx, const char *final, const void *data, size_t len,
                      mode_t mode, struct pqm_err *e)
{
    char sha256[PQM_SHA256_HEX];
    if (pqm__sha256_hex(data, len, sha256) != 0)
        return pqm__err_set(e, "%s: cannot hash the content", final);
    return pqm__filetx_stage_hashed(tx, final, data, len, mode, sha256, e);
}

int pqm__filetx_stage_like(struct pqm_filetx *tx, const char *final, const void *data,
                           size_t len, const char *like, mode_t mode, struct pqm_err *e)
{
    struct stat st;
    int have = stat(like, &st) == 0;
    if (pqm__filetx_stage(tx, final, data, len, have ? st.st_mode & 07777 : mode, e) != 0)
        return -1;
    if (!have)
        return 0;
    const char *tmp = tx->files[tx->n - 1].tmp;
    /* The mode again: creation took the umask off it. */
    if (chmod(tmp, st.st_mode & 07777) != 0)
        return pqm__err_set(e, "%s: cannot give it the permissions of %s: %s", tmp, like,
                            strerror(errno));
    struct stat mine;
    if (stat(tmp, &mine) != 0 ||
        ((mine.st_uid != st.st_uid || mine.st_gid != st.st_gid) &&
         chown(tmp, st.st_uid, st.st_gid) != 0))
        return pqm__err_set(e, "%s: cannot give the new file its owner and group (%u:%u): %s "
                               "(run as root or as its owner)",
                            like, (unsigned)st.st_uid, (unsigned)st.st_gid, strerror(errno));
    return 0;
}

int pqm__syncfs_of(const char *path, struct pqm_err *e)
{
    char dir[PATH_MAX];
    if (dir_of(path, dir, sizeof(dir)) != 0)
        return pqm__err_set(e, "%s: path too long", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pqm__err_set(e, "%s: cannot open: %s", dir, strerror(errno));
    int rc = syncfs(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return pqm__err_set(e, "%s: syncfs failed: %s", dir, strerror(saved));
    return 0;
}

int pqm__filetx_sync(struct pqm_filetx *tx, struct pqm_err *e)
{
    for (size_t i = 0; i < tx->n; i++)
        if (fsync_path(tx->files[i].tmp, O_RDONLY, e) != 0)
            return -1;
    return 0;
}

/* Syncs each distinct directory of the published files once. */
static int sync_dirs(struct pqm_filetx *tx, struct pqm_err *e)
{
    char prev[PATH_MAX] = "", dir[PATH_MAX];
    for (size_t i = 0; i < tx->n; i++) {
        if (dir_of(tx->files[i].final, dir, sizeof(dir)) != 0)
            return pqm__err_set(e, "%s: path too long", tx->files[i].final);
        if (strcmp(dir, prev) == 0)
            continue;
        if (pqm__fsync_dir(dir, e) != 0)
            return -1;
        memcpy(prev, dir, sizeof(prev));
    }
    return 0;
}

/* Moves TMP to FINAL unless FINAL exists, atomically: renameat2(RENAME_NOREPLACE), or
 * link()+unlink() where the file system does not support it. */
static int publish_noreplace(const char *tmp, const char *final)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(tmp, final) != 0)
        return -1;
    /* Should this fail, the temporary name keeps a second link to the file until the
     * next recovery sweeps it (in issued/). */
    (void)unlink(tmp);
    return 0;
}

int pqm__filetx_publish(struct pqm_filetx *tx, struct pqm_err *e)
{
    if (pqm__filetx_rename(tx, e) != 0)
        return -1;
    return sync_dirs(tx, e);
}

int pqm__filetx_rename(struct pqm_filetx *tx, struct pqm_err *e)
{
    for (size_t i = 0; i < tx->n; i++) {
        if (tx->files[i].tmp == NULL)
            continue;
        struct pqm_staged_file *f = &tx->files[i];
        if (publish_noreplace(f->tmp, f->final) != 0) {
            if (errno == EEXIST)
                return pqm__err_set(e, "%s: already exists; refusing to replace it", f->final);
            return pqm__err_set(e, "%s: cannot create: %s", f->final, strerror(errno));
        }
        free(f->tmp);
        f->tmp = NULL;
    }
    return 0;
}

int pqm__filetx_replace(struct pqm_filetx *tx, struct pqm_err *e)
{
    for (size_t i = 0; i < tx->n; i++) {
        struct pqm_staged_file *f = &tx->files[i];
        if (f->tmp == NULL)
            continue;
        if (rename(f->tmp, f->final) != 0)
            return pqm__err_set(e, "%s: cannot replace: %s", f->final, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
    }
    return sync_dirs(tx, e);
}

void pqm__filetx_release(struct pqm_filetx *tx)
{
    for (size_t i = 0; i < tx->n; i++) {
        if (tx->files[i].tmp != NULL)
            unlink(tx->files[i].tmp);
        free(tx->files[i].tmp);
        free(tx->files[i].final);
    }
    free(tx->files);
    pqm__filetx_init(tx);
}

int pqm__write_file_atomic(const char *final, const void *data, size_t len, mode_t mode,
                           struct pqm_err *e)
{
    char dir[PATH_MAX];
    if (dir_of(final, dir, sizeof(dir)) != 0)
        return pqm__err_set(e, "%s: path too long", final);
    char *tmp = write_temp(final, data, len, mode, e);
    if (tmp == NULL)
        return -1;
    int rc = -1;
    if (fsync_path(tmp, O_RDONLY, e) != 0)
        goto cleanup;
    if (rename(tmp, final) != 0) {
        pqm__err_set(e, "%s: cannot replace: %s", final, strerror(errno));
        goto cleanup;
    }
    rc = pqm__fsync_dir(dir, e);
cleanup:
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int pqm__symlink_atomic(const char *target, const char *final, struct pqm_err *e)
{
    char dir[PATH_MAX], base_buf[PATH_MAX], tmp[PATH_MAX], suffix[7];
    if (dir_of(final, dir, sizeof(dir)) != 0 ||
        snprintf(base_buf, sizeof(base_buf), "%s", final) >= (int)sizeof(base_buf))
        return pqm__err_set(e, "%s: path too long", final);
    const char *base = basename(base_buf);
    int made = -1;
    for (int tries = 0; made != 0 && tries < 16; tries++) {
        random_suffix(suffix);
        int n = snprintf(tmp, sizeof(tmp), "%s/%s%s-%s", dir, PQM_TMP_PREFIX, base, suffix);
        if (n < 0 || (size_t)n >= sizeof(tmp))
            return pqm__err_set(e, "%s: path too long", final);
        made = symlink(target, tmp);
        if (made != 0 && errno != EEXIST)
            break;
    }
    if (made != 0)
        return pqm__err_set(e, "%s: cannot create a link in %s: %s", final, dir, strerror(errno));
    if (rename(tmp, final) != 0) {
        int err = errno;
        unlink(tmp);
        return pqm__err_set(e, "%s: cannot replace: %s", final, strerror(err));
    }
    return pqm__fsync_dir(dir, e);
}

int pqm__read_file(const char *path, size_t max, unsigned char **out, size_t *len,
                   struct pqm_err *e)
{
    /* One buffer of the file's size, no stdio buffer and no realloc: key files pass
     * through here, and nothing of them may stay behind in freed memory. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pqm__err_set(e, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc = -1;
    struct stat st;
    ENSURE(fstat(fd, &st) == 0, e, "%s: cannot stat: %s", path, strerror(errno));
    ENSURE(S_ISREG(st.st_mode), e, "%s: not a regular file", path);
    ENSURE((uintmax_t)st.st_size <= max, e, "%s: larger than %zu bytes", path, max);
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    ENSURE(buf != NULL, e, "out of memory");
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        ENSURE(r >= 0, e, "%s: read error: %s", path, strerror(errno));
        if (r == 0)
            break; /* shrank meanwhile: take what is there */
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
cleanup:
    free(buf);
    close(fd);
    return rc;
}

int pqm__remove_tmp_files(const char *dir, const char *prefix, struct pqm_err *e)
{
    char want[PATH_MAX];
    int wlen = snprintf(want, sizeof(want), "%s%s", PQM_TMP_PREFIX, prefix);
    if (wlen < 0 || (size_t)wlen >= sizeof(want))
        return pqm__err_set(e, "%s: name prefix too long", dir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* gone: nothing of ours can be in it */
        return pqm__err_set(e, "%s: cannot list: %s", dir, strerror(errno));
    }
    int removed = 0;
    struct dirent *de;
    char path[PATH_MAX];
    while (removed >= 0 && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, want, (size_t)wlen) != 0 ||
            pqm__path_join(path, sizeof(path), dir, de->d_name) != 0)
            continue;
        if (unlink(path) == 0)
            removed++;
        else if (errno != ENOENT)
            removed = pqm__err_set(e, "%s: cannot remove: %s", path, strerror(errno));
    }
    closedir(d);
    return removed;
}

void pqm__filetx_identity(const struct pqm_filetx *tx, const char *final, char *out,
                          size_t outlen)
{
    for (size_t i = 0; final != NULL && i < tx->n; i++)
        if (strcmp(tx->files[i].final, final) == 0) {
            snprintf(out, outlen, "%s", tx->files[i].sha256);
            return;
        }
    snprintf(out, outlen, "-");
}

void pqm__filetx_identities(const struct pqm_filetx *tx, char *const *finals, size_t n,
                            char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < outlen; i++) {
        char id[66];
        pqm__filetx_identity(tx, finals[i], id, sizeof(id));
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? " " : "", id);
    }
}

/* Staged files are certificates, keys, chains and PKCS#12 files: well under this. */
#define PQM_OWN_FILE_MAX (16 * 1024 * 1024)

/* The content's SHA-256 of the regular file PATH whose lstat is ST. */
static int hash_file(const char *path, const struct stat *st, char out[65], struct pqm_err *e)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (!S_ISREG(st->st_mode) || (uintmax_t)st->st_size > PQM_OWN_FILE_MAX)
        return pqm__err_set(e, "%s: not a file pqmtls writes", path);
    if (pqm__read_file(path, PQM_OWN_FILE_MAX, &data, &len, e) != 0)
        return -1;
    int hashed = pqm__sha256_hex(data, len, out);
    OPENSSL_cleanse(data, len);
    free(data);
    return hashed != 0 ? pqm__err_set(e, "%s: cannot hash the content", path) : 0;
}

int pqm__file_identity(const char *path, char out[65], struct pqm_err *e)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return pqm__err_set(e, "%s: %s", path, strerror(errno));
    }
    return hash_file(path, &st, out, e) == 0 ? 1 : -1;
}

int pqm__unlink_if_same(const char *path, const char *sha, struct pqm_err *e)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return pqm__err_set(e, "%s: %s", path, strerror(errno));
    }
    if (sha != NULL) {
        char have[65];
        if (!S_ISREG(st.st_mode) || (uintmax_t)st.st_size > PQM_OWN_FILE_MAX)
            return 0; /* not a file this pqmtls wrote */
        if (hash_file(path, &st, have, e) != 0)
            return -1;
        if (strcmp(have, sha) != 0)
            return 0;
    }
    if (unlink(path) != 0 && errno != ENOENT)
        return pqm__err_set(e, "%s: cannot remove: %s", path, strerror(errno));
    return 1;
}

int pqm__rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return unlink(path);
    struct dirent *de;
    char child[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (pqm__path_join(child, sizeof(child), path, de->d_name) != 0)
            continue;
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            pqm__rmtree(child);
        else
            unlink(child);
    }
    closedir(d);
    return rmdir(path);
}

uint64_t pqm__files_stamp(const char *const *files, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the stat fields */
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        uint64_t v[5] = {0, 0, 0, 0, 0};
        if (files[i] != NULL && files[i][0] != '\0' && stat(files[i], &st) == 0) {
            v[0] = (uint64_t)st.st_dev;
            v[1] = (uint64_t)st.st_ino;
            v[2] = (uint64_t)st.st_size;
            v[3] = (uint64_t)st.st_mtim.tv_sec;
            v[4] = (uint64_t)st.st_mtim.tv_nsec;
        }
        const unsigned char *p = (const unsigned char *)v;
        for (size_t j = 0; j < sizeof(v); j++)
            h = (h ^ p[j]) * 1099511628211ULL;
    }
    return h;
}
