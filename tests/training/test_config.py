import pytest

from training import Config, load_config, train


@pytest.mark.parametrize("overrides,match", [
    (["dataset=imagenet"], "dataset = 'imagenet'"),
    (["partition=weird"], "partition = 'weird'"),
    (["clients=0"], "clients = 0"),
    (["clients=-2"], "clients = -2"),
    (["algorithm=nope"], "algorithm = 'nope'"),
    (["no_such_key=1"], "unknown key 'no_such_key'"),
    (["rounds=two"], "rounds = 'two'"),
    (["dataset=cifar10"], "data_dir"),
    (["ipfl.lam=inf"], r"\[ipfl\] lam = inf must be <= 1e\+06"),
    (["ipfl.lam=-1"], r"\[ipfl\] lam = -1.0 must be >= 0"),
    (["ipfl.eta=0"], r"\[ipfl\] eta = 0.0 must be > 0"),
    (["ipfl.eta=1.5"], r"\[ipfl\] eta = 1.5 must be <= 1"),
    (["ipfl.distance=manhattan"], r"\[ipfl\] distance = 'manhattan' is not one of"),
    (["ipfl.nope=1"], r"\[ipfl\] has no key 'nope'"),
    (["fedprox.mu=0.1"], r"\[fedprox\] is the table of another algorithm"),
    (["weird.mu=0.1"], r"\[weird\] is unknown table"),
    (["algorithm=fedprox", "fedprox.mu=0"], r"\[fedprox\] mu = 0.0 must be > 0"),
    (["K_per_sample=inf"], "K_per_sample = inf must be finite"),
    (["c=-0.5"], "c = -0.5 must be >= 0"),
    (["clients=3", "c=[0.1, 0.2]"], "c has 2 values, but clients = 3"),
    (["clients=3", "c=[0.1, -0.2, 0.3]"], r"c\[1\] = -0.2 must be >= 0"),
    (["clients=3", "budget=[1, 'x', 2]"], r"budget\[1\] = 'x' must be a number"),
    (["clients=4", "roles=trader:2,pirate:2"], "unknown role 'pirate'"),
    (["clients=4", "roles=trader:2,seller:1"], "counts 3 clients, but clients = 4"),
    (["clients=4", "roles=trader:x"], "count 'x' of 'trader'"),
    (["clients=4", "roles=trader:3,attacker:1"], "has attackers but attack = ''"),
    (["attack=poison"], "attack = 'poison' is not one of"),
    (["clients=4", "roles=trader:4", "c=[1, 1, 1, 1]"], "either roles or per-client lists"),
    (["clients=4", "liar=7"], r"liar\[0\] = 7 is not a client index"),
    (["liar_N=0"], "liar_N = 0.0 must be finite and > 0"),
    (["val_frac=0.8"], r"val_frac = 0.8 must lie in \(0, 1 - test_frac\)"),
    (["val_frac=0"], r"val_frac = 0.0 must lie in \(0, 1 - test_frac\): .* never on test data"),
])
def test_bad_config_is_rejected_naming_field_and_value(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, overrides)


def test_per_client_lists_roles_and_tables_are_read():
    cfg = load_config(None, ["clients=3", "c=[0.1, 0.2, inf]", "algorithm=fedprox",
                             "fedprox.mu=0.5", "liar=[1]", "liar_N=10.0"])
    assert cfg.per_client("c") == (0.1, 0.2, float("inf"))
    assert cfg.per_client("budget") == (float("inf"),) * 3
    assert cfg.hyper == {"mu": 0.5}
    assert cfg.liar == (1,)
    roles = load_config(None, ["clients=4", "roles=trader:1,buyer:1,seller:1,attacker:1",
                               "attack=random_init"]).role_list
    assert roles == ("trader", "buyer", "seller", "attacker")


def test_config_round_trips_through_json():
    cfg = load_config(None, ["clients=3", "c=[0.1, 0.2, inf]", "ipfl.eta=0.25"])
    import json

    assert Config.from_dict(json.loads(cfg.dumps())) == cfg


def test_more_clients_than_samples_fails_before_training(tmp_path):
    cfg = Config(clients=50, max_samples=40)
    with pytest.raises(ValueError, match="clients = 50 exceeds the 40 samples"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_missing_data_folder_fails_before_training(tmp_path):
    cfg = Config(dataset="fashion_mnist", data_dir=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="absent"):
        train(cfg, tmp_path / "run", progress=False)


def test_missing_fashion_mnist_names_the_debian_package(tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = Config(dataset="fashion_mnist", data_dir=str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        train(cfg, tmp_path / "run", progress=False)


def test_unstable_proximal_step_is_refused_before_any_file(tmp_path):
    cfg = load_config(None, ["clients=4", "max_samples=400", "lr=0.5", "ipfl.lam_prox=1e6"])
    with pytest.raises(ValueError, match=r"unstable proximal step: lr x proximal weight"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_toml_file_and_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('clients = 5\nbudget = "inf"\n[unused]\n')
    with pytest.raises(ValueError, match=r"\[unused\] is unknown table"):
        load_config(f)
    f.write_text("clients = 5\n[ipfl]\nlam = 2\n")
    cfg = load_config(f, ["rounds=3"])
    assert (cfg.clients, cfg.hyper["lam"], cfg.rounds) == (5, 2.0, 3)
    f.write_bytes(b"clients = \xff\n")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        load_config(f)


def test_every_shipped_config_loads():
    from pathlib import Path

    files = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))
    assert len(files) >= 4
    for f in files:
        overrides = ["data_dir=somewhere"] if "cifar" in f.name else []
        load_config(f, overrides)


def test_ipfl_lam_prox_defaults_per_distance_unless_given():
    """Eq. (7)'s weight lives in the distance's geometry, so its default depends on it."""
    got = {d: load_config(None, [f"ipfl.distance={d}"]).hyper["lam_prox"]
           for d in ("sqeuclidean_mean", "sqeuclidean", "cosine")}
    assert got == {"sqeuclidean_mean": 100.0, "sqeuclidean": 0.02, "cosine": 1.0}
    assert load_config(None, ["ipfl.distance=cosine", "ipfl.lam_prox=5"]).hyper["lam_prox"] == 5
