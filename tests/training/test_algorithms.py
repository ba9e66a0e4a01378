"""The suite every registered algorithm inherits: determinism, resume, effect, records.

Each algorithm gets one subclass of :class:`AlgorithmSuite` below; a test checks that
no registered algorithm is missing one. Runs are tiny (4 clients, 2 market rounds, one
epoch on 400 digits), so the whole suite takes seconds per algorithm.
"""

import pytest
import torch

from training import ALGORITHMS, Config, RunDir, audit_run, train

TINY = dict(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400, beta=0.5)


class Interrupted(BaseException):
    """Raised from a wrapped writer to stop a run mid-round (a stand-in for kill -9)."""


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    train(Config(algorithm="local", **{**TINY, "partition": "iid"}), out, progress=False)
    return out


class AlgorithmSuite:
    """Checks every algorithm must pass; subclasses set ``algorithm``."""

    algorithm: str

    def cfg(self, **changes):
        return Config(algorithm=self.algorithm, **{**TINY, **changes})

    def test_same_seed_same_metrics_other_seed_differs(self, tmp_path):
        a = train(self.cfg(), tmp_path / "a", progress=False)
        b = train(self.cfg(), tmp_path / "b", progress=False)
        c = train(self.cfg(seed=1), tmp_path / "c", progress=False)
        assert a == b
        assert a != c

    @pytest.mark.parametrize("writer", ["write_round", "write_metrics", "save_checkpoint"])
    def test_interrupted_run_resumes_to_identical_metrics(self, tmp_path, monkeypatch, writer):
        ref = train(self.cfg(), tmp_path / "ref", progress=False)
        original = getattr(RunDir, writer)
        calls = []

        def crash(rd, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:  # the second write: inside or right after round 1 / 2
                raise Interrupted
            return original(rd, *args, **kwargs)

        monkeypatch.setattr(RunDir, writer, crash)
        with pytest.raises(Interrupted):
            train(self.cfg(), tmp_path / "run", progress=False)
        monkeypatch.setattr(RunDir, writer, original)
        rows = train(None, tmp_path / "run", resume=True, progress=False)
        assert rows == ref
        assert RunDir(tmp_path / "run").read_metrics() == ref

    def test_changes_the_trained_model(self, tmp_path, local_run):
        """Its aggregation or regulariser moves the models away from plain local training.

        On an IID split every peer's model is worth taking (FedFomo's validation test
        accepts some), so any real collaboration must change the trained models.
        """
        train(self.cfg(partition="iid"), tmp_path / "run", progress=False)
        mine = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
        local = torch.load(local_run / "checkpoint.pt", weights_only=True)
        if self.algorithm == "local":
            assert torch.equal(mine["uploads"], local["uploads"])
        else:
            assert not torch.allclose(mine["uploads"], local["uploads"])

    def test_records_utilities_every_round_and_passes_the_audit(self, tmp_path):
        rows = train(self.cfg(), tmp_path / "run", progress=False)
        assert {"acc", "val_acc", "best_acc", "U", "cum_U", "p", "ir", "role"} <= set(rows[0])
        records = RunDir(tmp_path / "run").read_rounds()
        assert sorted(records) == [1, 2]
        report = audit_run(tmp_path / "run")
        assert report.ok, report.problems


def test_every_registered_algorithm_inherits_the_suite():
    covered = {cls.algorithm for cls in AlgorithmSuite.__subclasses__()}
    assert covered == set(ALGORITHMS) - {"ipfl-ir-breaker"}


class TestLocal(AlgorithmSuite):
    algorithm = "local"


class TestFedAvg(AlgorithmSuite):
    algorithm = "fedavg"


class TestFedProx(AlgorithmSuite):
    algorithm = "fedprox"


class TestIPFL(AlgorithmSuite):
    algorithm = "ipfl"

    def test_eta_acts(self, tmp_path):
        """Eq. (6)'s step changes the run (under the old cap 0.25, 5 and 100 were identical)."""
        runs = [train(self.cfg(hyper={"eta": e}), tmp_path / str(e), progress=False)
                for e in (0.25, 1.0)]
        assert [r["acc"] for r in runs[0]] != [r["acc"] for r in runs[1]]


class TestDitto(AlgorithmSuite):
    algorithm = "ditto"


class TestFedAMP(AlgorithmSuite):
    algorithm = "fedamp"


class TestCFL(AlgorithmSuite):
    algorithm = "cfl"


class TestFedFomo(AlgorithmSuite):
    algorithm = "fedfomo"


class TestPFedGraph(AlgorithmSuite):
    algorithm = "pfedgraph"
