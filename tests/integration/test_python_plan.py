#!/usr/bin/python3
"""Plans from Python (Client.plan, dsc.Plan over dsc_plan_*) and
dsc.PlannedSampler, the DataLoader sampler that hands libdsc each epoch's
order: what is fetched ahead, what position a plan sees, what a forked
child gets, and a 4-worker DataLoader epoch with one GET per object.

Run through tests/run.sh (s3rver, fixtures), with /usr/bin/python3
(Debian's python3-boto3 and python3-torch).
"""
import os
import random
import sys

from test_python_client import Rig, Suite, raises, use_library_under_test

suite = Suite("python-plan")
test = suite.test
rig = None


def uploaded(prefix, count, size=20000):
    """{url: bytes} of count objects under prefix (uploaded once)."""
    rng = random.Random(prefix)
    out = {}
    for i in range(count):
        data = rng.randbytes(size + i)
        out[rig.put("%s-%03d.bin" % (prefix, i), data)] = data
    return out


def delta(after, before, *keys):
    return {k: after[k] - before[k] for k in keys}


@test
def plan_fetches_ahead_in_order_and_reads_hit():
    import dsc
    data = uploaded("py/plan/a", 24)
    urls = list(data)
    order = list(reversed(urls))
    with rig.client() as c:
        plan = c.plan(order)
        assert isinstance(plan, dsc.Plan) and len(plan) == 24 and not plan.stopped
        assert "24 items" in repr(plan)
        assert c.wait(60) is True          # plan items are background work
        st = c.stats()
        assert st["cache_chunks"] == 24 and st["prefetch_errors"] == 0, st
        before = c.stats()
        for i, url in enumerate(order):
            assert c.read(url) == data[url]
        assert delta(c.stats(), before, "hits", "misses") == {"hits": 24, "misses": 0}
        # This process's reads moved the plan: its last item was reached.
        assert plan.position == 23, plan.position
        plan.stop()
        assert plan.stopped and "stopped" in repr(plan)
        plan.stop()                         # again: nothing
        raises(ValueError, lambda: plan.position)


@test
def plan_items_may_be_ranges():
    with rig.client(chunk_size="1MiB") as c:
        url = rig.url("five-mib-plus-one")
        want = rig.fixtures()["five-mib-plus-one"]
        with c.plan([(url, 3 << 20, 1 << 20), (url, 5 << 20, None)]):
            assert c.wait(60) is True
        before = c.stats()
        with c.open(url) as f:
            assert f.pread(3 << 20, 1 << 20) == want[3 << 20:4 << 20]
            assert f.pread(5 << 20, 1) == want[5 << 20:]
        assert delta(c.stats(), before, "hits", "misses") == {"hits": 2, "misses": 0}
        before = c.stats()
        with c.open(url) as f:             # not in the plan: fetched on read
            assert f.pread(1 << 20, 10) == want[1 << 20:(1 << 20) + 10]
        assert delta(c.stats(), before, "misses")["misses"] == 1


@test
def plan_arguments_are_checked():
    import dsc
    with rig.client() as c:
        raises(TypeError, c.plan, [None])
        raises(TypeError, c.plan, [("s3://%s/x" % rig.bucket, 0)])
        raises(TypeError, c.plan, [("s3://%s/x" % rig.bucket, "0", 0)])
        raises(dsc.InvalidArgument, c.plan, [("s3://%s/x" % rig.bucket, -1, 0)])
        e = raises(dsc.InvalidURL, c.plan, ["s3://%s/ok" % rig.bucket, "gs://x/y"])
        assert "item 1" in str(e), e
        raises(dsc.InvalidURL, c.plan, ["s3://%s/" % rig.bucket])
        raises(dsc.InvalidURL, c.plan, ["s3://%s/a\0b" % rig.bucket])
        empty = c.plan([])
        assert len(empty) == 0 and empty.position == 0
        empty.stop()
    with rig.client(cache=False) as c:
        e = raises(dsc.NoCache, c.plan, [rig.url("one-byte")])
        assert e.code == -17


@test
def a_new_plan_replaces_the_old_and_close_stops_both():
    data = uploaded("py/plan/b", 8)
    urls = list(data)
    c = rig.client()
    first = c.plan(urls[:4])
    second = c.plan(urls[4:])
    assert c.wait(60) is True
    for url in urls[4:]:
        assert c.read(url) == data[url]
    assert second.position == 3
    c.close()
    assert first.stopped and second.stopped
    raises(ValueError, c.plan, urls)
    first.stop()                            # after close: nothing


@test
def window_bounds_what_a_plan_fetches_unless_this_process_reads():
    # 24 objects of ~20 KB, a 64 KiB window: about 3 are fetched ahead.
    data = uploaded("py/plan/c", 24)
    urls = list(data)
    with rig.client(plan_window="64KiB") as c:
        plan = c.plan(urls)
        assert c.wait(60) is True
        ahead = c.stats()["cache_chunks"]
        assert 1 <= ahead <= 6, ahead
        # Nobody reads: the plan stays put.
        assert c.wait(1) is True and c.stats()["cache_chunks"] == ahead
        # Reads of this process move it, and the window with it.
        for url in urls[:12]:
            assert c.read(url) == data[url]
        assert plan.position == 11
        assert c.wait(60) is True
        assert c.stats()["cache_chunks"] > 12
        plan.stop()


@test
def forked_children_read_what_the_parents_plan_fetched():
    # A DataLoader worker is a forked child: its reads find the chunks the
    # parent's plan put in the node cache, but they do not move the plan
    # (its position is the parent process's reads).
    data = uploaded("py/plan/d", 16)
    urls = list(data)
    with rig.client() as c:
        plan = c.plan(urls)
        assert c.wait(60) is True
        before = c.stats()["node_hits"]
        pid = os.fork()
        if pid == 0:
            ok = all(c.read(u) == data[u] for u in urls)
            st = c.stats()
            plan.stop()                      # the parent's plan: only forgotten here
            os._exit(0 if ok and st["misses"] == 0 and st["s3_gets"] == 0 else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert c.stats()["node_hits"] - before == 16
        assert plan.position == 0 and not plan.stopped
        plan.stop()


@test
def reading_order_follows_the_dataloader_workers():
    import dsc
    order = list(range(100, 112))
    # batch_size 2, 3 workers: batches 0,1,2 go to workers 0,1,2 and are
    # read at once, sample by sample; batches 3,4,5 after them.
    assert dsc.reading_order(order, 2, 3) == [100, 102, 104, 101, 103, 105,
                                              106, 108, 110, 107, 109, 111]
    assert dsc.reading_order(order, 2, 1) == order
    assert dsc.reading_order(order, None, 4) == order
    rng = random.Random(3)
    big = list(range(1000))
    rng.shuffle(big)
    got = dsc.reading_order(big, 32, 4)
    assert sorted(got) == sorted(big) and got[:4] == [big[0], big[32], big[64], big[96]]


@test
def planned_sampler_yields_the_order_and_fetches_it():
    import dsc
    data = uploaded("py/plan/e", 20)
    urls = list(data)
    with rig.client() as c:
        order = [7, 3, 19, 0, 12, 5, 1, 2, 4, 6, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18]
        for mode, ahead in (("prefetch", None), ("prefetch", 3), ("plan", None)):
            with rig.client() as fresh:
                ds = dsc.MapDataset(urls, client=fresh)
                sampler = dsc.PlannedSampler(ds, order, mode=mode, ahead=ahead,
                                             batch_size=4, num_workers=2)
                assert len(sampler) == 20
                it = iter(sampler)
                got = [next(it)]
                assert fresh.wait(60) is True
                cached = fresh.stats()["cache_chunks"]
                if ahead:
                    assert cached == ahead + 1, (mode, ahead, cached)
                else:
                    assert cached == 20, (mode, cached)
                got += list(it)
                assert got == order and sampler.order == order
                assert (sampler.plan is not None) == (mode == "plan")
                assert fresh.wait(60) is True and fresh.stats()["cache_chunks"] == 20
                before = fresh.stats()
                assert all(ds[i] == data[urls[i]] for i in order)
                assert delta(fresh.stats(), before, "misses")["misses"] == 0
        # Default sampler: 0..len-1; a new epoch replaces the old plan.
        ds = dsc.MapDataset(urls, client=c)
        sampler = dsc.PlannedSampler(ds, mode="plan")
        assert list(sampler) == list(range(20))
        old = sampler.plan
        assert list(sampler) == list(range(20)) and old.stopped and not sampler.plan.stopped
        sampler.plan.stop()
        raises(ValueError, dsc.PlannedSampler, ds, mode="later")
        raises(ValueError, dsc.PlannedSampler, ds, ahead=0)
        raises(TypeError, dsc.PlannedSampler, [1, 2, 3])


@test
def dataloader_epoch_with_planned_sampler_gets_each_object_once():
    try:
        import torch
        from torch.utils.data import DataLoader, RandomSampler
    except ImportError as e:
        raise AssertionError("torch cannot be imported (%s): install python3-torch" % e)
    import warnings
    import dsc
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    data = uploaded("py/plan/dlx", 96, size=30000)
    urls = list(data)
    for mode in ("prefetch", "plan"):
        gets_before = rig.server_range_gets("dlx-")
        cache_dir = rig.cache_dir()
        with rig.client(cache_dir=cache_dir) as c:
            ds = dsc.MapDataset(urls, client=c)
            g = torch.Generator()
            g.manual_seed(5)
            sampler = dsc.PlannedSampler(ds, RandomSampler(ds, generator=g), mode=mode,
                                         batch_size=8, num_workers=4)

            class Indexed:
                def __len__(self):
                    return len(ds)

                def __getitem__(self, i):
                    return i, ds[i]

            loader = DataLoader(Indexed(), batch_size=8, sampler=sampler, num_workers=4,
                                timeout=120)
            seen = []
            for indices, payloads in loader:
                for i, payload in zip(indices.tolist(), payloads):
                    assert payload == data[urls[i]], (mode, i)
                    seen.append(i)
            assert seen == sampler.order and sorted(seen) == list(range(96)), mode
            st = c.stats()
            # Every object was fetched once (by the parent's fetchers, or by
            # a worker that got there first; a worker reading an object in
            # flight waits for that GET instead of sending another).
            assert st["node_misses"] == 96, (mode, st)
            n_gets = rig.server_range_gets("dlx-") - gets_before
            assert n_gets == 96, (mode, n_gets, st)
            assert st["s3_gets"] > 0, (mode, st)     # the parent did fetch ahead
            if mode == "plan":
                assert sampler.plan.position == 0     # reads were in the workers
                sampler.plan.stop()


def main():
    global rig
    use_library_under_test()
    rig = Rig("python-plan")
    import dsc
    if not dsc._lib.has("dsc_plan_start"):
        print("python-plan: the library has no dsc_plan_start; rebuild it")
        print("python-plan: 0 passed, 1 failed")
        return 1
    return suite.run()


if __name__ == "__main__":
    sys.exit(main())
