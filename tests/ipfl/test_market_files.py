"""Markets from and to files (ipfl/market_files.py, mechanism/market_dict.py)."""

from pathlib import Path

import numpy as np
import pytest

from ipfl.market_files import read_market, write_market
from mechanism import random_market
from mechanism.market_dict import market_from_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _same(a, b):
    assert a.m == b.m and a.lam == b.lam and a.gain.name == b.gain.name
    for f in ("N", "c", "K", "d"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_round_trip_with_distance_matrix(tmp_path, suffix):
    mk = random_market(6, seed=4, lam=0.3, buyers=0.34, sellers=0.34)
    assert np.isinf(mk.c).any() and (mk.K == 0).any()
    _same(read_market(write_market(mk, tmp_path / f"m{suffix}")), mk)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_round_trip_with_points(tmp_path, suffix):
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    mk = market_from_dict({"clients": [{"N": 1, "c": 0, "K": 1}] * 3, "points": pts.tolist()})
    back = read_market(write_market(mk, tmp_path / f"m{suffix}", points=pts))
    _same(back, mk)
    assert back.d[0, 2] == 10.0


def test_the_two_example_files_are_the_same_market():
    _same(read_market(EXAMPLES / "market.json"), read_market(EXAMPLES / "market.csv"))


@pytest.mark.parametrize("doc, match", [
    ({"clients": [{"N": 1, "c": 0, "K": 1}, {"N": -5, "c": 0, "K": 1}]},
     r"clients\[1\]\.N = -5\.0 must be finite and > 0"),
    ({"clients": [{"N": 1, "c": "abc", "K": 1}, {"N": 1, "c": 0, "K": 1}]},
     r"clients\[0\]\.c = 'abc' is not a number"),
    ({"clients": [{"N": 1, "c": 0, "K": 1}, {"N": 1, "c": 0}]}, r"clients\[1\] has no 'K'"),
    ({"clients": [{"N": 1, "c": 0, "K": 1}]}, r"at least 2 clients, got 1"),
    ({"clients": [{"N": 1, "c": 0, "K": 1}] * 2, "points": [[0], [1, 2]]},
     r"same number .* of coordinates"),
    ({"clients": [{"N": 1, "c": 0, "K": 1}] * 2, "d": [[0, -1], [1, 0]]},
     r"d\[0, 1\] = -1\.0 must be finite and >= 0"),
    ({"clients": [{"N": 1, "c": 0, "K": 1}] * 2, "gain": "cubic"}, r"gain = 'cubic'"),
    ({"clients": [{"N": 1, "c": 0, "K": 1}] * 2, "lamda": 1}, r"unknown key 'lamda'"),
    ({"clients": [{"N": 1, "c": 0, "K": 1}] * 2, "lam": "x"}, r"lam = 'x' is not a number"),
])
def test_bad_documents_name_field_index_value(doc, match):
    with pytest.raises(ValueError, match=match):
        market_from_dict(doc)


def test_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("N,c,K,x\n1,0,1,0\n1,0,1,oops\n")
    with pytest.raises(ValueError, match=r"bad\.csv: points\[1\]\[0\] = 'oops' is not a number"):
        read_market(p)
    q = tmp_path / "bad.json"
    q.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        read_market(q)
    with pytest.raises(ValueError, match=r"end in \.json or \.csv"):
        read_market(tmp_path / "m.txt")



def test_a_market_given_by_points_is_written_as_its_matrix():
    """Market(points=X) means d = squared distance; a file's points the Euclidean one."""
    from mechanism import Market
    from mechanism.market_dict import market_to_dict

    mk = Market(N=[1, 2, 3], c=[0.1, 0.2, 0.3], K=[1, 1, 1], lam=0.5,
                points=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    doc = market_to_dict(mk)
    assert "points" not in doc and doc["d"][1][2] == 5.0
    assert np.array_equal(market_from_dict(doc).d, mk.dense().d)
