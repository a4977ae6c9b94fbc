"""lutnb.codesign.distributed: Dask and Ray give the serial sweep's result exactly, points travel as data
(scattered / put), and the progress argument draws a bar over the chunks."""
import pandas as pd
import pytest

from lutnb.codesign import distributed, dse

SMALL = {"v": [2, 4], "c": [8, 16], "metric": ["l1", "l2"], "ccus": [4, 16], "lanes": [8], "table_tile": [64],
         "table_buffer_kb": [32], "table_bits": [8]}


@pytest.fixture(scope="module")
def points():
    return dse.random_points(300, SMALL, seed=1)


@pytest.fixture(scope="module")
def serial(points):
    return dse.run_sweep(points, "digits_cnn", n_jobs=1, cache_dir=False, chunk_size=50)


def test_engine_choice_and_bad_engine():
    assert distributed.choose_engine(None) == "local"
    assert distributed.choose_engine(None, address="tcp://x:1") == "dask"
    assert distributed.choose_engine("ray") == "ray"
    with pytest.raises(ValueError, match="engine='spark'"):
        distributed.choose_engine("spark")
    with pytest.raises(ValueError, match="engine='local' with a client or address"):
        distributed.choose_engine("local", address="tcp://x:1")


def test_local_processes_equal_serial_and_progress_is_drawn(points, serial, capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    par = dse.run_sweep(points, "digits_cnn", n_jobs=2, cache_dir=False, chunk_size=50, progress=True)
    pd.testing.assert_frame_equal(serial, par)
    assert "6/6" in capsys.readouterr().err          # 300 points / 50 per chunk


def test_dask_scatters_points_and_equals_serial(points, serial, monkeypatch):
    dd = pytest.importorskip("dask.distributed")
    seen = []
    with dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with dd.Client(cluster) as client:
            real_map = client.map

            def spy(fn, *iterables, **kwargs):  # what the tasks receive: futures of scattered data, not frames
                seen.extend(type(x).__name__ for it in iterables for x in it)
                seen.extend(type(v).__name__ for k, v in kwargs.items() if k != "pure")
                return real_map(fn, *iterables, **kwargs)

            monkeypatch.setattr(client, "map", spy)
            remote = dse.run_sweep(points, "digits_cnn", client=client, cache_dir=False, chunk_size=50)
    pd.testing.assert_frame_equal(serial, remote)
    assert len(seen) == 6 + 4 and set(seen) == {"Future"}, seen   # 6 chunks + workload, constraints, tech, accuracy


def test_ray_equals_serial(points, serial):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[distributed]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    except Exception as err:  # the local node did not come up (its agents start in 30 s or are killed)
        if "timed out during startup" not in str(err):
            raise
        pytest.skip(f"a local Ray node did not start on this machine: {err}")
    try:
        remote = dse.run_sweep(points, "digits_cnn", engine="ray", cache_dir=False, chunk_size=50)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(serial, remote)


class Ref:
    def __init__(self, value):
        self.value = value


class FakeRay:
    """The slice of Ray's API the engine uses (put/remote/wait/get), run in this process, finishing tasks in
    reverse order: checks the plumbing (data put once, results back in chunk order) where Ray cannot start."""

    def __init__(self):
        self.puts, self.calls = [], []

    def is_initialized(self):
        return True

    def put(self, value):
        self.puts.append(type(value).__name__)
        return Ref(value)

    def remote(self, fn):
        outer = self

        class Remote:
            def remote(self, *args, **kwargs):
                outer.calls.append([type(a).__name__ for a in (*args, *kwargs.values())])
                unref = lambda r: r.value if isinstance(r, Ref) else r  # noqa: E731
                return Ref(fn(*map(unref, args), **{k: unref(v) for k, v in kwargs.items()}))

        return Remote()

    def wait(self, pending, num_returns=1):
        return pending[-num_returns:], pending[:-num_returns]

    def get(self, ref):
        return ref.value


def test_ray_engine_puts_data_and_keeps_order_with_a_stand_in(points, serial, monkeypatch):
    import sys

    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    remote = dse.run_sweep(points, "digits_cnn", engine="ray", cache_dir=False, chunk_size=50)
    pd.testing.assert_frame_equal(serial, remote)
    assert fake.puts.count("DataFrame") == 6 + 1         # six chunks and the accuracy table, each put once
    assert len(fake.calls) == 6 and all(set(c) == {"Ref"} for c in fake.calls)  # references only, none embedded
