#!/usr/bin/python3
"""Publishes files into a directory the way the kubelet updates a mounted Secret,
ConfigMap or projected volume (pkg/volume/util/atomic_writer.go), for the tests.

    kubelet.py write MOUNT SRC [FSGROUP]
        MOUNT gets SRC's files (subdirectories too): they are written into a new
        directory MOUNT/..<UTC time>.<random>, the symbolic link MOUNT/..data is pointed
        at it by renaming a new link ..data_tmp over it (one atomic rename), each
        top-level name of SRC is a link NAME -> ..data/NAME, and the previous timestamped
        directory is removed. Readers that open MOUNT/NAME see either the old files or
        the new ones, never a mix; stat() of MOUNT/NAME follows the links, so every
        update gives new inodes. With FSGROUP, the new files and directories belong to
        that group, as the pod's securityContext.fsGroup makes them.

    kubelet.py swap-during-read MOUNT SRC_B SRC_C PID BYTES
        Publishes SRC_B, waits until process PID has read BYTES more bytes
        (/proc/PID/io rchar: the reload of SRC_B's largest file is done, its parsing is
        not), then publishes SRC_C at once. Prints how long the wait took.
"""
import os
import shutil
import sys
import time


def stage(mount, src, fsgroup=None):
    """SRC's files in a new timestamped directory of MOUNT; returns its name."""
    os.makedirs(mount, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    for i in range(1000):
        name = f"{stamp}{time.time_ns() % 10**9:09d}{i}"
        try:
            os.mkdir(os.path.join(mount, name), 0o755)
            break
        except FileExistsError:
            continue
    top = os.path.join(mount, name)
    shutil.copytree(src, top, dirs_exist_ok=True)
    if fsgroup is not None:
        for d, _, files in os.walk(top):
            for n in [d] + [os.path.join(d, f) for f in files]:
                os.chown(n, -1, fsgroup)
    return name


def swap(mount, name, src):
    """Points ..data at NAME in one rename, adds the user-visible links, drops the old."""
    data = os.path.join(mount, "..data")
    old = os.readlink(data) if os.path.islink(data) else None
    tmp = os.path.join(mount, "..data_tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(name, tmp)
    os.rename(tmp, data)
    for top in sorted(os.listdir(src)):
        link = os.path.join(mount, top)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", top), link)
    if old is not None and old != name:
        shutil.rmtree(os.path.join(mount, old))


def write(mount, src, fsgroup=None):
    swap(mount, stage(mount, src, fsgroup), src)


def rchar(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError(f"no rchar in /proc/{pid}/io")


def swap_during_read(mount, src_b, src_c, pid, nbytes):
    b, c = stage(mount, src_b), stage(mount, src_c)
    start = rchar(pid)
    swap(mount, b, src_b)
    t0 = time.monotonic()
    while rchar(pid) - start < nbytes:
        if time.monotonic() - t0 > 20:
            raise RuntimeError("the process never read the new files")
    swap(mount, c, src_c)
    print(f"swapped again {1000 * (time.monotonic() - t0):.1f} ms after the first swap")


def main(argv):
    if len(argv) in (4, 5) and argv[1] == "write":
        write(argv[2], argv[3], int(argv[4]) if len(argv) == 5 else None)
    elif len(argv) == 7 and argv[1] == "swap-during-read":
        swap_during_read(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
