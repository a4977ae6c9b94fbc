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
