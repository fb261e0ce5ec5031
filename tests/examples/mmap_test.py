"""mmap_shared, mmap_private and fork_shared: their output, their usage, and every failure ending
in one line on stderr and status 1, never a signal: bad paths, a read-only file system, a file
size limit, and a file truncated by another program while the example runs."""

import ctypes
import os
import resource
import signal
import stat
import subprocess
import tempfile

import support
from support import check, check_equal

OUTPUT = {
    "mmap_shared": b"parent: balance 100\n"
    b"parent: the child's update arrived, balance 150\n"
    b"file:   balance 150\n",
    "mmap_private": b"writer:        balance 150\n"
    b"other process: balance 100\n"
    b"file:          balance 100\n",
    "fork_shared": b"shared answer: 42 (written by the child)\n"
    b"plain variable: 1 (the child's write stayed in the child)\n",
}


def name_of(binary):
    return os.path.basename(binary)


def run_with(argv, setup=None, timeout=15.0):
    """Runs a program to its end, calling `setup` in the child before exec; returns
    (status, stdout, stderr). A negative status is the signal that killed it."""

    def prepare():
        support._die_with_parent()
        if setup is not None:
            setup()

    result = subprocess.run(
        [str(arg) for arg in argv], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
        preexec_fn=prepare,
    )
    return result.returncode, result.stdout, result.stderr


def check_failure(binary, path, setup=None, contains=()):
    """The example, given `path`, fails with one line on stderr that names the path (quoted)
    and says each of `contains`, and status 1."""
    status, out, err = run_with([binary, path], setup)
    what = f"{name_of(binary)} {path[:60]!r}"
    check(status >= 0, f"{what}: killed by {signal.Signals(-status).name if status < 0 else ''} (stderr {err!r})")
    support.check_one_error_line(status, out, err, what, [f'{name_of(binary)}: mapped: create "{path}"', *contains])


def runs(binary):
    name = name_of(binary)
    with tempfile.TemporaryDirectory() as directory:
        argv = [binary] if name == "fork_shared" else [binary, os.path.join(directory, "account")]
        status, out, err = support.run(argv)
        check_equal((status, err), (0, b""), "exit status and stderr")
        check_equal(out, OUTPUT[name], "stdout")
        check_equal(os.listdir(directory), [], "files left behind (the example removes its own)")


def usage(binary):
    name = name_of(binary)
    if name == "fork_shared":
        support.check_usage(binary, b"usage: fork_shared\n", [["x"], ["x", "y"], [""]])
        return
    support.check_usage(
        binary,
        f"usage: {name} FILE [--pause]\n".encode(),
        [[], ["a", "b"], ["a", "--pause", "b"], ["--pause"], ["--pause", "a"], ["-a"], ["a", "--Pause"]],
    )


def bad_paths(binary):
    """Paths that cannot be created: each fails on one line, and nothing that was there before
    is deleted or changed."""
    with tempfile.TemporaryDirectory() as directory:
        existing = os.path.join(directory, "existing")
        with open(existing, "wb") as f:
            f.write(b"not the example's")
        fifo = os.path.join(directory, "fifo")
        os.mkfifo(fifo)
        link = os.path.join(directory, "link")
        os.symlink(existing, link)

        check_failure(binary, "", contains=["No such file or directory"])
        check_failure(binary, os.path.join(directory, "missing", "f"), contains=["No such file or directory"])
        check_failure(binary, directory, contains=["a directory", "File exists"])
        check_failure(binary, "/proc/version", contains=["File exists"])
        check_failure(binary, os.path.join(directory, "n" * 300), contains=["File name too long"])
        check_failure(binary, existing, contains=["File exists"])
        check_failure(binary, fifo, contains=["a FIFO", "File exists"])  # and no hang on it
        check_failure(binary, link, contains=["a symbolic link", "File exists"])

        with open(existing, "rb") as f:
            check_equal(f.read(), b"not the example's", "the existing file's content")
        check(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO is still there")
        check_equal(os.readlink(link), existing, "the symbolic link")
        check_equal(sorted(os.listdir(directory)), ["existing", "fifo", "link"], "the directory's entries")


def read_only_mount(binary):
    """A read-only file system: a tmpfs mounted read-only in a mount namespace of the example's
    own, which needs CAP_SYS_ADMIN."""
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNS, MS_RDONLY, MS_REC, MS_PRIVATE = 0x20000, 1, 0x4000, 0x40000

    with tempfile.TemporaryDirectory() as directory:

        def mount_read_only():
            if (
                libc.unshare(CLONE_NEWNS) != 0
                or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0
                or libc.mount(b"tmpfs", directory.encode(), b"tmpfs", MS_RDONLY, None) != 0
            ):
                raise OSError(ctypes.get_errno(), "mount")

        try:
            run_with(["true"], mount_read_only)
        except subprocess.SubprocessError:
            print("SKIPPED: cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)")
            return
        check_failure(binary, os.path.join(directory, "f"), mount_read_only, ["Read-only file system"])


def file_size_limit(binary):
    """Under `ulimit -f`, the example reports EFBIG and leaves no file, where it used to die of
    SIGXFSZ with a file of 0 bytes; SIGXFSZ keeps its default action, which kills."""
    with tempfile.TemporaryDirectory() as directory:
        for limit in (0, 8):
            path = os.path.join(directory, f"limit-{limit}")

            def limit_file_size():
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

            # A usage error touches no file of the example's: a program killed even so has a
            # runtime that writes files as it starts (ThreadSanitizer's does).
            if run_with([binary], limit_file_size)[0] == -signal.SIGXFSZ:
                print(f"SKIPPED: {name_of(binary)} cannot start under a file size limit of {limit} bytes")
                return
            check_failure(binary, path, limit_file_size, ["RLIMIT_FSIZE", "File too large"])
            check(not os.path.exists(path), f"{path} was left behind")


def truncated_while_paused(binary):
    """Another program truncates the file while the example is paused: the example's check
    reports it on one line and status 1, where touching the view would have raised SIGBUS."""
    name = name_of(binary)
    with tempfile.TemporaryDirectory() as directory:
        for length in (0, 8):
            path = os.path.join(directory, f"account-{length}")
            with support.Process([binary, path, "--pause"], stdin=subprocess.PIPE) as example:
                example.wait_for_output(lambda out: b"paused:" in out, "the pause")
                os.truncate(path, length)
                example.process.stdin.write(b"\n")
                example.process.stdin.close()
                status = example.finish()
                what = f"{name} truncated to {length}\n{example.describe()}"
                check(status >= 0, f"killed by {signal.Signals(-status).name if status < 0 else ''}: {what}")
                check_equal(status, 1, f"exit status: {what}")
                err = example.errors()
                check(err.endswith(b"\n") and err.count(b"\n") == 1, f"not one line: {what}")
                for text in (f'{name}: mapped: check "{path}"', f"holds {length} bytes", "truncated"):
                    check(text.encode() in err, f"{text!r} not in stderr: {what}")


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (runs, usage, bad_paths, read_only_mount, file_size_limit, truncated_while_paused)
        }
    )
