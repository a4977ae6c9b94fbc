"""Where a sweep's chunks run: this process, local processes, a Dask cluster or a Ray cluster, behind one call.

`map_chunks(fn, chunks, shared, ...)` returns `[fn(chunk, **shared) for chunk in chunks]`, in order, whatever
the engine. On Dask and Ray the chunks and the shared arguments are shipped once as data (`client.scatter`,
`ray.put`) and the tasks only reference them, so the task graph stays small however many points there are.
`progress=True` shows one bar over the chunks as they finish (quiet when TQDM_DISABLE is set).
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable

from ..runtime import progress_disabled

ENGINES = ("local", "dask", "ray")


def choose_engine(engine: str | None, client=None, address: str | None = None) -> str:
    """The engine to use: `engine` if given, else Dask when a client or an address is given, else local."""
    if engine is None:
        return "dask" if client is not None or address is not None else "local"
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: use one of {ENGINES} (or None: Dask when client/address is given, "
                         "else local processes)")
    if engine == "local" and (client is not None or address is not None):
        raise ValueError("engine='local' with a client or address: drop them, or use engine='dask' / 'ray'")
    return engine


def _bar(total: int, progress: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="chunk", desc=desc, disable=progress_disabled(progress))


def map_chunks(fn: Callable, chunks: list, shared: dict[str, Any], engine: str | None = None, n_jobs: int = 2,
               client=None, address: str | None = None, progress: bool = False, desc: str = "sweep") -> list:
    """`[fn(chunk, **shared) for chunk in chunks]`, run by `engine` ("local", "dask", "ray"; see the module doc).

    local: in this process when n_jobs <= 1 or there is one chunk, else a ProcessPoolExecutor of n_jobs.
    dask: `client` (a dask.distributed.Client) or a new Client(`address`), closed after. ray: the running Ray
    (or `ray.init(address)`; a local one when address is None), left running for the next sweep."""
    engine = choose_engine(engine, client, address)
    with _bar(len(chunks), progress, desc) as bar:
        if engine == "dask":
            return _run_dask(fn, chunks, shared, client, address, bar)
        if engine == "ray":
            return _run_ray(fn, chunks, shared, address, bar)
        if n_jobs <= 1 or len(chunks) <= 1:
            out = []
            for ch in chunks:
                out.append(fn(ch, **shared))
                bar.update(1)
            return out
        with ProcessPoolExecutor(max_workers=n_jobs) as ex:
            futs = {ex.submit(fn, ch, **shared): i for i, ch in enumerate(chunks)}
            return _collect(as_completed(futs), lambda f: (futs[f], f.result()), len(chunks), bar)


def _collect(done_iter, unpack: Callable, n: int, bar) -> list:
    out: list = [None] * n
    for item in done_iter:
        i, value = unpack(item)
        out[i] = value
        bar.update(1)
    return out


def _run_dask(fn, chunks, shared, client, address, bar) -> list:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    own = None
    if client is None:
        client = own = Client(address)
    try:
        data = client.scatter(list(chunks))                               # one future per chunk
        consts = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
        futs = client.map(fn, data, **consts, pure=False)
        index = {f.key: i for i, f in enumerate(futs)}
        return _collect(dask_completed(futs), lambda f: (index[f.key], f.result()), len(chunks), bar)
    finally:
        if own is not None:
            own.close()


def _run_ray(fn, chunks, shared, address, bar) -> list:
    try:
        import ray
    except ImportError as err:
        raise ImportError("engine='ray' needs Ray: pip install -e '.[distributed]' (or pip install ray)") from err
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    remote = ray.remote(fn)
    consts = {k: ray.put(v) for k, v in shared.items()}                   # top-level refs: resolved by Ray
    refs = [remote.remote(ray.put(ch), **consts) for ch in chunks]
    index = {r: i for i, r in enumerate(refs)}
    out: list = [None] * len(refs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for r in done:
            out[index[r]] = ray.get(r)
            bar.update(1)
    return out
