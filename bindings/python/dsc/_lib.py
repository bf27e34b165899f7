"""Finding libdsc and declaring its C interface (include/dsc.h) for ctypes.

Every function gets argtypes and restype: ctypes' default of C int would
truncate the 64-bit sizes, offsets and pointers that most of them pass.
"""
import ctypes
import ctypes.util
import os
import threading

SONAME = "libdsc.so.0"
CONFIG_VERSION = 6      # DSC_CONFIG_VERSION of the header mirrored below
# The fields each config version added, after those of the one before: a
# library older than this mirror refuses CONFIG_VERSION, and is then
# opened with the version it knows (its fields are a prefix of ours).
CONFIG_V2_FIELDS = ("peers", "peer_self", "peer_secret", "peer_timeout_ms",
                    "peer_backoff_ms", "peer_keep_local")
CONFIG_V3_FIELDS = ("snapshot",)
CONFIG_V4_FIELDS = ("op_timeout_ms", "cache_existing")
CONFIG_V5_FIELDS = ("peers_refresh_s",)
CONFIG_V6_FIELDS = ("prefetch_memory", "prefetch_loop", "cache_verify")
CONFIG_ADDED = {2: CONFIG_V2_FIELDS, 3: CONFIG_V3_FIELDS, 4: CONFIG_V4_FIELDS,
                5: CONFIG_V5_FIELDS, 6: CONFIG_V6_FIELDS}

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
ADDRESSING = {"auto": 0, "path": 1, "virtual": 2}
POLICIES = {"lru": 0, "minio": 1}
VERIFY = {"boot": 0, "always": 1}


class Config(ctypes.Structure):
    """struct dsc_config, field for field."""
    _fields_ = [
        ("version", ctypes.c_uint),
        ("endpoint", ctypes.c_char_p),
        ("region", ctypes.c_char_p),
        ("addressing", ctypes.c_int),
        ("access_key_id", ctypes.c_char_p),
        ("secret_access_key", ctypes.c_char_p),
        ("session_token", ctypes.c_char_p),
        ("profile", ctypes.c_char_p),
        ("anonymous", ctypes.c_int),
        ("connect_timeout_ms", ctypes.c_long),
        ("request_timeout_ms", ctypes.c_long),
        ("max_retries", ctypes.c_int),
        ("retry_base_ms", ctypes.c_long),
        ("retry_max_ms", ctypes.c_long),
        ("max_connections", ctypes.c_int),
        ("verify_tls", ctypes.c_int),
        ("ca_file", ctypes.c_char_p),
        ("meta_ttl_ms", ctypes.c_long),
        ("cache_dir", ctypes.c_char_p),
        ("cache_size", ctypes.c_uint64),
        ("chunk_size", ctypes.c_uint32),
        ("cache_policy", ctypes.c_int),
        ("cache_idle_sec", ctypes.c_long),
        ("fd_cache", ctypes.c_int),
        ("cache_sync", ctypes.c_int),
        ("prefetch_threads", ctypes.c_int),
        ("prefetch_queue", ctypes.c_int),
        ("readahead_max", ctypes.c_uint64),
        ("plan_window", ctypes.c_uint64),
        # version 2
        ("peers", ctypes.c_char_p),
        ("peer_self", ctypes.c_char_p),
        ("peer_secret", ctypes.c_char_p),
        ("peer_timeout_ms", ctypes.c_long),
        ("peer_backoff_ms", ctypes.c_long),
        ("peer_keep_local", ctypes.c_int),
        # version 3
        ("snapshot", ctypes.c_char_p),
        # version 4
        ("op_timeout_ms", ctypes.c_long),
        ("cache_existing", ctypes.c_int),
        ("peers_refresh_s", ctypes.c_long),
        # version 6
        ("prefetch_memory", ctypes.c_uint64),
        ("prefetch_loop", ctypes.c_int),
        ("cache_verify", ctypes.c_int),
    ]


class ConfigBox(ctypes.Structure):
    """A Config with spare room after it. dsc_config_init and dsc_ctx_open
    use the library's own sizeof(dsc_config); a library newer than this
    mirror may have appended fields, and must not write or read past the
    memory we own."""
    _fields_ = [("cfg", Config), ("spare", ctypes.c_char * 1024)]


class Stats(ctypes.Structure):
    """struct dsc_stats, field for field (only ever appended to)."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "hits", "misses", "bytes_from_cache", "bytes_from_s3", "s3_gets",
        "s3_heads", "s3_lists", "s3_retries", "meta_hits", "evictions",
        "corrupt_dropped", "cache_errors", "not_admitted", "cache_bytes",
        "cache_capacity", "cache_chunks", "node_hits", "node_misses",
        "node_evictions", "node_corrupt")] + [
        ("chunk_size", ctypes.c_uint32),
        ("cache_policy", ctypes.c_int),
        ("node_capacity", ctypes.c_uint64),
        ("prefetch_queued", ctypes.c_uint64),
        ("prefetch_done", ctypes.c_uint64),
        ("prefetch_errors", ctypes.c_uint64),
        ("prefetch_dropped", ctypes.c_uint64),
        ("readahead_chunks", ctypes.c_uint64),
        ("peer_hits", ctypes.c_uint64),
        ("peer_bytes", ctypes.c_uint64),
        ("peer_errors", ctypes.c_uint64),
        ("peer_bad_data", ctypes.c_uint64),
        ("peers_down", ctypes.c_uint64),
        ("index_map_bytes", ctypes.c_uint64),
        ("index_used_bytes", ctypes.c_uint64),
        ("index_full", ctypes.c_uint64),
        ("node_meta_dropped", ctypes.c_uint64),
        ("meta_expired", ctypes.c_uint64),
        ("node_capacity_set", ctypes.c_uint64),
        ("node_capacity_disk", ctypes.c_uint64),
        ("peers", ctypes.c_uint64),
        ("peer_changes", ctypes.c_uint64),
        ("peer_resolve_errors", ctypes.c_uint64),
    ] + [(name, ctypes.c_uint64) for name in (
        "node_s3_gets", "node_s3_heads", "node_s3_lists", "node_s3_retries",
        "node_s3_bytes", "node_cache_bytes", "node_peer_hits",
        "node_peer_bytes", "node_prefetched", "node_prefetched_bytes",
        "prefetch_inflight_limit", "prefetch_inflight_peak",
        "prefetch_throttled", "prefetch_on_loop", "prefetch_busy",
        "index_writes")]


class ObjectInfo(ctypes.Structure):
    """struct dsc_object_info."""
    _fields_ = [
        ("url", ctypes.c_char_p),
        ("key", ctypes.c_char_p),
        ("size", ctypes.c_uint64),
        ("etag", ctypes.c_char_p),
        ("last_modified", ctypes.c_char_p),
    ]


class BatchItem(ctypes.Structure):
    """struct dsc_batch_item."""
    _fields_ = [
        ("url", ctypes.c_char_p),
        ("buf", ctypes.c_void_p),
        ("cap", ctypes.c_size_t),
        ("size", ctypes.c_int64),
        ("len", ctypes.c_size_t),
        ("status", ctypes.c_int),
    ]


class PlanItem(ctypes.Structure):
    """struct dsc_plan_item."""
    _fields_ = [
        ("url", ctypes.c_char_p),
        ("off", ctypes.c_uint64),
        ("len", ctypes.c_uint64),
    ]


class SnapshotSummary(ctypes.Structure):
    """struct dsc_snapshot_summary (only ever appended to)."""
    _fields_ = [
        ("url", ctypes.c_char_p),
        ("bucket", ctypes.c_char_p),
        ("prefix", ctypes.c_char_p),
        ("origin", ctypes.c_char_p),
        ("created_ms", ctypes.c_int64),
        ("objects", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("file_bytes", ctypes.c_uint64),
        ("format", ctypes.c_uint),
        ("versioned", ctypes.c_int),
    ]


class SnapshotDelta(ctypes.Structure):
    """struct dsc_snapshot_delta."""
    _fields_ = [(name, ctypes.c_uint64) for name in
                ("changed", "deleted", "added", "same")]


DIFF_CHANGED, DIFF_DELETED, DIFF_ADDED = 1, 2, 3

LIST_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                           ctypes.POINTER(ObjectInfo))
DIFF_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                           ctypes.POINTER(ObjectInfo), ctypes.POINTER(ObjectInfo))

_vp = ctypes.c_void_p
_u64 = ctypes.c_uint64
_SIGNATURES = {
    "dsc_version_number": (ctypes.c_uint, []),
    "dsc_version_string": (ctypes.c_char_p, []),
    "dsc_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "dsc_errmsg": (ctypes.c_char_p, []),
    "dsc_config_init": (ctypes.c_int, [ctypes.POINTER(ConfigBox), ctypes.c_uint]),
    "dsc_ctx_open": (ctypes.c_int, [ctypes.POINTER(ConfigBox),
                                    ctypes.POINTER(_vp)]),
    "dsc_ctx_close": (None, [_vp]),
    "dsc_open": (ctypes.c_int, [_vp, ctypes.c_char_p, ctypes.POINTER(_vp)]),
    "dsc_size": (ctypes.c_int64, [_vp]),
    "dsc_etag": (ctypes.c_char_p, [_vp]),
    "dsc_pread": (ctypes.c_ssize_t, [_vp, _vp, ctypes.c_size_t, _u64]),
    "dsc_read": (ctypes.c_ssize_t, [_vp, _vp, ctypes.c_size_t]),
    "dsc_seek": (ctypes.c_int64, [_vp, ctypes.c_int64, ctypes.c_int]),
    "dsc_close": (None, [_vp]),
    "dsc_stats_get": (ctypes.c_int, [_vp, ctypes.POINTER(Stats), ctypes.c_size_t]),
    "dsc_cache_dir": (ctypes.c_char_p, [_vp]),
    "dsc_cache_clean": (ctypes.c_int64, [_vp]),
    "dsc_list": (ctypes.c_int64, [_vp, ctypes.c_char_p, LIST_CB, _vp]),
}
# Newer than 0.1.0: bound when the loaded library has them.
_OPTIONAL = {
    "dsc_prefetch_urls": (ctypes.c_ssize_t, [_vp, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                             ctypes.POINTER(ctypes.c_size_t)]),
    "dsc_pread_url": (ctypes.c_ssize_t, [_vp, ctypes.c_char_p, _vp, ctypes.c_size_t, _u64,
                                         ctypes.POINTER(ctypes.c_int64)]),
    "dsc_read_batch": (ctypes.c_ssize_t, [_vp, ctypes.POINTER(BatchItem),
                                          ctypes.c_size_t, ctypes.c_uint]),
    "dsc_prefetch": (ctypes.c_int, [_vp, _u64, _u64]),
    "dsc_prefetch_url": (ctypes.c_int, [_vp, ctypes.c_char_p]),
    "dsc_prefetch_wait": (ctypes.c_int, [_vp, ctypes.c_long]),
    "dsc_warm": (ctypes.c_int64, [_vp, _u64, _u64]),
    "dsc_plan_start": (ctypes.c_int, [_vp, ctypes.POINTER(PlanItem),
                                      ctypes.c_size_t, ctypes.POINTER(_vp)]),
    "dsc_plan_position": (ctypes.c_size_t, [_vp]),
    "dsc_plan_stop": (None, [_vp]),
    "dsc_snapshot_list": (ctypes.c_int, [_vp, ctypes.c_char_p, ctypes.POINTER(_vp)]),
    "dsc_snapshot_load": (ctypes.c_int, [_vp, ctypes.c_char_p, ctypes.POINTER(_vp)]),
    "dsc_snapshot_save": (ctypes.c_int, [_vp, ctypes.c_char_p]),
    "dsc_snapshot_free": (None, [_vp]),
    "dsc_snapshot_summarize": (ctypes.c_int, [_vp, ctypes.POINTER(SnapshotSummary),
                                              ctypes.c_size_t]),
    "dsc_snapshot_count": (ctypes.c_size_t, [_vp]),
    "dsc_snapshot_get": (ctypes.c_int, [_vp, ctypes.c_size_t,
                                        ctypes.POINTER(ObjectInfo)]),
    "dsc_snapshot_find": (ctypes.c_int64, [_vp, ctypes.c_char_p]),
    "dsc_snapshot_version_id": (ctypes.c_char_p, [_vp, ctypes.c_size_t]),
    "dsc_snapshot_diff_each": (ctypes.c_int, [_vp, _vp, DIFF_CB, _vp,
                                              ctypes.POINTER(SnapshotDelta)]),
    "dsc_ctx_use_snapshot": (ctypes.c_int, [_vp, _vp]),
    "dsc_metrics_text": (ctypes.c_int64, [_vp, ctypes.c_char_p, ctypes.c_size_t]),
}


def candidates():
    """Where libdsc is looked for, in order: (description, path or name)."""
    out = []
    env = os.environ.get("DSC_LIBRARY")
    if env:
        return [("DSC_LIBRARY", env)]
    here = os.path.dirname(os.path.abspath(__file__))
    out.append(("next to the package", os.path.join(here, SONAME)))
    root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    if os.path.isfile(os.path.join(root, "include", "dsc.h")):
        out.append(("this checkout", os.path.join(root, "lib", SONAME)))
    found = ctypes.util.find_library("dsc")
    out.append(("the system", found or SONAME))
    # `make install` to a prefix the dynamic linker does not search (or
    # before ldconfig ran): the prefix pkg-config knows, then the default.
    for libdir in _pkg_config_libdirs() + ["/usr/local/lib"]:
        path = os.path.join(libdir, SONAME)
        if all(p != path for _, p in out):
            out.append(("installed", path))
    return out


def _pkg_config_libdirs():
    import subprocess
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "libdsc"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [r.stdout.strip()] if r.returncode == 0 and r.stdout.strip() else []


def _load():
    tried = []
    for where, path in candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (%s): no such file" % (where, path))
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s): %s" % (where, path, e))
            continue
        _declare(lib)
        return lib
    raise OSError("libdsc not found: the Python package needs the C library. "
                  "Build and install it from the checkout (make && sudo make "
                  "install), or set DSC_LIBRARY to the path of %s. Tried: %s"
                  % (SONAME, "; ".join(tried)))


def _declare(lib):
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    for name, (restype, argtypes) in _OPTIONAL.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            continue
        fn.restype, fn.argtypes = restype, argtypes


_lib = None
_lock = threading.Lock()


def lib():
    """The loaded library (loaded on first use, so `import dsc` works on a
    machine without it)."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load()
    return _lib


def has(name):
    return hasattr(lib(), name)
