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
