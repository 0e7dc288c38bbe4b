"""namcore.backends.allocator: glibc keeps freed memory, checked by its page faults."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from namcore.backends import allocator

glibc = pytest.mark.skipif(allocator._glibc_mallopt() is None, reason="the C library is not glibc")

# A thread (as XLA's runtime threads do) allocates, touches and frees 32 MiB ten
# times; the child prints the minor page faults of the last nine rounds. The block is
# just above glibc's largest adaptive mmap threshold (32 MiB on 64-bit), so with the
# defaults every round gets a fresh mapping.
_CHILD = textwrap.dedent(
    """
    import ctypes, resource, sys, threading
    from namcore.backends import allocator
    if sys.argv[1] == "reuse":
        assert allocator.reuse_freed_memory() is True
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = (ctypes.c_void_p,)
    size = 32 * 2**20
    counts = []

    def work():
        for _ in range(10):
            block = libc.malloc(size)
            ctypes.memset(block, 1, size)
            libc.free(block)
            counts.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    print(counts[-1] - counts[0])
    """
)


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@glibc
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    pages = 9 * 32 * 2**20 // 4096  # nine rounds of 32 MiB in 4 KiB pages
    default, reused = _faults("default"), _faults("reuse")
    assert default > pages // 2, f"glibc's defaults: {default} faults (expected one per page)"
    assert reused < pages // 100, f"after reuse_freed_memory: {reused} faults"


@pytest.mark.parametrize(
    ("argument", "value"),
    [("mmap_threshold", -1), ("trim_threshold", 2**31), ("top_pad", 1.5), ("top_pad", True)],
)
def test_bad_settings_name_the_argument(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be an integer from 0 to"):
        allocator.reuse_freed_memory(**{argument: value})


@pytest.mark.parametrize(("value", "called"), [("system", False), (" System ", False), ("", True)])
def test_environment_variable_opts_out(monkeypatch, value, called):
    calls = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setenv(allocator.ENVIRONMENT_VARIABLE, value)
    assert allocator.reuse_unless_disabled() is called
    assert calls == ([1] if called else [])


def test_a_refused_setting_is_an_error_and_only_a_warning_in_the_commands(monkeypatch):
    calls = []

    def refuses_the_pad(parameter, value):
        calls.append((parameter, value))
        return 0 if parameter == allocator._M_TOP_PAD else 1

    monkeypatch.setattr(allocator, "_glibc_mallopt", lambda: refuses_the_pad)
    with pytest.raises(ValueError, match="glibc refused top_pad=67108864"):
        allocator.reuse_freed_memory()
    assert [p for p, _ in calls] == [-3, -1, -2]  # mmap threshold, trim threshold, top pad
    monkeypatch.setenv(allocator.ENVIRONMENT_VARIABLE, "")
    with pytest.warns(RuntimeWarning, match="glibc refused top_pad"):
        assert allocator.reuse_unless_disabled() is False


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc_mallopt", lambda: None)
    assert allocator.reuse_freed_memory() is False
