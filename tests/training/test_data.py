import gzip
import pickle

import numpy as np
import pytest

from training.data import CIFAR10_FILES, FASHION_FILES, load_dataset, load_digits


def test_digits_is_bundled():
    ds = load_digits()
    assert ds.X.shape == (1797, 64) and ds.n_classes == 10
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0


def _write_cifar(folder, n=4):
    rng = np.random.default_rng(0)
    for name in CIFAR10_FILES:
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, size=n))}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)


def _idx(arr: np.ndarray, magic: int) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(head + arr.astype(np.uint8).tobytes())


def _write_fashion(folder, n=5):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(n, 28, 28))
    labels = rng.integers(0, 10, size=n)
    for name, arr, magic in zip(FASHION_FILES, (imgs, labels, imgs[:3], labels[:3]),
                                (2051, 2049, 2051, 2049), strict=True):
        (folder / name).write_bytes(_idx(arr, magic))
    return imgs, labels


def test_cifar10_reads_pickle_batches(tmp_path):
    _write_cifar(tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.X.shape == (24, 3, 32, 32) and ds.y.shape == (24,)
    assert ds.X.dtype == np.float32 and ds.X.max() <= 1.0


def test_fashion_reads_idx_gz(tmp_path):
    imgs, labels = _write_fashion(tmp_path)
    ds = load_dataset("fashion_mnist", tmp_path)
    assert ds.X.shape == (8, 1, 28, 28)
    np.testing.assert_array_equal(ds.y[:5], labels)
    np.testing.assert_allclose(ds.X[0, 0], imgs[0] / 255.0, rtol=1e-6)


@pytest.mark.parametrize("name,files", [("cifar10", CIFAR10_FILES),
                                        ("fashion_mnist", FASHION_FILES)])
def test_missing_file_names_expected_files_and_folder(tmp_path, name, files):
    (tmp_path / files[0]).write_bytes(b"")
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(name, tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and files[-1] in msg and "missing" in msg


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_dataset("cifar10", tmp_path / "nope")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="'mnist2'"):
        load_dataset("mnist2")


class _Payload:
    """Unpickling this would create ``path``: a stand-in for any code planted in a batch."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _Shell:
    """A payload that runs a shell command through ``os.system``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("where", ["whole file", "inside data", "inside labels", "os.system"])
def test_a_payload_folder_runs_no_code(tmp_path, where):
    """A CIFAR-10 folder whose batch carries a ``__reduce__`` payload is refused; nothing runs.

    The payload is live (plain ``pickle.load`` creates the marker), the restricted
    reader refuses it naming the file, through ``load_dataset`` and ``ipfl train``.
    """
    # Prepare: a valid folder, then one batch replaced by a payload
    folder = tmp_path / "cifar"
    folder.mkdir()
    _write_cifar(folder)
    marker = tmp_path / "pwned"
    good = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 1]}
    payload = {"whole file": _Payload(marker), "inside data": {**good, b"data": _Payload(marker)},
               "inside labels": {**good, b"labels": [0, _Payload(marker)]},
               "os.system": {**good, b"batch_label": _Shell(marker)}}[where]
    (folder / "data_batch_3").write_bytes(pickle.dumps(payload))
    with open(folder / "data_batch_3", "rb") as fh:  # the payload is live
        pickle.load(fh)
    assert marker.exists()
    marker.unlink()
    # Execute / Assert
    with pytest.raises(ValueError, match=r"data_batch_3.* is not a CIFAR-10 python batch "
                                         r"\(UnpicklingError: global .* is not allowed"):
        load_dataset("cifar10", folder)
    assert not marker.exists()
    from click.testing import CliRunner

    from ipfl.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'dataset = "cifar10"\ndata_dir = "{folder}"\nclients = 2\nrounds = 1\n')
    res = CliRunner().invoke(main, ["train", "--config", str(cfg), "--run-dir",
                                    str(tmp_path / "run"), "--quiet"])
    assert res.exit_code == 2 and "not allowed in a CIFAR-10 batch" in res.output, res.output
    assert not marker.exists()


@pytest.mark.parametrize("batch,phrase", [
    ({b"data": np.zeros((2, 3072), dtype=np.float64), b"labels": [0, 1]}, "data is float64"),
    ({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 10]}, "labels must be 2"),
    ({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0]}, "labels must be 2"),
    ([1, 2], "holds a list, not a CIFAR-10 batch"),
])
def test_a_batch_with_other_arrays_is_refused(tmp_path, batch, phrase):
    """Only a uint8 (n, 3072) array and n labels in 0..9 are accepted."""
    _write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=phrase):
        load_dataset("cifar10", tmp_path)


def test_real_format_numpy_pickles_are_read(tmp_path):
    """Batches as CIFAR-10 ships them (protocol 2, python-int labels) read unchanged."""
    rng = np.random.default_rng(1)
    for name in CIFAR10_FILES:
        batch = {b"batch_label": b"x", b"labels": [int(v) for v in rng.integers(0, 10, 3)],
                 b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8),
                 b"filenames": [b"a.png", b"b.png", b"c.png"]}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    ds = load_dataset("cifar10", tmp_path)
    assert ds.X.shape == (18, 3, 32, 32) and set(ds.y) <= set(range(10))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "oversized"])
def test_data_files_must_be_small_regular_files(tmp_path, kind, monkeypatch):
    """A FIFO or a link to /dev/zero as a batch is refused at once; so is a file over the cap."""
    import os

    from training import safeio

    _write_cifar(tmp_path)
    target = tmp_path / "data_batch_1"
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")
    else:
        target.write_bytes(b"x" * 100)
        monkeypatch.setitem(safeio.CAPS, "cifar10", 99)
    phrase = {"fifo": "is a FIFO", "dev-zero": "is a symbolic link",
              "oversized": "holds 100 bytes, more than the 99"}[kind]
    with pytest.raises(ValueError, match=phrase):
        load_dataset("cifar10", tmp_path)


def test_a_gzip_bomb_is_refused(tmp_path, monkeypatch):
    """An idx file that decompresses past the cap is refused, never inflated whole."""
    from training import safeio

    _write_fashion(tmp_path)
    bomb = _idx(np.zeros((100, 28, 28), dtype=np.uint8), 2051)  # 78 kB in under 1 kB
    (tmp_path / FASHION_FILES[0]).write_bytes(bomb)
    assert len(bomb) < 1000
    monkeypatch.setitem(safeio.CAPS, "fashion_mnist", 10000)
    with pytest.raises(ValueError, match="decompresses to more than 10000 bytes"):
        load_dataset("fashion_mnist", tmp_path)
