"""Datasets as plain numpy arrays, read offline only.

``digits`` is scikit-learn's bundled copy (1,797 8x8 images, 10 classes); it needs no
download. CIFAR-10 (python pickle batches) and Fashion-MNIST (idx ``.gz`` files) are read
from a folder the user names; nothing here ever downloads. A missing file raises
:class:`FileNotFoundError` listing every expected file and where it was looked for.

A data folder is untrusted input (a user may have downloaded it; a run's ``config.json``
names it). Nothing in it can run code: CIFAR-10's pickles are read by
:class:`_CifarUnpickler`, which resolves no global but numpy's array and scalar
constructors (``pickle.Unpickler.find_class`` refuses every other one, so a
``__reduce__`` payload is refused unrun), and only a dict of a ``uint8`` array
``(n, 3072)`` and ``n`` integer labels in ``0..9`` is accepted. Every file is read through
:func:`training.safeio.read_regular`: regular files only, at most
``CAPS["cifar10"]``/``CAPS["fashion_mnist"]`` bytes (compressed and decompressed).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .safeio import CAPS, read_regular

__all__ = [
    "CIFAR10_FILES",
    "DATASETS",
    "FASHION_DEFAULT_DIR",
    "FASHION_FILES",
    "Dataset",
    "Source",
    "default_data_dir",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_synthetic",
]

CIFAR10_FILES = tuple(f"data_batch_{k}" for k in range(1, 6)) + ("test_batch",)
FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclass(frozen=True)
class Dataset:
    """A pooled labelled dataset; the partitioner splits it among clients.

    Attributes
    ----------
    X : ndarray, float32, shape (n, ...)
        Features, scaled to roughly [0, 1]; images are (n, C, H, W), digits (n, 64).
    y : ndarray, int64, shape (n,)
        Labels in ``0 .. n_classes - 1``.
    n_classes : int
    name : str
    """

    X: NDArray[np.float32]
    y: NDArray[np.int64]
    n_classes: int
    name: str

    def __len__(self) -> int:
        return int(self.y.shape[0])


def load_digits() -> Dataset:
    """Return scikit-learn's bundled digits (no download), features scaled to [0, 1]."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    X = (bunch.data / 16.0).astype(np.float32)
    return Dataset(X=X, y=bunch.target.astype(np.int64), n_classes=10, name="digits")


def _require(folder: str | Path, names: tuple[str, ...], what: str) -> Path:
    root = Path(folder).expanduser()
    missing = [n for n in names if not os.path.lexists(root / n)]  # a FIFO: refused later
    if missing:
        raise FileNotFoundError(
            f"{what}: expected the files {list(names)} directly in {str(root)!r}; "
            f"missing {missing}. Nothing is downloaded: place them there first."
        )
    return root


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and scalars, plain containers, nothing else.

    :meth:`find_class` is the only way a pickle reaches code (every ``GLOBAL`` and
    ``STACK_GLOBAL`` opcode, hence every ``__reduce__`` payload, goes through it); it
    resolves the four names numpy's pickles use and refuses every other one.
    """

    #: (module, name) pairs a CIFAR-10 batch needs: ndarray and scalar reconstruction
    ALLOWED = frozenset((mod, name) for mod in ("numpy.core.multiarray",
                                                "numpy._core.multiarray")
                        for name in ("_reconstruct", "scalar")) | {("numpy", "ndarray"),
                                                                   ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> object:
        """Return numpy's array constructors; refuse any other global."""
        if (module, name) == ("_codecs", "encode"):  # bytes in a protocol-2 pickle
            return _latin1
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a "
                                         "CIFAR-10 batch")
        return super().find_class(module, name)


def _latin1(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of bytes use it: latin-1 of a str, nothing else."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin1 bytes only")
    return text.encode("latin-1")


def _cifar_batch(path: Path) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Read one CIFAR-10 batch file with :class:`_CifarUnpickler`; check what it holds."""
    raw = read_regular(path, CAPS["cifar10"], "cifar10: batch file")
    where = f"cifar10: {str(path)!r}"
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 (any failure: refused, nothing was run)
        raise ValueError(f"{where} is not a CIFAR-10 python batch ({type(exc).__name__}: "
                         f"{exc}); refused") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{where} holds a {type(batch).__name__}, not a CIFAR-10 batch dict")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{where} has no 'data'/'labels' entries")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32):
        what = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise ValueError(f"{where}: data is {what}, expected uint8 (n, 3072)")
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if not isinstance(labels, list) or len(labels) != data.shape[0] or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= v < 10
            for v in labels):
        raise ValueError(f"{where}: labels must be {data.shape[0]} integers in 0..9")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def load_cifar10(folder: str | Path) -> Dataset:
    """Read CIFAR-10's python batches ``data_batch_1..5`` and ``test_batch`` from ``folder``.

    Train and test batches are pooled; the partitioner makes per-client splits.
    Images are returned as float32 (n, 3, 32, 32) in [0, 1]. The pickles are read by a
    restricted unpickler that runs no code (module docstring).

    Raises
    ------
    ValueError
        A file that is not a CIFAR-10 batch (a foreign global, wrong arrays), not a
        regular file, or larger than ``CAPS["cifar10"]``.
    """
    root = _require(folder, CIFAR10_FILES, "cifar10")
    xs, ys = zip(*(_cifar_batch(root / name) for name in CIFAR10_FILES), strict=True)
    X = np.concatenate(xs).astype(np.float32) / 255.0
    return Dataset(X=X, y=np.concatenate(ys), n_classes=10, name="cifar10")


def _read_idx(path: Path, magic: int) -> NDArray[np.uint8]:
    cap = CAPS["fashion_mnist"]
    packed = read_regular(path, cap, "fashion_mnist: idx file")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as fh:
            raw = fh.read(cap + 1)
    except (OSError, EOFError) as exc:
        raise ValueError(f"fashion_mnist: {str(path)!r} is not gzip data ({exc})") from None
    if len(raw) > cap:
        raise ValueError(f"fashion_mnist: {str(path)!r} decompresses to more than {cap} "
                         "bytes; refused")
    head = int.from_bytes(raw[:4], "big")
    if head != magic:
        raise ValueError(f"fashion_mnist: {str(path)!r} has magic {head}, expected {magic}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    if len(raw) != 4 + 4 * ndim + int(np.prod(dims, dtype=object)):
        raise ValueError(f"fashion_mnist: {str(path)!r} declares shape {dims} but holds "
                         f"{len(raw) - 4 - 4 * ndim} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(folder: str | Path) -> Dataset:
    """Read Fashion-MNIST's idx files (``train-images-idx3-ubyte.gz`` ...) from ``folder``.

    Returns float32 images (n, 1, 28, 28) in [0, 1], train and test pooled.
    """
    root = _require(folder, FASHION_FILES, "fashion_mnist")
    tr_x, tr_y, te_x, te_y = (
        _read_idx(root / n, m) for n, m in zip(FASHION_FILES, (2051, 2049, 2051, 2049), strict=True)
    )
    X = np.concatenate([tr_x, te_x]).astype(np.float32)[:, None] / 255.0
    y = np.concatenate([tr_y, te_y]).astype(np.int64)
    return Dataset(X=X, y=y, n_classes=10, name="fashion_mnist")


def load_synthetic(n: int = 600, shape: tuple[int, ...] = (64,), n_classes: int = 10,
                   seed: int = 0) -> Dataset:
    """Return a learnable synthetic dataset (class-dependent means plus noise); for tests."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    means = rng.normal(size=(n_classes, *shape)).astype(np.float32)
    X = means[y] + 0.5 * rng.normal(size=(n, *shape)).astype(np.float32)
    return Dataset(X=X.astype(np.float32), y=y.astype(np.int64), n_classes=n_classes,
                   name="synthetic")


#: where Debian's ``dataset-fashion-mnist`` package puts the idx files
FASHION_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class Source:
    """How to load one named dataset.

    Attributes
    ----------
    load : callable
        ``load()`` for bundled data, ``load(folder)`` for data read from a folder.
    files : tuple of str
        The files expected in the folder (empty: bundled, no folder).
    default_dir : str
        The folder used when ``data_dir`` is empty ("" : none, the user must name one).
    package : str
        The Debian package that installs the files, named in the missing-data error.
    """

    load: Callable[..., Dataset]
    files: tuple[str, ...] = ()
    default_dir: str = ""
    package: str = ""


#: dataset name -> :class:`Source`
DATASETS: dict[str, Source] = {
    "digits": Source(load_digits),
    "synthetic": Source(load_synthetic),
    "cifar10": Source(load_cifar10, CIFAR10_FILES),
    "fashion_mnist": Source(load_fashion_mnist, FASHION_FILES, FASHION_DEFAULT_DIR,
                            "dataset-fashion-mnist"),
    # Table 1's instruction data (the [llm] extra): tokenised by the run's model in
    # training.federation.prepare; loading here checks the extra only (training.instruct)
    "instruct_finance": Source(lambda: _instruct("instruct_finance")),
    "instruct_mixed": Source(lambda: _instruct("instruct_mixed")),
}


def _instruct(name: str) -> Dataset:
    from .instruct import load_marker

    return load_marker(name)


def default_data_dir(name: str) -> str:
    """Return the folder a dataset is read from when ``data_dir`` is empty ("" if none)."""
    return DATASETS[name].default_dir if name in DATASETS else ""


def load_dataset(name: str, data_dir: str | Path = "") -> Dataset:
    """Load a dataset by name (a key of :data:`DATASETS`).

    Fashion-MNIST is read from ``data_dir``, or without one from Debian's
    ``dataset-fashion-mnist`` folder (:data:`FASHION_DEFAULT_DIR`). Nothing downloads.

    Raises
    ------
    ValueError
        On an unknown name, or a folder dataset without ``data_dir`` nor a default.
    FileNotFoundError
        When the folder or one of its files is missing (naming them and the Debian package).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset = {name!r} is not one of {sorted(DATASETS)}")
    src = DATASETS[name]
    if not src.files:
        return src.load()
    data_dir = data_dir or src.default_dir
    if not data_dir:
        raise ValueError(f"dataset = {name!r} needs data_dir, a local folder holding its files")
    hint = (f" (on Debian: apt-get install {src.package} puts them in {src.default_dir})"
            if src.package else "")
    if not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(
            f"{name}: data_dir = {str(data_dir)!r} is not a folder; it must hold "
            f"{list(src.files)}" + hint)
    try:
        return src.load(data_dir)
    except FileNotFoundError as exc:
        raise FileNotFoundError(str(exc) + hint) from None
