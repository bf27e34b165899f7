#!/usr/bin/python3
# asan: skip (torch's worker threads under the preloaded ASan runtime, as test_pytorch)
"""Training loops over several ranks: torch.distributed with the gloo
backend on 127.0.0.1, world size 2 (and 3) x 2 DataLoader workers, each
rank a spawned process reading through libdsc (dsc.MapDataset +
dsc.DistributedSampler + dsc.StatefulLoader), with an all_reduce after
every batch as DDP does (uneven batch counts would hang or fail it).

Checked: every sample exactly once per epoch across ranks (padding
aside), equal batch counts with a dataset that does not divide evenly,
the same permutation on every rank for a seed and another next epoch; a
rank killed mid-epoch and the job restarted from the saved state reads
exactly the rest; the rest redistributed from 2 to 3 ranks; a state of
another dataset or seed refused.

Needs Debian's python3-torch.
"""
import argparse
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

from test_python_client import Rig, Suite, raises, use_library_under_test

HERE = os.path.abspath(__file__)
WORKERS = 2
BATCH = 4
SEED = 1234
N = 101                 # does not divide by 2 ranks x 4
suite = Suite("python-distributed")
test = suite.test
rig = None
data = {}               # index -> bytes
urls = []
tar_samples = {}        # key -> jpg bytes
shard_urls = []


# ---- one rank (a process of its own) ---------------------------------

class Checked:
    """(index, crc32 of the bytes) per sample, so the driver checks both
    which sample and its content."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return i, zlib.crc32(self.dataset[i])


def rank_main(args):
    if args.tar:
        return tar_rank_main(args)
    import warnings
    from datetime import timedelta
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader
    import dsc
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % args.port,
                            rank=args.rank, world_size=args.world,
                            timeout=timedelta(seconds=60))
    urls = json.load(open(args.urls))
    client = dsc.Client(endpoint=os.environ["DSC_TEST_ENDPOINT"], cache_dir=args.cache)
    ds = dsc.MapDataset(urls, client=client)
    sampler = dsc.DistributedSampler(ds, seed=SEED, batch_size=BATCH,
                                     num_workers=WORKERS)   # rank, world: from dist
    assert (sampler.rank, sampler.num_replicas) == (args.rank, args.world)
    loader = dsc.StatefulLoader(DataLoader(Checked(ds), batch_size=BATCH,
                                           sampler=sampler, num_workers=WORKERS,
                                           timeout=120))
    epoch0 = 0
    if args.resume:
        state = json.load(open(args.resume))
        loader.load_state_dict(state)
        epoch0 = state["sampler"]["epoch"]
    log = open(os.path.join(args.out, "rank%d.jsonl" % args.rank), "w")
    for epoch in range(epoch0, epoch0 + args.epochs):
        sampler.set_epoch(epoch)
        perm = zlib.crc32(json.dumps(sampler._epoch_order()).encode())
        batches = 0
        for b, (idx, crc) in enumerate(loader):
            log.write(json.dumps({"epoch": epoch, "batch": b, "idx": idx.tolist(),
                                  "crc": crc.tolist(), "perm": perm}) + "\n")
            log.flush()
            t = torch.ones(1)
            dist.all_reduce(t)          # every rank in step, as DDP
            assert int(t.item()) == args.world
            batches += 1
            if [epoch, b] == args.save_at and args.rank == 0:
                tmp = os.path.join(args.out, "state.tmp")
                json.dump(loader.state_dict(), open(tmp, "w"))
                os.rename(tmp, os.path.join(args.out, "state.json"))
            if [epoch, b] == args.die_at and args.rank == args.world - 1:
                os.kill(os.getpid(), signal.SIGKILL)
        log.write(json.dumps({"epoch": epoch, "end": batches}) + "\n")
        log.flush()
    dist.barrier()
    dist.destroy_process_group()
    client.close()
    return 0


TAR_BATCH = 3


def tar_rank_main(args):
    import warnings
    from datetime import timedelta
    import torch.distributed as dist
    from torch.utils.data import DataLoader
    import dsc
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % args.port,
                            rank=args.rank, world_size=args.world,
                            timeout=timedelta(seconds=60))
    shards = json.load(open(args.urls))
    client = dsc.Client(endpoint=os.environ["DSC_TEST_ENDPOINT"], cache_dir=args.cache)
    ds = dsc.TorchTarShards(shards, client=client, shuffle=True, shuffle_buffer=5,
                            seed=SEED, resumable=True)
    loader = dsc.StatefulLoader(DataLoader(ds, batch_size=TAR_BATCH,
                                           num_workers=WORKERS, timeout=120))
    if args.resume:
        loader.load_state_dict(json.load(open(args.resume)))
    log = open(os.path.join(args.out, "rank%d.jsonl" % args.rank), "w")
    for b, batch in enumerate(loader):
        log.write(json.dumps({"epoch": 0, "batch": b, "keys": batch["__key__"],
                              "crc": [zlib.crc32(x) for x in batch["jpg"]]}) + "\n")
        log.flush()
        if [0, b] == args.save_at:
            states = [None] * args.world
            dist.all_gather_object(states, loader.state_dict())
            if args.rank == 0:
                merged = dict(states[0], dataset=ds.merge_state_dicts(
                    [st["dataset"] for st in states]))
                tmp = os.path.join(args.out, "state.tmp")
                json.dump(merged, open(tmp, "w"))
                os.rename(tmp, os.path.join(args.out, "state.json"))
        if [0, b] == args.die_at and args.rank == args.world - 1:
            os.kill(os.getpid(), signal.SIGKILL)
    log.write(json.dumps({"epoch": 0, "end": b + 1}) + "\n")
    log.flush()
    dist.barrier()
    dist.destroy_process_group()
    client.close()
    return 0


# ---- the driver ------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_job(world, epochs=1, resume=None, save_at=None, die_at=None, timeout=240,
            tar=False):
    """Start `world` rank processes; wait for them. Returns (out dir, exit
    codes). With die_at, the last rank kills itself there, and the others
    are stopped (by pid) once it is gone: the job died."""
    # A port number named the directory once; the kernel hands a port out
    # again, and a second job then found the first one's directory.
    out = tempfile.mkdtemp(prefix="job-", dir=rig.tmp)
    url_file = os.path.join(out, "urls.json")
    json.dump(shard_urls if tar else urls, open(url_file, "w"))
    port = free_port()
    procs = []
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    for rank in range(world):
        cmd = [sys.executable, HERE, "--rank", str(rank), "--world", str(world),
               "--port", str(port), "--out", out, "--urls", url_file,
               "--cache", os.path.join(rig.tmp, "cache-shared"),
               "--epochs", str(epochs)]
        if resume:
            cmd += ["--resume", resume]
        if tar:
            cmd += ["--tar"]
        if save_at:
            cmd += ["--save-at"] + [str(x) for x in save_at]
        if die_at:
            cmd += ["--die-at"] + [str(x) for x in die_at]
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))
    deadline = time.time() + timeout
    try:
        if die_at:
            procs[-1].wait(timeout)
            time.sleep(1)
            for p in procs[:-1]:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait(max(1, deadline - time.time()))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            else:       # its DataLoader workers, if they outlived it
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return out, [p.returncode for p in procs]


def read_logs(out, world):
    """{rank: [records]}"""
    logs = {}
    for rank in range(world):
        with open(os.path.join(out, "rank%d.jsonl" % rank)) as f:
            logs[rank] = [json.loads(line) for line in f if line.endswith("\n")]
    return logs


def batches_of(log, epoch, upto=None):
    return [r for r in log if r.get("epoch") == epoch and "idx" in r
            and (upto is None or r["batch"] <= upto)]


def check_content(records):
    for r in records:
        for i, crc in zip(r["idx"], r["crc"]):
            assert crc == zlib.crc32(data[i]), "sample %d: wrong bytes" % i


def assert_epoch_once(samples, pads_allowed):
    """Every sample of the dataset, each once, but for at most
    pads_allowed repeats (padding to equal counts)."""
    count = collections.Counter(samples)
    missing = sorted(set(range(N)) - set(count))
    assert not missing, "samples never read: %s" % missing
    extra = sum(c - 1 for c in count.values())
    assert extra <= pads_allowed, "%d samples read twice (padding allows %d): %s" % (
        extra, pads_allowed, sorted(i for i, c in count.items() if c > 1))
    assert set(count) <= set(range(N))


@test
def two_ranks_two_workers_every_sample_once_equal_batches():
    import dsc
    t0 = time.time()
    out, codes = run_job(2, epochs=2)
    assert codes == [0, 0], codes
    logs = read_logs(out, 2)
    per_rank = -(-N // 2)                       # 51: one pad sample
    perms = {}
    for epoch in range(2):
        ends = [next(r["end"] for r in logs[k] if r.get("epoch") == epoch and "end" in r)
                for k in range(2)]
        assert ends[0] == ends[1] == -(-per_rank // BATCH), ends   # 13 batches each
        samples = []
        for k in range(2):
            recs = batches_of(logs[k], epoch)
            check_content(recs)
            mine = [i for r in recs for i in r["idx"]]
            assert len(mine) == per_rank, (k, len(mine))
            samples += mine
            perms.setdefault(epoch, set()).update(r["perm"] for r in recs)
        assert_epoch_once(samples, pads_allowed=1)
        # The order is the documented one: this process computes it too.
        want = dsc.permutation(N, SEED, epoch)
        for k in range(2):
            assert [i for r in batches_of(logs[k], epoch) for i in r["idx"]] == \
                dsc.sampling.split(want, k, 2, False)
    assert len(perms[0]) == 1 and len(perms[1]) == 1, perms   # same on both ranks
    assert perms[0] != perms[1]                               # another next epoch
    print("    2 ranks x 2 workers, 2 epochs: %.1f s" % (time.time() - t0))


def killed_then_resumed(new_world):
    t0 = time.time()
    out1, codes = run_job(2, save_at=[0, 5], die_at=[0, 8])
    assert codes[-1] == -signal.SIGKILL, codes
    state_file = os.path.join(out1, "state.json")
    state = json.load(open(state_file))
    assert state["sampler"]["consumed"] == 6 * BATCH * 2, state
    logs1 = read_logs(out1, 2)
    # What the job trained on before the checkpoint: batches 0..5 of each rank.
    before = []
    for k in range(2):
        recs = batches_of(logs1[k], 0, upto=5)
        assert len(recs) == 6
        before += [i for r in recs for i in r["idx"]]
    assert len(before) == 48
    out2, codes = run_job(new_world, resume=state_file)
    assert codes == [0] * new_world, codes
    logs2 = read_logs(out2, new_world)
    after = []
    counts = []
    for k in range(new_world):
        recs = batches_of(logs2[k], 0)
        check_content(recs)
        counts.append(len(recs))
        after += [i for r in recs for i in r["idx"]]
    assert len(set(counts)) == 1, counts            # equal batches after resume too
    rest = N - 48
    assert len(after) == -(-rest // new_world) * new_world
    assert not set(before) & set(after), "read before the kill and again: %s" % (
        sorted(set(before) & set(after)))
    assert_epoch_once(before + after, pads_allowed=(-rest) % new_world)
    print("    killed at batch 8, resumed from batch 6 on %d ranks: %.1f s"
          % (new_world, time.time() - t0))


@test
def rank_killed_mid_epoch_resumes_the_rest_exactly():
    killed_then_resumed(2)


@test
def elastic_resume_from_two_ranks_to_three():
    killed_then_resumed(3)


@test
def state_of_another_dataset_or_seed_is_refused():
    import dsc
    ds = dsc.MapDataset(urls, client=rig.client())
    s = dsc.DistributedSampler(ds, num_replicas=2, rank=0, seed=SEED)
    it = iter(s)
    [next(it) for _ in range(5)]
    state = s.state_dict()
    assert state["consumed"] == 10 and state["seed"] == SEED
    json.dumps(state)                                   # plain values
    e = raises(ValueError, dsc.DistributedSampler(ds, 2, 0, seed=SEED + 1).load_state_dict, state)
    assert "seed" in str(e), e
    other = dsc.MapDataset(urls[:-1] + [urls[0]], client=ds.client)
    e = raises(ValueError, dsc.DistributedSampler(other, 2, 0, seed=SEED).load_state_dict, state)
    assert "dataset" in str(e), e
    e = raises(ValueError, dsc.DistributedSampler(ds, 2, 0, seed=SEED, shuffle=False)
               .load_state_dict, state)
    assert "shuffle" in str(e), e
    raises(ValueError, s.load_state_dict, dict(state, consumed=N + 1))
    raises(ValueError, s.load_state_dict, dict(state, kind="something.else"))
    raises(TypeError, s.load_state_dict, [state])
    # The right one loads; load takes effect at the next iteration.
    s2 = dsc.DistributedSampler(ds, 3, 2, seed=SEED)
    s2.load_state_dict(state)
    assert len(s2) == -(-(N - 10) // 3) and s2.epoch == 0
    ds.client.close()


def tar_keys(log, upto=None):
    out = []
    for r in log:
        if "keys" in r and (upto is None or r["batch"] <= upto):
            for k, crc in zip(r["keys"], r["crc"]):
                assert crc == zlib.crc32(tar_samples[k]), "%s: wrong bytes" % k
                out.append(k)
    return out


def tar_killed_then_resumed(new_world):
    t0 = time.time()
    out1, codes = run_job(2, save_at=[0, 4], die_at=[0, 6], tar=True)
    assert codes[-1] == -signal.SIGKILL, codes
    state_file = os.path.join(out1, "state.json")
    state = json.load(open(state_file))["dataset"]
    logs1 = read_logs(out1, 2)
    before = tar_keys(logs1[0], 4) + tar_keys(logs1[1], 4)
    assert len(before) == 2 * 5 * TAR_BATCH
    assert len(state["done"]) + len(state["partial"]) > 0, state
    out2, codes = run_job(new_world, resume=state_file, tar=True)
    assert codes == [0] * new_world, codes
    logs2 = read_logs(out2, new_world)
    after = [k for rank in range(new_world) for k in tar_keys(logs2[rank])]
    both = collections.Counter(before + after)
    assert set(both) == set(tar_samples), sorted(set(tar_samples) - set(both))
    assert max(both.values()) == 1, sorted(k for k, c in both.items() if c > 1)
    print("    tar shards, resumed on %d ranks: %d + %d samples, %d shards done at "
          "the checkpoint, %d partly: %.1f s" % (new_world, len(before), len(after),
          len(state["done"]), len(state["partial"]), time.time() - t0))


@test
def tar_shards_split_by_rank_and_worker_each_sample_once():
    out, codes = run_job(2, tar=True)
    assert codes == [0, 0], codes
    logs = read_logs(out, 2)
    keys = [tar_keys(logs[k]) for k in range(2)]
    assert collections.Counter(keys[0] + keys[1]) == collections.Counter(list(tar_samples))
    # Rank r read whole shards: order[r::2] of the (seed, epoch) shard order.
    import dsc
    order = dsc.permutation(len(shard_urls), SEED, 0)
    for k in range(2):
        assert {int(key[1:3]) for key in keys[k]} == set(order[k::2])
    # The shuffle buffer mixed samples: not in shard order.
    assert keys[0] != sorted(keys[0])


@test
def tar_shards_resume_at_shard_and_member():
    tar_killed_then_resumed(2)


@test
def tar_shards_elastic_resume_two_to_three_ranks():
    tar_killed_then_resumed(3)


@test
def tar_state_of_another_dataset_or_seed_is_refused():
    import dsc
    with rig.client() as c:
        ds = dsc.TarShards(shard_urls, client=c, seed=SEED, resumable=True)
        first = next(iter(ds))
        assert first["__dsc__"] == "0:0"
        ds.track(first)
        state = ds.state_dict()
        assert state["partial"] == {"0": {"count": None, "members": [0]}}
        raises(ValueError, dsc.TarShards(shard_urls, client=c, seed=SEED + 1).load_state_dict, state)
        raises(ValueError, dsc.TarShards(shard_urls[1:], client=c, seed=SEED).load_state_dict, state)
        again = dsc.TarShards(shard_urls, client=c, seed=SEED, resumable=True)
        again.load_state_dict(state)
        rest = [s["__key__"] for s in again]
        assert "s00/000" not in rest and len(rest) == len(tar_samples) - 1


@test
def stateful_loader_counts_batch_sampler_batches_and_every_epoch_reads():
    """Two ways users wire a loader that the reviewers caught: a
    BatchSampler (loader.batch_size is None) must count whole batches,
    and a resumable TarShards read again epoch after epoch (what the last
    pass delivered must not hide the next one's shards)."""
    import dsc
    from torch.utils.data import BatchSampler, DataLoader
    with rig.client() as c:
        ds = dsc.MapDataset(urls[:40], client=c)
        sampler = dsc.DistributedSampler(ds, num_replicas=1, rank=0, seed=SEED)
        loader = dsc.StatefulLoader(DataLoader(
            ds, batch_sampler=BatchSampler(sampler, 8, False),
            collate_fn=lambda b: b))
        it = iter(loader)
        for _ in range(2):
            next(it)
        assert loader.state_dict()["sampler"]["consumed"] == 16, loader.state_dict()
        tar = dsc.TorchTarShards(shard_urls, client=c, seed=SEED, resumable=True)
        tl = dsc.StatefulLoader(DataLoader(tar, batch_size=4,
                                           collate_fn=lambda b: b))
        for epoch in range(2):
            keys = [s["__key__"] for batch in tl for s in batch]
            assert sorted(keys) == sorted(tar_samples), (epoch, len(keys))


def main():
    global rig, urls
    use_library_under_test()
    rig = Rig("distributed")
    from test_python_client import make_tar
    rng = random.Random(77)
    for sh in range(12):
        samples = []
        for i in range(rng.randrange(4, 10)):
            key = "s%02d/%03d" % (sh, i)
            tar_samples[key] = rng.randbytes(rng.randrange(10, 5000))
            samples.append((key, {"jpg": tar_samples[key], "cls": b"%d" % i}))
        shard_urls.append(rig.put("dist/tar/shard-%02d.tar" % sh, make_tar(samples)))
    for i in range(N):
        data[i] = rng.randbytes(rng.randrange(100, 40000))
        urls.append(rig.put("dist/s-%04d.bin" % i, data[i]))
    return suite.run()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--rank":
        ap = argparse.ArgumentParser()
        for name in ("--rank", "--world", "--port", "--epochs"):
            ap.add_argument(name, type=int)
        for name in ("--out", "--urls", "--cache", "--resume"):
            ap.add_argument(name)
        ap.add_argument("--save-at", type=int, nargs=2)
        ap.add_argument("--die-at", type=int, nargs=2)
        ap.add_argument("--tar", action="store_true")
        use_library_under_test()
        sys.exit(rank_main(ap.parse_args()))
    sys.exit(main())
